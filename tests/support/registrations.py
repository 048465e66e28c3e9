"""In-memory Eventbrite and registration table for the event sync's domain tests."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from memberflow.errors import PermanentRefusal, RateLimited, ResourceGone
from memberflow.intake.eventbrite import api_resource_path
from memberflow.registrations.model import Registration

if TYPE_CHECKING:
    from memberflow.registrations.model import CallMeter

API = "https://www.eventbriteapi.com/v3"


@dataclass
class FakeEventbrite:
    """Eventbrite's events, orders and attendees, as its API answers them (attendee objects with `profile`,
    `cancelled`, `refunded`, `checked_in`; attendee lists in pages of `page_size` with continuation tokens)."""

    organization_id: str = "555"
    page_size: int = 50
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    people: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Attendee id -> attendee object."""
    calls: list[str] = field(default_factory=list)
    failing: dict[str, Exception] = field(default_factory=dict)
    """Event id -> the error its event and attendee list reads raise (a 429, an outage, an account problem)."""
    calls_per_hour: int | None = None
    """The token's hourly limit: every call beyond this many answers 429 HIT_RATE_LIMIT without Retry-After."""
    meter: CallMeter | None = None
    """A metered view's meter (`metered`): charged before each call, as the adapter does."""

    def add_event(self, event_id: str, *, ends_in: timedelta = timedelta(days=3), now: datetime | None = None) -> None:
        now = now or datetime.now(UTC)
        self.events[event_id] = {
            "id": event_id,
            "organization_id": self.organization_id,
            "name": {"text": f"Event {event_id}"},
            "start": {"utc": (now + ends_in - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")},
            "end": {"utc": (now + ends_in).strftime("%Y-%m-%dT%H:%M:%SZ")},
        }

    def register(
        self,
        event_id: str,
        email: str,
        *,
        attendee_id: str | None = None,
        name: str = "Ada Lovelace",
        order_id: str | None = None,
    ) -> str:
        """One ticket; in an order of its own unless `order_id` names one (a buyer ordering for several people)."""
        attendee_id = attendee_id or str(1000 + len(self.people))
        first, _, last = name.partition(" ")
        self.people[attendee_id] = {
            "id": attendee_id,
            "order_id": order_id or f"9{attendee_id}",
            "event_id": event_id,
            "profile": {"email": email, "first_name": first, "last_name": last},
            "status": "Attending",
            "checked_in": False,
            "cancelled": False,
            "refunded": False,
            "created": "2026-11-20T10:00:00Z",
        }
        return attendee_id

    def refund(self, attendee_id: str) -> None:
        self.people[attendee_id].update(status="Not Attending", refunded=True, cancelled=True)

    def check_in(self, attendee_id: str) -> None:
        self.people[attendee_id].update(status="Checked In", checked_in=True)

    def delete_order(self, order_id: str) -> None:
        """The organizer deletes the order: its attendees are gone from every answer (fetching it is a 404)."""
        for attendee_id in [a for a, item in self.people.items() if item["order_id"] == order_id]:
            del self.people[attendee_id]

    def change_email(self, attendee_id: str, email: str) -> None:
        """The ticket's holder edits its address (`attendee.updated`)."""
        self.people[attendee_id]["profile"]["email"] = email

    def order_url(self, attendee_id: str) -> str:
        return f"{API}/orders/{self.people[attendee_id]['order_id']}/"

    def attendee_url(self, attendee_id: str) -> str:
        event_id = self.people[attendee_id]["event_id"]
        return f"{API}/events/{event_id}/attendees/{attendee_id}/"

    # -- the port
    def metered(self, meter: CallMeter) -> FakeEventbrite:
        """The same Eventbrite (shared events, attendees and calls), each call charged to `meter` first."""
        return replace(self, meter=meter)

    def _call(self, kind: str) -> None:
        """One request: charged to the meter, counted, and refused beyond the hourly limit."""
        if self.meter is not None:
            self.meter.spend()
        self.calls.append(kind)
        if self.calls_per_hour is not None and len(self.calls) > self.calls_per_hour:
            self._refuse(RateLimited("Eventbrite 429 HIT_RATE_LIMIT"))

    def _refuse(self, error: Exception) -> None:
        """Raise `error` as Eventbrite's answer; a 429 is told to the meter, as the adapter does."""
        if isinstance(error, RateLimited) and self.meter is not None:
            self.meter.throttled()
        raise error

    def fetch(self, api_url: str) -> dict[str, Any]:
        resource = api_resource_path(api_url, API)
        if resource is None:
            raise PermanentRefusal("Not the Eventbrite API", "off host")
        self._call("fetch")
        parts = [part for part in resource.split("/") if part]
        if parts[0] == "orders":
            items = [dict(a) for a in self.people.values() if a["order_id"] == parts[1]]
            if not items:
                raise ResourceGone("Deleted on Eventbrite", f"order {parts[1]}", 404)
            event_id = items[0]["event_id"]
            return {"id": parts[1], "event_id": event_id, "attendees": items, "event": self.events.get(event_id, {})}
        if parts[-1] not in self.people:
            raise ResourceGone("Deleted on Eventbrite", f"attendee {parts[-1]}", 404)
        attendee = dict(self.people[parts[-1]])
        return {**attendee, "event": self.events.get(attendee["event_id"], {})}

    def event(self, event_id: str) -> dict[str, Any]:
        self._call("event")
        if event_id in self.failing:
            self._refuse(self.failing[event_id])
        return self.events[event_id]

    def attendees_of(self, event_id: str) -> list[dict[str, Any]]:
        return [dict(a) for a in self.people.values() if a["event_id"] == event_id]

    def attendees(self, event_id: str) -> Iterator[dict[str, Any]]:
        if event_id in self.failing:
            self._call("attendees")
            self._refuse(self.failing[event_id])
        items = self.attendees_of(event_id)
        for start in range(0, max(len(items), 1), self.page_size):
            self._call("attendees")
            if start == 0 and self.meter is not None and len(items) > self.page_size:
                self.meter.expect(-(-len(items) // self.page_size) - 1)  # the pages still to read
            yield from items[start : start + self.page_size]


class MemoryRegistrations:
    def __init__(self) -> None:
        self.items: dict[tuple[str, str], Registration] = {}
        self.ends: dict[str, datetime] = {}
        self.left: list[str] = []
        self.writes = 0

    def event_end(self, event_slug: str) -> datetime | None:
        return self.ends.get(event_slug)

    def set_event_end(self, event_slug: str, end: datetime) -> None:
        self.ends[event_slug] = end

    def reconcile_left(self) -> list[str]:
        return list(self.left)

    def set_reconcile_left(self, slugs: Sequence[str]) -> None:
        self.left = list(slugs)

    def get(self, event_slug: str, member_id: str) -> Registration | None:
        return self.items.get((event_slug, member_id))

    def put(self, registration: Registration) -> None:
        self.writes += 1
        self.items[(registration.event_slug, registration.member_id)] = registration

    def put_many(self, registrations: Sequence[Registration]) -> None:
        for registration in registrations:
            self.put(registration)

    def for_event(self, event_slug: str) -> list[Registration]:
        return [r for (slug, _), r in self.items.items() if slug == event_slug]

    def events_of(self, member_id: str) -> list[str]:
        return sorted(slug for slug, member in self.items if member == member_id)

    def delete(self, event_slug: str, member_id: str) -> bool:
        return self.items.pop((event_slug, member_id), None) is not None
