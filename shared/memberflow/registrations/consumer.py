"""The event sync consumer: one handler per registration event type, for the generic worker."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from memberflow.pipeline.envelope import QueuedEvent
from memberflow.registrations.erasure import forget_registrant
from memberflow.registrations.sync import SyncDeps, sync_eventbrite, sync_zoom

CONSUMER = "event_sync"

MAILCHIMP_CALLS_PER_EVENT = 6
"""An Eventbrite order of one attendee: upsert, and at most two tags added and two removed (a refund after a
no-show), with one more for the fetch's own slow answer counted below."""
EVENTBRITE_CALLS_PER_EVENT = 1
SLOW_STORE_CALLS_PER_EVENT = 1


def worst_case_ms_per_event(call_seconds: float, store_call_seconds: float) -> int:
    """The longest one event of a single attendee can take when every call runs into its timeout."""
    seconds = (MAILCHIMP_CALLS_PER_EVENT + EVENTBRITE_CALLS_PER_EVENT) * call_seconds
    return int((seconds + SLOW_STORE_CALLS_PER_EVENT * store_call_seconds) * 1000)


def handlers(deps_for: Callable[[], SyncDeps]) -> Mapping[str, Callable[[QueuedEvent], dict[str, Any]]]:
    return {
        "registration_changed": lambda queued: sync_eventbrite(queued, deps_for()),
        "zoom_registered": lambda queued: sync_zoom(queued, deps_for()),
        "zoom_attended": lambda queued: sync_zoom(queued, deps_for()),
        "registrant_erased": lambda queued: forget_registrant(queued, deps_for().registrations),
    }
