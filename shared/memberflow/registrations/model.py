"""Registrations as memberflow keeps them, what Eventbrite says about an attendee, and the ports this capability
talks to (the Eventbrite API, the registration table)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol
from urllib.parse import urlsplit

from memberflow.errors import InvalidMessage
from memberflow.models import check_email


class Status(StrEnum):
    REGISTERED = "registered"
    CANCELLED = "cancelled"
    ATTENDED = "attended"
    NO_SHOW = "no_show"


def tag(slug: str, what: str) -> str:
    return f"event:{slug}:{what}"


def tags_for(slug: str, status: Status, held: bool) -> frozenset[str]:
    """The Mailchimp tags a registration of this status carries: `registered` while the person holds a place
    (`held`), then `attended` or `no_show`. A cancellation or refund removes `registered`; attendance stays (someone
    refunded after attending keeps `attended` only)."""
    tags = {tag(slug, "registered")} if held and status is not Status.CANCELLED else set()
    if status is Status.ATTENDED:
        tags.add(tag(slug, "attended"))
    elif status is Status.NO_SHOW:
        tags.add(tag(slug, "no_show"))
    return frozenset(tags)


@dataclass(frozen=True, order=True)
class Ticket:
    """One Eventbrite ticket (attendee object) of a person, as Eventbrite last said: its attendee id, its order,
    and whether it was cancelled or refunded, or checked in."""

    id: str
    order_id: str = ""
    cancelled: bool = False
    checked_in: bool = False


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
    held: bool = True
    """The person holds a place now: an Eventbrite ticket that is not cancelled, or a Zoom registration. The
    `registered` tag follows it; an attended registration whose place was cancelled afterwards keeps `attended`."""
    tickets: tuple[Ticket, ...] = ()
    """The person's Eventbrite tickets for the event as we last saw them (sorted by id): a change of one ticket is
    settled against all of them, without asking Eventbrite for the others."""
    walk_in: bool = False
    """Joined on Zoom without ever registering (a host, a panelist, a forwarded link): attendance is recorded, but
    it is no registration: no member, no Mailchimp contact, no tags, not in the registration figures. Becomes a
    registration (which attended) when the person turns out to hold a place after all."""

    @property
    def wanted_tags(self) -> frozenset[str]:
        return tags_for(self.event_slug, self.status, self.held)


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
    ticket_id: str = ""
    """Eventbrite's attendee id ("" for Zoom, or an attendee object without one)."""
    order_id: str = ""

    @property
    def ticket(self) -> Ticket | None:
        if not self.ticket_id:
            return None
        return Ticket(self.ticket_id, self.order_id, cancelled=self.cancelled, checked_in=self.checked_in)


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


def tickets_by_person(attendees: Iterable[Attendee]) -> dict[str, tuple[Ticket, ...]]:
    """Each person's tickets among `attendees` (one attendee object per ticket), by address lower-cased as `merge`
    keys them, sorted by id."""
    tickets: dict[str, list[Ticket]] = {}
    for attendee in attendees:
        if attendee.ticket is not None:
            tickets.setdefault(attendee.email.lower(), []).append(attendee.ticket)
    return {key: tuple(sorted(held)) for key, held in tickets.items()}


def with_tickets(known: Iterable[Ticket], fetched: Iterable[Ticket]) -> tuple[Ticket, ...]:
    """The person's tickets after a fetch: what Eventbrite now says about the fetched ones, the others as known."""
    tickets = {ticket.id: ticket for ticket in known}
    tickets.update((ticket.id, ticket) for ticket in fetched)
    return tuple(sorted(tickets.values()))


def settled(attendee: Attendee, tickets: Sequence[Ticket]) -> Attendee:
    """`attendee` (what Eventbrite said in the resource just fetched) settled against all the person's tickets for
    the event: they hold a place while any ticket is not cancelled, and attended when any was checked in."""
    return replace(
        attendee,
        cancelled=attendee.cancelled and all(ticket.cancelled for ticket in tickets),
        checked_in=attendee.checked_in or any(ticket.checked_in for ticket in tickets),
    )


def next_status(current: Registration | None, attendee: Attendee, *, ended: bool) -> Status:
    """The registration's status after what the platform now says. Attendance is sticky (a check-out, a webinar
    left, or a refund or cancellation after attending does not undo it: the place goes, the attendance stays);
    after the event, a place held without attending is a no-show."""
    if attendee.checked_in or (current is not None and current.status is Status.ATTENDED):
        return Status.ATTENDED
    if attendee.cancelled:
        return Status.CANCELLED
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
        ticket_id=str(resource.get("id") or ""),
        order_id=str(resource.get("order_id") or ""),
    )


