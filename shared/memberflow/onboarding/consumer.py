"""The onboarding consumer: one handler per event type it consumes, for the generic worker."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from memberflow.onboarding.activity import record_activity
from memberflow.onboarding.join import OnboardingDeps, complete_screening, onboard_member
from memberflow.pipeline.envelope import QueuedEvent

CONSUMER = "onboarding"

WORST_CASE_MS_PER_EVENT = 45_000
"""Up to four Mailchimp calls, each at most two attempts of 5 s: an event is only started with this much time
left in the invocation (the function timeout is 60 s)."""


def handlers(deps_for: Callable[[], OnboardingDeps]) -> Mapping[str, Callable[[QueuedEvent], dict[str, Any]]]:
    """Event type -> work. Dependencies are built on first use, so a cold start pays only for what it runs."""
    return {
        "member_joined": lambda queued: onboard_member(queued, deps_for()),
        "member_active": lambda queued: record_activity(queued, deps_for()),
        "member_screening_passed": lambda queued: complete_screening(queued, deps_for()),
    }
