"""The registrations table keeps what event sync settles on: whether a place is held, each Eventbrite ticket of the
person, walk-ins, and each event's end (for the reconciliation's skip), which never shows among the event's
registrations; items stored before these were kept read as before (a place held unless cancelled)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from memberflow.registrations.model import Registration, Status, Ticket
from support.moto_tables import mocked_table

SLUG = "webinar-dec"
AT = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


@pytest.fixture
def store(monkeypatch):
    from memberflow.adapters import registrations as adapter
    from memberflow.adapters.aws import DynamoTable

    with mocked_table("registrations", ("pk", "S"), ("sk", "S")) as client:
        monkeypatch.setattr(adapter, "table", lambda name: DynamoTable(name, client))
        yield adapter.DynamoRegistrationStore("registrations"), client


def test_places_tickets_and_walk_ins_are_kept_and_older_items_read_as_before(store):
    registrations, client = store
    refunded_after_attending = Registration(
        event_slug=SLUG,
        member_id="m1",
        email="ada@example.org",
        status=Status.ATTENDED,
        tags=frozenset({f"event:{SLUG}:attended"}),
        in_mailchimp=True,
        sources=frozenset({"eventbrite"}),
        registered_at=AT,
        held=False,
        tickets=(Ticket("101", "9101", cancelled=True, checked_in=True), Ticket("102", "9102", cancelled=True)),
    )
    walk_in = Registration(
        event_slug=SLUG,
        member_id="m2",
        email="host@example.org",
        status=Status.ATTENDED,
        first_time=False,
        sources=frozenset({"zoom"}),
        held=False,
        walk_in=True,
    )
    for registration in (refunded_after_attending, walk_in):
        registrations.put(registration)
        assert registrations.get(SLUG, registration.member_id) == registration
    for member_id, status in (("m3", "registered"), ("m4", "cancelled")):  # stored before places were kept
        client.put_item(
            TableName="registrations",
            Item={
                "pk": {"S": f"EVENT#{SLUG}"},
                "sk": {"S": f"MEMBER#{member_id}"},
                "event_slug": {"S": SLUG},
                "member_id": {"S": member_id},
                "email": {"S": f"{member_id}@example.org"},
                "status": {"S": status},
            },
        )
    old = {r.member_id: r for r in registrations.for_event(SLUG)}
    assert (old["m3"].held, old["m3"].tickets, old["m3"].walk_in) == (True, (), False)
    assert old["m4"].held is False


def test_the_events_end_is_remembered_apart_from_its_registrations(store):
    registrations, _ = store
    assert registrations.event_end(SLUG) is None
    registrations.put(Registration(event_slug=SLUG, member_id="m1", email="ada@example.org", status=Status.REGISTERED))

    registrations.set_event_end(SLUG, AT)

    assert registrations.event_end(SLUG) == AT
    assert [r.member_id for r in registrations.for_event(SLUG)] == ["m1"]


def test_the_events_a_reconciliation_left_are_one_item_apart_from_every_event(store):
    registrations, client = store
    assert registrations.reconcile_left() == []
    registrations.put(Registration(event_slug=SLUG, member_id="m1", email="ada@example.org", status=Status.REGISTERED))

    registrations.set_reconcile_left(["meetup-jan", SLUG])
    assert registrations.reconcile_left() == ["meetup-jan", SLUG]
    registrations.set_reconcile_left([])

    assert registrations.reconcile_left() == []
    assert [r.member_id for r in registrations.for_event(SLUG)] == ["m1"]
    assert len(client.scan(TableName="registrations")["Items"]) == 2  # the registration and the one record