@dataclass(frozen=True)
class GoneResource:
    """The order or attendee a webhook named, by the ids in its `api_url` (the event's too when the URL has it)."""

    kind: str
    """"orders" or "attendees"."""
    id: str
    event_id: str = ""

    def matches(self, ticket: Ticket) -> bool:
        return ticket.order_id == self.id if self.kind == "orders" else ticket.id == self.id


def gone_resource(api_url: str) -> GoneResource | None:
    """The order or attendee an Eventbrite `api_url` names (`.../orders/1/`, `.../attendees/2/`,
    `.../events/3/attendees/4/`, `.../events/3/orders/5/`); None for anything else."""
    parts = [part for part in urlsplit(api_url).path.split("/") if part]
    if len(parts) < 2 or parts[-2] not in ("orders", "attendees") or not parts[-1].isdigit():
        return None
    event_id = parts[-3] if len(parts) >= 4 and parts[-4] == "events" and parts[-3].isdigit() else ""
    return GoneResource(parts[-2], parts[-1], event_id)


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


class CallMeter(Protocol):
    """Counts a run's Eventbrite calls (the reconciliation's budget): the API charges it before each request."""

    def spend(self) -> None:
        """One request is about to be sent (each attempt, each page): raises, and nothing is sent, when the run
        may make no more."""

    def expect(self, calls: int) -> None:
        """`calls` more requests are needed to finish what was started (the attendee pages still to read, known
        from the first page): raises now, before any of them is sent, when they will not fit."""

    def throttled(self) -> None:
        """Eventbrite answered a request with its rate limit (a 429): told apart from Mailchimp's, which raises the
        same `RateLimited`."""


class EventbriteApi(Protocol):
    """The Eventbrite API (OAuth token, retries). Failures arrive as `memberflow.errors`; a URL off the API host is
    refused (`PermanentRefusal`) before any request. A 429 without Retry-After is not retried at once: Eventbrite's
    limit is per hour, a retry a moment later only spends another call."""

    def fetch(self, api_url: str) -> dict[str, Any]:
        """The order (attendees and event expanded) or attendee (event expanded) a webhook names; `ResourceGone`
        when Eventbrite no longer has it (404)."""

    def event(self, event_id: str) -> dict[str, Any]: ...

    def attendees(self, event_id: str) -> Iterator[dict[str, Any]]:
        """Every attendee of the event, following the continuation tokens."""

    def metered(self, meter: CallMeter) -> EventbriteApi:
        """This API with every request charged to `meter` first (each attempt of an event read, each attendee
        page), and the pages still to read announced (`meter.expect`) once the first page says how many there are."""


class RegistrationStore(Protocol):
    def get(self, event_slug: str, member_id: str) -> Registration | None: ...

    def put(self, registration: Registration) -> None: ...

    def put_many(self, registrations: Sequence[Registration]) -> None: ...

    def for_event(self, event_slug: str) -> list[Registration]: ...

    def events_of(self, member_id: str) -> list[str]:
        """The slugs of the events the member holds a registration for (by the member index, not a scan)."""

    def delete(self, event_slug: str, member_id: str) -> bool:
        """Delete one registration; whether there was one (deleting none is not an error)."""

    def event_end(self, event_slug: str) -> datetime | None:
        """When the event ends, as the last reconciliation run read it from Eventbrite (None: never read)."""

    def set_event_end(self, event_slug: str, end: datetime) -> None: ...

    def reconcile_left(self) -> list[str]:
        """The slugs of the events the last reconciliation run left for the next (its call budget spent, Eventbrite
        throttling, a failure), in the order it had; empty when it left none."""

    def set_reconcile_left(self, slugs: Sequence[str]) -> None: ...


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
    cancelled: int = 0
    """Registrations Eventbrite's attendee list no longer holds (a deleted ticket, an address changed): cancelled."""
    tags_added: int = 0
    tags_removed: int = 0
    contacts_added: int = 0
    refused: int = 0
    details: dict[str, int] = field(default_factory=dict)
    left: str = ""
    """Why the event was left for the next run ("" when it was reconciled): the kind of failure, never an address."""
    needs_operator: bool = False
    """Left for a reason the next run will not fix by itself (an account problem, an unexpected error)."""
