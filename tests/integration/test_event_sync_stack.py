"""Event sync on the local stack: the sandbox Eventbrite sends its webhooks (one dropped on purpose) and the Zoom
sender its signed ones through the HTTP API, the queue and EventSyncFunction into the registrations table and the
sandbox Mailchimp, read back with the official client; the reconciliation run heals what was dropped."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest
import requests

from memberflow.privacy import email_key
from memberflow_local.event_services import SYNCED_EVENT
from support.mailchimp import official_client

SLUG = SYNCED_EVENT["slug"]
EVENT_ID = SYNCED_EVENT["eventbrite_event_id"]
ZOOM_ID = SYNCED_EVENT["zoom_id"]


@pytest.fixture(scope="module")
def stack():
    from memberflow_local.settings import LocalSettings
    from memberflow_local.stack import LocalStack

    with LocalStack(LocalSettings.from_env(api_port=0, aws_port=0, mailchimp_port=0)) as running:
        yield running


def registrations(stack) -> dict[str, dict]:
    ddb = stack.client("dynamodb")
    items = ddb.query(
        TableName=stack.table_name("RegistrationsTable"),
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"EVENT#{SLUG}"}},
        ConsistentRead=True,
    )["Items"]
    return {item["member_id"]["S"]: {"status": item["status"]["S"], "email": item["email"]["S"]} for item in items}


def tags_of(client, email: str) -> set[str]:
    """The member's tags in the audience; none for an address the audience does not hold (a place cancelled
    before it was synced is never added)."""
    from mailchimp_marketing.api_client import ApiClientError

    try:
        answer = client.lists.get_list_member_tags("list123", email_key_hash(email))
    except ApiClientError as error:
        if error.status_code == 404:
            return set()
        raise
    return {tag["name"] for tag in answer["tags"]}


def email_key_hash(email: str) -> str:
    import hashlib

    return hashlib.md5(email.lower().encode()).hexdigest()  # noqa: S324 - Mailchimp's subscriber hash


def test_webhooks_sync_registrations_and_reconciliation_heals_a_dropped_one(stack) -> None:
    eventbrite = stack.services["eventbrite"].sandbox
    zoom = stack.services["zoom"].sender
    client = official_client(stack.mailchimp.url, stack.settings.mailchimp_api_key)
    run = str(int(time.time()))
    people = [f"reg.{run}.{i}@example.org" for i in range(4)]

    orders = [
        eventbrite.place_order(EVENT_ID, [{"email": p, "first_name": "Reg", "last_name": str(i)}], drop_webhook=i == 3)
        for i, p in enumerate(people)
    ]
    assert zoom.validate_endpoint()
    zoom.registration_created(ZOOM_ID, people[0], "Reg", "0")  # the same person, registered on Zoom too
    eventbrite.refund(orders[1]["order_id"])
    eventbrite.check_in(orders[2]["attendee_ids"][0])
    zoom.participant_joined(ZOOM_ID, people[0], "Reg 0")
    assert stack.drain(timeout=60)

    synced = registrations(stack)
    assert {v["email"]: v["status"] for v in synced.values() if v["email"] in people} == {
        people[0]: "attended",
        people[1]: "cancelled",
        people[2]: "attended",
    }
    assert tags_of(client, people[1]) == set()
    assert tags_of(client, people[0]) == {f"event:{SLUG}:registered", f"event:{SLUG}:attended"}

    # The dropped order.placed: the reconciliation finds it in the attendee list.
    result = stack.fire_schedule("EventReconcileFunction")
    [event] = result["events"]
    assert event["report"]["created"] >= 1
    assert registrations(stack)[email_key(people[3])]["status"] == "registered"
    assert tags_of(client, people[3]) == {f"event:{SLUG}:registered"}
    # A person's data on request includes their registrations.
    from memberflow.runtime.personal_data import export_person

    exported = export_person(people[0], stack.physical_id, None)["registrations"]
    assert [(r["pk"], r["email"], r["status"]) for r in exported] == [(f"EVENT#{SLUG}", people[0], "attended")]

    # A forged Zoom delivery is refused.
    forged = requests.post(
        zoom.url, json={"event": "webinar.participant_joined"}, headers={"x-zm-signature": "v0=00"}, timeout=10
    )
    assert forged.status_code == 401
    # The Eventbrite route refuses a wrong secret.
    wrong = requests.post(
        stack.endpoints()["api_url"].rstrip("/") + "/webhooks/eventbrite?token=guess",
        json={"config": {"action": "order.placed"}, "api_url": f"{eventbrite.url}/orders/1/"},
        timeout=10,
    )
    assert wrong.status_code == 401


def test_the_eventbrite_webhook_carries_its_secret_in_the_path_and_its_deliveries_are_accepted(stack) -> None:
    """Eventbrite echoes the URL as registered in every delivery's `config.endpoint_url`: the local stack registers
    `/webhooks/eventbrite/<secret>`, with no query string, and a delivery to it goes through to the table."""
    eventbrite = stack.services["eventbrite"].sandbox
    secret = stack.settings.eventbrite_webhook_token
    registered = urlsplit(eventbrite.webhook_url)
    assert registered.query == "" and "token=" not in eventbrite.webhook_url
    assert eventbrite.webhook_url == f"{stack.endpoints()['webhooks_url']}/eventbrite/{secret}"
    assert registered.path.endswith(f"/webhooks/eventbrite/{secret}")

    person = f"path.{time.time_ns()}@example.org"
    sent = len(eventbrite.state.deliveries)
    order = eventbrite.place_order(EVENT_ID, [{"email": person, "first_name": "Path", "last_name": "Secret"}])
    [delivery] = eventbrite.state.deliveries[sent:]
    assert (delivery.action, delivery.status) == ("order.placed", 200)
    assert delivery.api_url.endswith(f"/orders/{order['order_id']}/")
    assert stack.drain(timeout=60)
    assert registrations(stack)[email_key(person)] == {"status": "registered", "email": person}

    # The path's secret is checked as the query's was: a wrong one is refused.
    wrong = requests.post(
        f"{stack.endpoints()['webhooks_url']}/eventbrite/guess",
        json={"config": {"action": "order.placed"}, "api_url": f"{eventbrite.url}/orders/1/"},
        timeout=10,
    )
    assert wrong.status_code == 401


def test_a_partial_refund_keeps_the_places_still_held_and_a_deleted_order_is_cancelled_not_retried(stack) -> None:
    """Through the sandbox Eventbrite, the adapter and the worker: refunding one ticket of an order, or one of a
    person's two orders, cancels only what was refunded; a deleted order (its fetch answers 404) cancels the
    registration it gave at once, with nothing retried or parked, and the reconciliation changes none of it."""
    eventbrite = stack.services["eventbrite"].sandbox
    client = official_client(stack.mailchimp.url, stack.settings.mailchimp_api_key)
    run = str(int(time.time()))
    buyer, colleague, twice, deleted = (f"{who}.{run}@example.org" for who in ("buyer", "colleague", "twice", "gone"))
    order = eventbrite.place_order(
        EVENT_ID,
        [{"email": buyer, "first_name": "Buy", "last_name": "Er"}, {"email": colleague, "first_name": "Co"}],
    )
    first = eventbrite.place_order(EVENT_ID, [{"email": twice, "first_name": "Two"}])
    eventbrite.place_order(EVENT_ID, [{"email": twice, "first_name": "Two"}])  # the ticket type they meant
    gone = eventbrite.place_order(EVENT_ID, [{"email": deleted, "first_name": "Gone"}])
    assert stack.drain(timeout=60)

    eventbrite.refund(order["order_id"], attendee_ids=[order["attendee_ids"][1]])
    eventbrite.refund(first["order_id"])
    eventbrite.delete_order(gone["order_id"])
    assert stack.drain(timeout=60)

    expected = {buyer: "registered", colleague: "cancelled", twice: "registered", deleted: "cancelled"}
    assert {email: registrations(stack)[email_key(email)]["status"] for email in expected} == expected
    registered = {f"event:{SLUG}:registered"}
    assert [tags_of(client, email) for email in expected] == [registered, set(), registered, set()]
    assert stack.dead_letters("RegistrationsDeadLetterQueue") == []

    stack.fire_schedule("EventReconcileFunction")
    assert {email: registrations(stack)[email_key(email)]["status"] for email in expected} == expected
    assert [tags_of(client, email) for email in expected] == [registered, set(), registered, set()]


def erase_by_generic_webhook(stack, email: str, n: int) -> None:
    """A person's request to be forgotten, relayed through the generic source as the README describes it."""
    import json

    from memberflow import signatures
    from support.intake import sample

    body = sample("generic_member_erased")["body"]
    body.update(event_id=f"erase-{time.time()}-{n}", member={"id": f"form-erase-{n}", "email": email})
    raw = json.dumps(body).encode()
    headers = {
        "Content-Type": "application/json",
        **signatures.sign_generic(stack.settings.generic_hmac_secret, raw, int(time.time())),
    }
    answer = requests.post(f"{stack.endpoints()['webhooks_url']}/generic", data=raw, headers=headers, timeout=10)
    assert answer.status_code == 200 and answer.json()["status"] == "queued"


