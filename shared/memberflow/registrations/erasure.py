"""Erasure of a member's registrations: the onboarding erasure hands the person's member ids on to the event sync
consumer (a `registrant_erased` event), which deletes every registration stored under them. Safe to repeat.

A registration is stored under `privacy.email_key` of the address the person registered with (Eventbrite's
attendee profile, Zoom's registrant), the member id the member record of that address has too. The erasure knows
the person's addresses, and for each registration the identity `<eventbrite|zoom>:<event id>:<member id>` linked
to their member record (a member who changed their address later is still found under the old one)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from memberflow.errors import InvalidMessage
from memberflow.events.registrations import RegistrantErased
from memberflow.pipeline.envelope import QueuedEvent
from memberflow.privacy import email_key
from memberflow.registrations.model import RegistrationStore
from memberflow.registrations.sync import EVENT_PLATFORMS

logger = logging.getLogger(__name__)


def registrant_ids(emails: Iterable[str], identities: Iterable[str]) -> list[str]:
    """The member ids the person's registrations can be stored under: one per address, and the one each event
    identity of theirs names (`registrations.sync.remember_member` links them)."""
    ids = {email_key(email) for email in emails}
    for identity in identities:
        platform, _, rest = identity.partition(":")
        _, _, member_id = rest.partition(":")
        if platform in EVENT_PLATFORMS and member_id:
            ids.add(member_id)
    return sorted(ids)


MEMBER_IDS_PER_EVENT = 100
"""As many member ids as one `registrant_erased` event holds (a person has one per address they registered with)."""
MAX_KEY_LENGTH = 500
"""An idempotency key's length at most (as the escalation's hand-on cuts it): a long erasure key is cut, the suffix
that tells the parts apart is kept."""


def erasure_events(
    emails: Iterable[str], identities: Iterable[str], erasure_key: str, correlation_id: str
) -> list[QueuedEvent]:
    """What the onboarding erasure hands on to the registrations queue: the person's member ids, in events keyed by
    the erasure's own key (a retried erasure sends the same events, which the consumer's idempotency absorbs);
    none when no registration can be stored under what the erasure knows."""
    member_ids = registrant_ids(emails, identities)
    events = []
    for start in range(0, len(member_ids), MEMBER_IDS_PER_EVENT):
        suffix = ":registrations" + (f":{start // MEMBER_IDS_PER_EVENT}" if start else "")
        events.append(
            QueuedEvent(
                idempotency_key=erasure_key[: MAX_KEY_LENGTH - len(suffix)] + suffix,
                correlation_id=correlation_id,
                source="erasure",
                event=RegistrantErased(member_ids=member_ids[start : start + MEMBER_IDS_PER_EVENT]),
            )
        )
    return events


def forget_registrant(queued: QueuedEvent, registrations: RegistrationStore) -> dict[str, Any]:
    """Delete every registration of the erased member ids (nothing to delete is not an error: a repeat, or a
    person who never registered)."""
    event = queued.event
    if not isinstance(event, RegistrantErased):
        raise InvalidMessage(f"not a registrant erasure: {event.type}")
    deleted = sum(
        registrations.delete(slug, member_id)
        for member_id in event.member_ids
        for slug in registrations.events_of(member_id)
    )
    logger.info("registrant erased", extra={"member_ids": len(event.member_ids), "registrations": deleted})
    return {"result": "erased", "registrations": deleted}
