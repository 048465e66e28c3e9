"""Registration records in DynamoDB (the registrations table): `EVENT#<slug>` / `MEMBER#<member id>`, one item
per person and event, so an event's registrations are one query; a member's are one query on the `by-member`
index (keys only: `member_id`, `pk`, `sk`). Each event's end, as the reconciliation last read it, is one more item
(`EVENTINFO#<slug>` / `EVENT`: no member, so never in the member index nor in an event's registrations), and the
events the last reconciliation run left for the next one, one item for all (`RECONCILE` / `LEFT`: their slugs)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from memberflow.adapters.dynamo import as_datetime, query_all, table
from memberflow.registrations.model import Registration, Status, Ticket

MEMBER_INDEX = "by-member"
"""RegistrationsTable's index keyed by `member_id` (template.yaml), projecting the keys only."""
EVENT_PREFIX = "EVENT#"
EVENT_INFO_PREFIX = "EVENTINFO#"
RECONCILE_LEFT_KEY = {"pk": "RECONCILE", "sk": "LEFT"}


def _key(event_slug: str, member_id: str) -> dict[str, str]:
    return {"pk": f"{EVENT_PREFIX}{event_slug}", "sk": f"MEMBER#{member_id}"}


def _item(registration: Registration) -> dict[str, Any]:
    item: dict[str, Any] = {
        **_key(registration.event_slug, registration.member_id),
        "event_slug": registration.event_slug,
        "member_id": registration.member_id,
        "email": registration.email,
        "status": registration.status.value,
        "first_time": registration.first_time,
        "in_mailchimp": registration.in_mailchimp,
        "refused": registration.refused,
        "held": registration.held,
    }
    if registration.walk_in:
        item["walk_in"] = True
    if registration.tickets:
        item["tickets"] = {
            ticket.id: {"order_id": ticket.order_id, "cancelled": ticket.cancelled, "checked_in": ticket.checked_in}
            for ticket in registration.tickets
        }
    # DynamoDB refuses empty sets: absent means none.
    if registration.tags:
        item["tags"] = set(registration.tags)
    if registration.sources:
        item["sources"] = set(registration.sources)
    for name in ("registered_at", "updated_at"):
        moment = getattr(registration, name)
        if moment is not None:
            item[name] = moment.isoformat()
    return item


def _tickets(found: Any) -> tuple[Ticket, ...]:
    if not isinstance(found, dict):
        return ()
    return tuple(
        sorted(
            Ticket(
                str(ticket_id),
                str(fields.get("order_id", "")),
                cancelled=bool(fields.get("cancelled", False)),
                checked_in=bool(fields.get("checked_in", False)),
            )
            for ticket_id, fields in found.items()
            if isinstance(fields, dict)
        )
    )


def _registration(item: dict[str, Any]) -> Registration:
    status = Status(item["status"])
    return Registration(
        event_slug=item["event_slug"],
        member_id=item["member_id"],
        email=item["email"],
        status=status,
        tags=frozenset(item.get("tags", ())),
        first_time=bool(item.get("first_time", True)),
        in_mailchimp=bool(item.get("in_mailchimp", False)),
        refused=str(item.get("refused", "")),
        sources=frozenset(item.get("sources", ())),
        registered_at=as_datetime(item.get("registered_at")),
        updated_at=as_datetime(item.get("updated_at")),
        # Stored before places and tickets were kept: a place is held unless cancelled.
        held=bool(item.get("held", status is not Status.CANCELLED)),
        tickets=_tickets(item.get("tickets")),
        walk_in=bool(item.get("walk_in", False)),
    )


class DynamoRegistrationStore:
    def __init__(self, table_name: str) -> None:
        self._table_name = table_name

    @property
    def _table(self) -> Any:
        return table(self._table_name)

    def get(self, event_slug: str, member_id: str) -> Registration | None:
        item = self._table.get_item(Key=_key(event_slug, member_id), ConsistentRead=True).get("Item")
        return _registration(item) if item else None

    def put(self, registration: Registration) -> None:
        self._table.put_item(Item=_item(registration))

    def put_many(self, registrations: Sequence[Registration]) -> None:
        for registration in registrations:
            self.put(registration)

    def for_event(self, event_slug: str) -> list[Registration]:
        items = query_all(
            self._table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": f"EVENT#{event_slug}"},
            ConsistentRead=True,
        )
        return [_registration(item) for item in items]

    def item_keys(self, member_id: str) -> list[dict[str, str]]:
        """The keys (`pk`, `sk`) of the member's registrations, from the member index (eventually consistent: a
        registration written a moment ago may show a moment later)."""
        items = query_all(
            self._table,
            IndexName=MEMBER_INDEX,
            KeyConditionExpression="member_id = :member",
            ExpressionAttributeValues={":member": member_id},
        )
        return [{"pk": str(item["pk"]), "sk": str(item["sk"])} for item in items]

    def events_of(self, member_id: str) -> list[str]:
        return sorted(key["pk"].removeprefix(EVENT_PREFIX) for key in self.item_keys(member_id))

    def delete(self, event_slug: str, member_id: str) -> bool:
        answer = self._table.delete_item(Key=_key(event_slug, member_id), ReturnValues="ALL_OLD")
        return "Attributes" in answer

    def event_end(self, event_slug: str) -> datetime | None:
        # A query, not GetItem: the reconciliation may only query and put the table (template.yaml).
        items = query_all(
            self._table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": f"{EVENT_INFO_PREFIX}{event_slug}"},
            ConsistentRead=True,
        )
        found = next(iter(items), None)
        return as_datetime(found.get("end")) if found else None

    def set_event_end(self, event_slug: str, end: datetime) -> None:
        self._table.put_item(
            Item={
                "pk": f"{EVENT_INFO_PREFIX}{event_slug}",
                "sk": "EVENT",
                "event_slug": event_slug,
                "end": end.isoformat(),
            }
        )

    def reconcile_left(self) -> list[str]:
        items = query_all(
            self._table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": RECONCILE_LEFT_KEY["pk"]},
            ConsistentRead=True,
        )
        found = next((item for item in items if item.get("sk") == RECONCILE_LEFT_KEY["sk"]), None)
        return [str(slug) for slug in found.get("slugs", [])] if found else []

    def set_reconcile_left(self, slugs: Sequence[str]) -> None:
        self._table.put_item(Item={**RECONCILE_LEFT_KEY, "slugs": list(slugs)})