def by_member(stack, member_id: str) -> list[dict]:
    """The member index, as the erasure and the export query it."""
    from memberflow.adapters.registrations import MEMBER_INDEX

    return stack.client("dynamodb").query(
        TableName=stack.table_name("RegistrationsTable"),
        IndexName=MEMBER_INDEX,
        KeyConditionExpression="member_id = :m",
        ExpressionAttributeValues={":m": {"S": member_id}},
    )["Items"]


def test_an_erasure_deletes_the_members_registrations_and_no_one_elses_and_a_repeat_is_harmless(stack) -> None:
    import json

    from memberflow.adapters.member_profiles import DynamoMemberRepository
    from memberflow.runtime.personal_data import export_person

    eventbrite = stack.services["eventbrite"].sandbox
    zoom = stack.services["zoom"].sender
    run = str(int(time.time()))
    erased, kept = f"erase.reg.{run}@example.org", f"keep.reg.{run}@example.org"
    for person in (erased, kept):
        eventbrite.place_order(EVENT_ID, [{"email": person, "first_name": "Reg", "last_name": "Erase"}])
    zoom.participant_joined(ZOOM_ID, erased, "Reg Erase")
    assert stack.drain(timeout=60)
    assert {email_key(erased), email_key(kept)} <= set(registrations(stack))
    assert [r["email"] for r in export_person(erased, stack.physical_id, None)["registrations"]] == [erased]
    assert len(by_member(stack, email_key(erased))) == 1

    erase_by_generic_webhook(stack, erased, 1)
    assert stack.drain(timeout=60)

    synced = registrations(stack)
    assert email_key(erased) not in synced and by_member(stack, email_key(erased)) == []
    assert synced[email_key(kept)] == {"status": "registered", "email": kept}
    assert export_person(erased, stack.physical_id, None)["registrations"] == []
    stored = json.dumps(stack.client("dynamodb").scan(TableName=stack.table_name("RegistrationsTable"))["Items"])
    assert erased not in stored and email_key(erased) not in stored
    trace = json.dumps(stack.client("dynamodb").scan(TableName=stack.table_name("TraceTable"))["Items"])
    assert "event registrations: handed on to the event sync queue" in trace

    # Eventbrite still lists the order: the reconcile run does not bring the registration (or the member) back.
    [event] = stack.fire_schedule("EventReconcileFunction")["events"]
    assert event["report"]["details"].get("erased", 0) >= 1
    assert email_key(erased) not in registrations(stack)
    assert DynamoMemberRepository(stack.table_name("MembersTable")).get(email_key(erased)) is None

    # Asked again (a second request, or the platform's retry): nothing fails, nothing else is deleted.
    erase_by_generic_webhook(stack, erased, 2)
    assert stack.drain(timeout=60)
    assert registrations(stack)[email_key(kept)] == {"status": "registered", "email": kept}
    assert stack.dead_letters("RegistrationsDeadLetterQueue") == []
    assert stack.dead_letters("MemberEventsDeadLetterQueue") == []
