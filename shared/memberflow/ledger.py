"""The consent ledger: every change of a member's marketing consent, appended and never overwritten, so memberflow
can show why a member does (or does not) receive marketing email: given, not given, confirmed by double opt-in,
upgraded later, withdrawn; where (platform), by which event (type and id), in answer to what wording, and when.

The member record's consent is derived from it (`consent_from`), and Mailchimp's `timestamp_signup` and
`timestamp_opt` are taken from it (`provenance`). An erasure deletes the ledger with the member; what remains is the
suppression entry (a keyed hash, the date and who passed the request on), shown as the ledger's `erased` entry.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol


class Change(StrEnum):
    GIVEN = "given"
    """The member agreed to marketing email (subscribed at once, or asked to confirm: see `status`)."""
    NOT_GIVEN = "not_given"
    """The platform said the member did not agree (or carries no consent at all): stored without permission."""
    CONFIRMED = "confirmed"
    """The member confirmed Mailchimp's double opt-in email."""
    UPGRADED = "upgraded"
    """Consent given after joining moved a member stored without permission on."""
    WITHDRAWN = "withdrawn"
    """Unsubscribed or cleaned in Mailchimp (by the member, by Mailchimp, or found so at an upsert)."""
    ERASED = "erased"
    """The person asked to be forgotten: only the suppression entry is left."""


CONSENTING = frozenset({Change.GIVEN, Change.CONFIRMED, Change.UPGRADED})


@dataclass(frozen=True)
class Wording:
    """What the member agreed to, as the source asked it (e.g. the Discourse user field's label), versioned."""

    text: str
    version: str

    def as_json(self) -> dict[str, str]:
        return {"text": self.text, "version": self.version}


@dataclass(frozen=True)
class ConsentEntry:
    member_id: str
    change: Change
    platform: str
    """Where the change was made: discourse, discord, generic, slack, mailchimp, or operator."""
    source_event_type: str
    source_event_id: str
    """The event's idempotency key (the platform's own ids): the same event never appends twice."""
    at: datetime
    status: str
    """The Mailchimp status the change led to (subscribed, pending, transactional, unsubscribed, cleaned)."""
    detail: str = ""
    wording: Wording | None = None
    """None when the source asked nothing (Slack) or no wording is configured for it: never invented."""
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Unique per event and change (whenever it is processed): appending it again (a redelivery, a retry)
        changes nothing."""
        return hashlib.sha256(f"{self.source_event_id}|{self.change.value}".encode()).hexdigest()[:32]

    def as_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "change": self.change.value,
            "status": self.status,
            "platform": self.platform,
            "source_event_type": self.source_event_type,
            "source_event_id": self.source_event_id,
            "wording": self.wording.as_json() if self.wording else None,
            "detail": self.detail,
            **({"extra": dict(self.extra)} if self.extra else {}),
        }


class ConsentLedger(Protocol):
    def append(self, entry: ConsentEntry) -> bool:
        """Add the entry unless it is there already (conditional write: never overwritten); True when added."""

    def entries(self, member_id: str) -> list[ConsentEntry]:
        """The member's entries, oldest first."""


def consent_from(entries: Iterable[ConsentEntry]) -> bool | None:
    """The member's marketing consent as the ledger says it now: the latest change decides; None without one."""
    ordered = sorted(entries, key=lambda entry: entry.at)
    for entry in reversed(ordered):
        if entry.change in CONSENTING:
            return True
        if entry.change in (Change.WITHDRAWN, Change.NOT_GIVEN, Change.ERASED):
            return False
    return None


def asks_again(
    entries: Iterable[ConsentEntry], event_id: str, platform: str, at: datetime, *, standing: bool = False
) -> bool:
    """Whether consent given at `at` through the event `event_id` on `platform` is a new request of a member who
    opted out: made after their latest withdrawal, and not consent the ledger already holds. Not a new request:

    - the same event again (a retry, a redelivery, a redrive): its consent is on the ledger already;
    - consent given before the latest withdrawal (an event that waited in a queue, a platform re-sending an old
      sign-up, such as a forum's approval of an account created before the opt-out);
    - `standing` consent (a consent box that stays ticked in a profile, which the platform sends again with every
      profile edit without saying when it was ticked) when this platform has given the member's consent before: the
      box has been ticked since then, and nothing shows it was ticked again."""
    ordered = sorted(entries, key=lambda entry: entry.at)
    if any(entry.source_event_id == event_id and entry.change in CONSENTING for entry in ordered):
        return False
    withdrawn = [entry.at for entry in ordered if entry.change in (Change.WITHDRAWN, Change.ERASED)]
    if withdrawn and at <= withdrawn[-1]:
        return False
    return not (standing and any(entry.platform == platform and entry.change in CONSENTING for entry in ordered))


@dataclass(frozen=True)
class Provenance:
    """What Mailchimp is told about a member's consent; only what the ledger shows."""

    timestamp_signup: datetime | None = None
    """When the member gave consent (for double opt-in: when the confirmation was asked for)."""
    timestamp_opt: datetime | None = None
    """When the member's opt-in was complete (a direct subscribe, or their confirmation)."""

    def fields(self) -> dict[str, str]:
        values = {"timestamp_signup": self.timestamp_signup, "timestamp_opt": self.timestamp_opt}
        return {name: mailchimp_time(value) for name, value in values.items() if value is not None}


def provenance(entries: Iterable[ConsentEntry]) -> Provenance:
    """Since the latest withdrawal: the first consent given (signup) and the first time the member was subscribed by
    it (opt)."""
    current: list[ConsentEntry] = []
    for entry in sorted(entries, key=lambda entry: entry.at):
        if entry.change in (Change.WITHDRAWN, Change.ERASED):
            current = []
        elif entry.change in CONSENTING:
            current.append(entry)
    signup = current[0].at if current else None
    opted = next((entry.at for entry in current if entry.status == "subscribed"), None)
    return Provenance(signup, opted)


def mailchimp_time(moment: datetime) -> str:
    """ISO 8601 in UTC, seconds precision, as Mailchimp writes its own timestamps."""
    from datetime import UTC

    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def format_entries(entries: Iterable[ConsentEntry]) -> list[str]:
    """One line per entry, for `memberflow trace`."""
    lines = []
    for entry in sorted(entries, key=lambda entry: entry.at):
        wording = f' wording "{entry.wording.text}" (v{entry.wording.version})' if entry.wording else ""
        lines.append(
            f"{entry.at:%Y-%m-%d %H:%M:%S}  {entry.change.value:<10} {entry.status:<13} {entry.platform:<10} "
            f"{entry.source_event_type} {entry.source_event_id}{wording}"
            + (f": {entry.detail}" if entry.detail else "")
        )
    return lines
