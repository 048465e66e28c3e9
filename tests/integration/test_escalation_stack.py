"""Escalation on the local stack: Slack deliveries through intake become Zendesk tickets in the sandbox (read back
with zenpy), repeats become comments, safety reports reach the moderators' channel first, explicit requests come
through POST /escalations, and a ticket solved in Zendesk tells its member once in their Slack thread."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import requests

from memberflow import signatures
from memberflow.escalation.service import external_id
from memberflow_local.escalation_sandboxes import ESCALATIONS_API_KEY, MODERATORS_CHANNEL
from support.intake import sample

TEAM = "T0001ABCDE"


@pytest.fixture(scope="module")
def stack():
    from memberflow_local.settings import LocalSettings
    from memberflow_local.stack import LocalStack

    settings = LocalSettings.from_env(api_port=0, aws_port=0, mailchimp_port=0, log_level="WARNING")
    with LocalStack(settings) as running:
        yield running


def slack_message(stack: Any, event_id: str, text: str, thread_ts: str, user: str = "U06JANEDOE") -> requests.Response:
    delivery = sample("slack_message")
    body = delivery["body"]
    body["event_id"] = event_id
    body["event_time"] = int(time.time())
    body["event"].update(text=text, thread_ts=thread_ts, ts=f"{time.time():.6f}", user=user)
    raw = json.dumps(body).encode()
    signature = signatures.sign_slack(stack.settings.slack_signing_secret, raw, int(time.time()))
    headers = {**delivery["headers"], **signature}
    return requests.post(f"{stack.endpoints()['webhooks_url']}/slack", data=raw, headers=headers, timeout=10)


def zendesk(stack: Any):
    return stack.services["zendesk"].sandbox


def test_a_billing_question_becomes_one_ticket_and_a_repeat_a_comment(stack):
    thread = "1700001000.000100"
    assert slack_message(stack, "EvESC1", "I was charged twice for my ticket", thread).status_code == 200
    assert stack.drain(30)
    client = zendesk(stack).zenpy()
    [ticket] = list(client.tickets(external_id=external_id(f"slack:{TEAM}:C0INTRODUCE:{thread}")))
    assert ticket.priority == "normal" and set(ticket.tags) == {"community", "slack", "billing"}
    requester = client.users(id=ticket.requester_id)
    assert requester.external_id == f"slack:{TEAM}:U06JANEDOE"

    assert slack_message(stack, "EvESC2", "still charged twice, refund please", thread).status_code == 200
    assert stack.drain(30)
    assert len(list(client.tickets(external_id=ticket.external_id))) == 1
    comments = [c.body for c in client.tickets.comments(ticket=ticket.id)]
    assert len(comments) == 2 and "refund please" in comments[1]


def test_a_safety_report_reaches_the_moderators_and_opens_an_urgent_ticket(stack):
    thread = "1700002000.000100"
    slack_message(stack, "EvESC3", "someone keeps threatening me in DMs", thread, user="U07SAFE")
    assert stack.drain(30)
    alerts = stack.services["slack_api"].sandbox.messages(MODERATORS_CHANNEL)
    assert alerts and "safety" in alerts[-1]["text"]
    [ticket] = list(zendesk(stack).zenpy().tickets(external_id=external_id(f"slack:{TEAM}:C0INTRODUCE:{thread}")))
    assert ticket.priority == "urgent" and "safety" in ticket.tags


def test_an_internal_tool_asks_for_a_ticket_with_its_api_key(stack):
    body = sample("escalation_request")["body"]
    url = f"{stack.endpoints()['api_url']}/escalations"
    assert requests.post(url, json=body, headers={"X-Api-Key": "wrong"}, timeout=10).status_code == 401
    answer = requests.post(url, json=body, headers={"X-Api-Key": ESCALATIONS_API_KEY}, timeout=10)
    assert answer.status_code == 200, answer.text
    assert stack.drain(30)
    [ticket] = list(zendesk(stack).zenpy().tickets(external_id=external_id("api:internal:crm-case-881")))
    assert zendesk(stack).zenpy().users(id=ticket.requester_id).email == "jane.doe@example.com"
    # The person's data on request includes their escalations.
    from memberflow.runtime.personal_data import export_person

    exported = export_person("jane.doe@example.com", stack.physical_id, None)
    assert [(link["ticket_id"], link["thread"]) for link in exported["tickets"]] == [
        (ticket.id, "api:internal:crm-case-881")
    ]


def test_a_solved_ticket_tells_its_member_once_in_their_thread(stack):
    thread = "1700003000.000100"
    slack_message(stack, "EvESC4", "I cannot log in, locked out since Monday", thread)
    assert stack.drain(30)
    sandbox = zendesk(stack)
    [ticket] = list(sandbox.zenpy().tickets(external_id=external_id(f"slack:{TEAM}:C0INTRODUCE:{thread}")))
    sandbox.set_status(ticket.id, "solved")
    sandbox.set_status(ticket.id, "open")  # reopened and solved again: the member has heard already
    sandbox.set_status(ticket.id, "solved")
    sandbox.app.wait_for_webhooks()
    assert stack.drain(30)
    told = [m for m in stack.services["slack_api"].sandbox.messages("C0INTRODUCE") if m["thread_ts"] == thread]
    assert len(told) == 1 and f"#{ticket.id}" in told[0]["text"]
    assert {w["status"] for w in sandbox.state.snapshot()["webhooks"] if w["ticket_id"] == ticket.id} == {200}


def test_a_forged_zendesk_webhook_is_rejected(stack):
    raw = json.dumps(sample("zendesk_ticket_status_changed")["body"]).encode()
    headers = {"Content-Type": "application/json", **signatures.sign_zendesk("not-the-secret", raw)}
    answer = requests.post(f"{stack.endpoints()['webhooks_url']}/zendesk", data=raw, headers=headers, timeout=10)
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_signature"


def test_an_erasure_deletes_the_members_zendesk_user_for_good_and_purges_their_links(stack):
    body = sample("escalation_request")["body"]
    body.update(request_id="crm-erase-1", thread_id="crm-case-erase-1")
    url = f"{stack.endpoints()['api_url']}/escalations"
    assert requests.post(url, json=body, headers={"X-Api-Key": ESCALATIONS_API_KEY}, timeout=10).status_code == 200
    assert stack.drain(30)
    sandbox = zendesk(stack)
    assert any(u["email"] == "jane.doe@example.com" for u in sandbox.state.snapshot()["users"])

    erased = sample("generic_member_erased")["body"]
    raw = json.dumps({**erased, "event_id": f"erase-{time.time()}"}).encode()
    headers = {
        "Content-Type": "application/json",
        **signatures.sign_generic(stack.settings.generic_hmac_secret, raw, int(time.time())),
    }
    assert requests.post(f"{stack.endpoints()['webhooks_url']}/generic", data=raw, headers=headers, timeout=10).ok
    assert stack.drain(60)
    snapshot = sandbox.state.snapshot()
    assert not any(u["email"] == "jane.doe@example.com" for u in snapshot["users"] + snapshot["deleted_users"])
    links = stack.client("dynamodb").scan(TableName=stack.table_name("TicketLinksTable"))["Items"]
    assert not [item for item in links if "jane.doe" in json.dumps(item)]
    assert not [item for item in links if "crm-case-erase-1" in json.dumps(item)]
