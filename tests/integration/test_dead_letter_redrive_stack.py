"""The scheduled redrive on the local stack: each dead-letter queue waits on the services its consumer calls
(REDRIVE_WAITS_ON in template.yaml), asked through the sandboxes as the real APIs answer (Zendesk
`GET /api/v2/users/me.json`, Eventbrite `GET /v3/users/me/`, Mailchimp `GET /ping`), under the redrive function's own
role. Escalations parked for a Zendesk outage stay parked while Zendesk fails and go back once it answers; member
events go back meanwhile."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import requests

from memberflow.adapters import secrets
from memberflow.adapters.sqs import SqsWorkQueue
from memberflow.escalation.service import external_id
from memberflow.events import EventbriteChanged
from memberflow.pipeline.envelope import QueuedEvent
from memberflow.pipeline.policy import Park
from memberflow.pipeline.worker import QueuedMessage
from memberflow_local.event_sources import lambda_sqs_record
from support.escalations import slack_escalation
from support.queue import joined, receive_all

SCHEDULE = "DeadLetterRedriveSchedule"
QUEUES = {
    "onboarding": ("MemberEventsQueue", "MemberEventsDeadLetterQueue"),
    "escalation": ("EscalationsQueue", "EscalationsDeadLetterQueue"),
    "event_sync": ("RegistrationsQueue", "RegistrationsDeadLetterQueue"),
}
_ids = itertools.count(1)


def sandbox(stack: Any, name: str) -> Any:
    return stack.mailchimp if name == "mailchimp" else stack.services[name].sandbox


@pytest.fixture(autouse=True)
def clean(local_stack):
    for name in ("mailchimp", "zendesk", "eventbrite"):
        sandbox(local_stack, name).set_faults()
    sqs = local_stack.client("sqs")
    for queue, dead_letters in QUEUES.values():
        for logical_id in (queue, dead_letters):
            url = local_stack.queue_url(logical_id)
            while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
                for message in messages:
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    # The stack runs every function in this process: without this, the redrive could find the secrets another
    # function read already, and its own role would not be put to the test.
    secrets.clear_cache()
    local_stack.permissions.denied.clear()
    yield


def park_as_outage(stack: Any, consumer: str, queued: QueuedEvent, service: str) -> None:
    """Park `queued` in the consumer's dead-letter queue as the consumer does once an outage outlasted its
    deferrals (the worker's own `SqsWorkQueue.park`)."""
    queue, dead_letters = QUEUES[consumer]
    work_queue = SqsWorkQueue(
        stack.queue_url(queue), stack.queue_url(dead_letters), stack.table_name("IdempotencyTable"), consumer
    )
    message = QueuedMessage(f"m-{next(_ids)}", "receipt", queued.model_dump_json(), receive_count=50)
    reason = f"ServiceUnavailable: {service} 503 (deferred 30 times, delivered 50)"
    work_queue.park(message, Park(reason, "outage"), queued.correlation_id, queued.idempotency_key)


def escalation(n: int) -> QueuedEvent:
    return slack_escalation(
        n,
        key=f"redrive-esc-{n}",
        correlation_id=f"corr-esc-{n}",
        email=f"member{n}@example.org",
        thread_ts=f"171000000{n}.000100",
    )


def registration(stack: Any, n: int) -> QueuedEvent:
    event = EventbriteChanged(action="order.placed", api_url=f"{sandbox(stack, 'eventbrite').url}/orders/{n}/")
    return QueuedEvent(
        idempotency_key=f"redrive-reg-{n}", correlation_id=f"corr-reg-{n}", source="eventbrite", event=event
    )


def parked(stack: Any, consumer: str) -> list[dict[str, str]]:
    """A look into the consumer's dead-letter queue (attributes and body) that leaves its messages visible at once,
    for the next redrive run."""
    sqs, url = stack.client("sqs"), stack.queue_url(QUEUES[consumer][1])
    found = []
    for message in receive_all(stack, QUEUES[consumer][1], 10, timeout=1):
        attributes = message.get("MessageAttributes", {})
        found.append({"body": message["Body"], **{k: v.get("StringValue", "") for k, v in attributes.items()}})
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    return found


def probes(stack: Any) -> dict[str, int]:
    """Calls each service's availability probe received so far."""
    return {
        "mailchimp": sandbox(stack, "mailchimp").state.calls["GET /ping"],
        "zendesk": sandbox(stack, "zendesk").state.calls["GET /users/me.json"],
        "eventbrite": sandbox(stack, "eventbrite").state.calls["GET /users/me/"],
    }


def test_escalations_wait_for_zendesk_while_member_events_go_back(local_stack):
    member = joined("waits.for.nobody@example.org", consent=True)
    park_as_outage(local_stack, "onboarding", member, "Mailchimp")
    park_as_outage(local_stack, "escalation", escalation(1), "Zendesk")
    asked = probes(local_stack)

    local_stack.services["zendesk"].sandbox.set_faults(rate_500=1.0)  # Zendesk is still down
    still_down = local_stack.fire_schedule(SCHEDULE)

    assert still_down["failing_services"] == ["zendesk"] and still_down["redriven"] == 1
    [back] = receive_all(local_stack, "MemberEventsQueue", 1)
    assert back["MessageAttributes"]["auto_redrives"]["StringValue"] == "1"
    assert back["MessageAttributes"]["correlation_id"]["StringValue"] == member.correlation_id
    [waiting] = parked(local_stack, "escalation")
    assert waiting["failure_kind"] == "outage" and waiting.get("auto_redrives") == "0"
    assert receive_all(local_stack, "EscalationsQueue", 1, timeout=1) == []
    # Each service asked once, through the probes' reads: Zendesk's users/me.json, which failed.
    after = probes(local_stack)
    assert {name: after[name] - asked[name] for name in after} == {"mailchimp": 1, "zendesk": 1, "eventbrite": 1}

    local_stack.services["zendesk"].sandbox.set_faults()  # Zendesk answers again
    recovered = local_stack.fire_schedule(SCHEDULE)

    assert recovered["failing_services"] == [] and recovered["service_available"] is True
    assert recovered["redriven"] == 1 and parked(local_stack, "escalation") == []
    [again] = receive_all(local_stack, "EscalationsQueue", 1)
    assert again["MessageAttributes"]["auto_redrives"]["StringValue"] == "1"
    # The escalation itself goes through now: one ticket in Zendesk.
    records = [lambda_sqs_record(again, local_stack.queue_arn("EscalationsQueue"))]
    assert local_stack.invoke("EscalationFunction", {"Records": records}) == {"batchItemFailures": []}
    zenpy = local_stack.services["zendesk"].sandbox.zenpy()
    assert len(list(zenpy.tickets(external_id=external_id(escalation(1).event.thread)))) == 1
    # The redrive read the Zendesk and Eventbrite credentials under its own role, and was refused nothing.
    assert [d for d in local_stack.permissions.denied if d.function == "DeadLetterRedriveFunction"] == []


def test_registrations_wait_for_eventbrite_while_escalations_go_back(local_stack):
    park_as_outage(local_stack, "event_sync", registration(local_stack, 7), "Eventbrite")
    park_as_outage(local_stack, "escalation", escalation(2), "Zendesk")

    local_stack.services["eventbrite"].sandbox.set_faults(rate_500=1.0)
    still_down = local_stack.fire_schedule(SCHEDULE)

    assert still_down["failing_services"] == ["eventbrite"] and still_down["redriven"] == 1
    assert len(receive_all(local_stack, "EscalationsQueue", 1)) == 1
    assert [p["failure_kind"] for p in parked(local_stack, "event_sync")] == ["outage"]

    local_stack.services["eventbrite"].sandbox.set_faults()
    recovered = local_stack.fire_schedule(SCHEDULE)

    assert recovered["failing_services"] == [] and recovered["redriven"] == 1
    [back] = receive_all(local_stack, "RegistrationsQueue", 1)
    assert back["MessageAttributes"]["correlation_id"]["StringValue"] == "corr-reg-7"
    assert [d for d in local_stack.permissions.denied if d.function == "DeadLetterRedriveFunction"] == []


def test_the_sandboxes_answer_the_probes_reads_as_the_apis_do(local_stack):
    zendesk = local_stack.services["zendesk"].sandbox
    me = requests.get(f"{zendesk.url}/users/me.json", auth=(f"{zendesk.email}/token", zendesk.api_token), timeout=5)
    assert me.status_code == 200 and me.json()["user"]["email"] == zendesk.email
    assert zendesk.zenpy().users.me().email == zendesk.email  # the official client reads it
    refused = requests.get(f"{zendesk.url}/users/me.json", auth=(f"{zendesk.email}/token", "wrong"), timeout=5)
    assert refused.status_code == 401 and refused.json() == {"error": "Couldn't authenticate you"}

    eventbrite = local_stack.services["eventbrite"].sandbox
    me = requests.get(f"{eventbrite.url}/users/me/", headers={"Authorization": f"Bearer {eventbrite.token}"}, timeout=5)
    assert me.status_code == 200
    assert me.json()["id"] == eventbrite.user_id and me.json()["emails"][0]["primary"] is True
    assert {"id", "name", "emails"} <= set(me.json())
    for headers, code in (({"Authorization": "Bearer wrong"}, "INVALID_AUTH"), ({}, "NO_AUTH")):
        refused = requests.get(f"{eventbrite.url}/users/me/", headers=headers, timeout=5)
        assert refused.status_code == 401 and refused.json()["error"] == code
