"""Event sync on the local stack: the sandbox Eventbrite sends its webhooks (one dropped on purpose) and the Zoom
sender its signed ones through the HTTP API, the queue and EventSyncFunction into the registrations table and the
sandbox Mailchimp, read back with the official client; the reconciliation run heals what was dropped."""

from __future__ import annotations

import time

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
