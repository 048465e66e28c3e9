"""Registrations as memberflow keeps them, what Eventbrite says about an attendee, and the ports this capability
talks to (the Eventbrite API, the registration table)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from memberflow.errors import InvalidMessage
from memberflow.models import check_email


class Status(StrEnum):
    REGISTERED = "registered"
    CANCELLED = "cancelled"
    ATTENDED = "attended"
    NO_SHOW = "no_show"


def tag(slug: str, what: str) -> str:
    return f"event:{slug}:{what}"


def tags_for(slug: str, status: Status) -> frozenset[str]:
    """The Mailchimp tags a registration of this status carries: `registered` while the person holds a place
    (attended or not), then `attended` or `no_show`; a cancellation or refund carries none."""
    if status is Status.CANCELLED:
        return frozenset()
    tags = {tag(slug, "registered")}
    if status is Status.ATTENDED:
        tags.add(tag(slug, "attended"))
    elif status is Status.NO_SHOW:
        tags.add(tag(slug, "no_show"))
    return frozenset(tags)


@dataclass(frozen=True)
class Registration:
    """One person's registration for one event (whatever number of tickets or platforms)."""

    event_slug: str
    member_id: str
    email: str
    status: Status
    tags: frozenset[str] = frozenset()
    """The tags Mailchimp holds for it (what was applied): the next change adds and removes only the difference."""
    first_time: bool = True
    """The member's first event registration."""
    in_mailchimp: bool = False
    """The contact is in the audience (added, or found there)."""
    refused: str = ""
    """Mailchimp refused the contact for good (compliance state, forgotten address): why."""
    sources: frozenset[str] = frozenset()
    registered_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class Attendee:
    """What Eventbrite (or Zoom) says about one person's place at an event."""

    event_id: str
    email: str
    name: str | None = None
    cancelled: bool = False
    """Cancelled or refunded."""
    checked_in: bool = False
    created: datetime | None = None
    source: str = "eventbrite"


def merge(attendees: Iterable[Attendee]) -> dict[str, Attendee]:
    """One entry per address (lower-cased): a person holding several tickets holds a place while any of them is
    not cancelled, and attended when any was checked in."""
    merged: dict[str, Attendee] = {}
    for attendee in attendees:
        key = attendee.email.lower()
        seen = merged.get(key)
        if seen is None:
            merged[key] = attendee
            continue
        merged[key] = replace(
            seen,
            cancelled=seen.cancelled and attendee.cancelled,
            checked_in=seen.checked_in or attendee.checked_in,
            created=min((m for m in (seen.created, attendee.created) if m), default=None),
        )
    return merged


def next_status(current: Registration | None, attendee: Attendee, *, ended: bool) -> Status:
    """The registration's status after what the platform now says. Attendance is sticky (a check-out or a
    webinar left does not undo it); after the event, a place held without attending is a no-show."""
    if attendee.cancelled:
        return Status.CANCELLED
    if attendee.checked_in or (current is not None and current.status is Status.ATTENDED):
        return Status.ATTENDED
    return Status.NO_SHOW if ended else Status.REGISTERED


# ---------------------------------------------------------------- Eventbrite's resources


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def attendee_from(resource: Mapping[str, Any], source: str = "eventbrite") -> Attendee | None:
    """An Eventbrite attendee object as an `Attendee`; None without a usable address (Eventbrite allows orders
    that collect none per attendee)."""
    found = resource.get("profile")
    profile: Mapping[str, Any] = found if isinstance(found, dict) else {}
    try:
        email = check_email(_text(profile.get("email")))
    except ValueError:
        return None
    event_id = _text(resource.get("event_id"))
    if not email or not event_id:
        return None
    name = " ".join(part for part in (_text(profile.get("first_name")), _text(profile.get("last_name"))) if part)
    status = str(resource.get("status") or "")
    return Attendee(
        event_id=event_id,
        email=email,
        name=(name or _text(profile.get("name")) or None),
        cancelled=bool(resource.get("cancelled")) or bool(resource.get("refunded")) or status == "Not Attending",
        checked_in=bool(resource.get("checked_in")) or status == "Checked In",
        created=_moment(resource.get("created")),
        source=source,
    )


@dataclass(frozen=True)
class EventInfo:
    event_id: str
    organization_id: str
    name: str
    start: datetime | None
    end: datetime | None


def event_from(resource: Mapping[str, Any]) -> EventInfo:
    if not _text(resource.get("id")):
        raise InvalidMessage("the Eventbrite event has no id")
    name = resource.get("name")
    return EventInfo(
        event_id=str(resource["id"]),
        organization_id=str(resource.get("organization_id") or ""),
        name=str(name.get("text") if isinstance(name, dict) else name or ""),
        start=_moment((resource.get("start") or {}).get("utc")),
        end=_moment((resource.get("end") or {}).get("utc")),
    )


# ---------------------------------------------------------------- ports


class EventbriteApi(Protocol):
    """The Eventbrite API (OAuth token, retries). Failures arrive as `memberflow.errors`; a URL off the API host is
    refused (`PermanentRefusal`) before any request."""

    def fetch(self, api_url: str) -> dict[str, Any]:
        """The order (attendees and event expanded) or attendee (event expanded) a webhook names."""

    def event(self, event_id: str) -> dict[str, Any]: ...

    def attendees(self, event_id: str) -> Iterator[dict[str, Any]]:
        """Every attendee of the event, following the continuation tokens."""


class RegistrationStore(Protocol):
    def get(self, event_slug: str, member_id: str) -> Registration | None: ...

    def put(self, registration: Registration) -> None: ...

    def put_many(self, registrations: Sequence[Registration]) -> None: ...

    def for_event(self, event_slug: str) -> list[Registration]: ...

    def events_of(self, member_id: str) -> list[str]:
        """The slugs of the events the member holds a registration for (by the member index, not a scan)."""

    def delete(self, event_slug: str, member_id: str) -> bool:
        """Delete one registration; whether there was one (deleting none is not an error)."""


@dataclass
class Report:
    """What a sync or a reconciliation changed, in counts (never addresses)."""

    event_slug: str = ""
    attendees: int = 0
    created: int = 0
    """Registrations that were missing (a webhook never arrived)."""
    changed: int = 0
    """Registrations whose status was behind."""
    no_shows: int = 0
    tags_added: int = 0
    tags_removed: int = 0
    contacts_added: int = 0
    refused: int = 0
    details: dict[str, int] = field(default_factory=dict)
