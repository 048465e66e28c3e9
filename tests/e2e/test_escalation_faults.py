"""Escalations while Zendesk misbehaves: with a fifth of its answers failing (429 with Retry-After, 500), 200
escalations of 150 threads end with exactly one ticket per thread, every repeat as a comment, and nothing in the
dead-letter queue (everything could succeed, and did)."""

import json
import time

import pytest
import requests

from memberflow import signatures
from memberflow.escalation.service import external_id

pytestmark = pytest.mark.e2e
THREADS = 150
REPEATS = 50
TEAM = "T0FAULTS01"


@pytest.fixture(scope="module")
def stack():
    from memberflow_local.settings import LocalSettings
    from memberflow_local.stack import LocalStack

    settings = LocalSettings.from_env(api_port=0, aws_port=0, mailchimp_port=0, log_level="ERROR")
    with LocalStack(settings) as running:
        yield running


def escalate(stack, n: int, thread: int, text: str) -> requests.Response:
    now = int(time.time())
    body = json.dumps(
        {
            "type": "event_callback",
            "team_id": TEAM,
            "api_app_id": "A0123ABCDEF",
            "event_id": f"EvFAULT{n:04d}",
            "event_time": now,
            "authorizations": [{"team_id": TEAM, "user_id": "U0APPBOT01", "is_bot": True}],
            "event": {
                "type": "message",
                "user": f"U{thread:05d}",
                "text": text,
                "channel": "C0HELP",
                "ts": f"{now}.{n:06d}",
                "thread_ts": f"1700000000.{thread:06d}",
                "team": TEAM,
                "channel_type": "channel",
            },
        }
    ).encode()
    headers = signatures.sign_slack(stack.settings.slack_signing_secret, body, now)
    url = stack.endpoints()["webhooks_url"] + "/slack"
    return requests.post(url, data=body, headers={"Content-Type": "application/json", **headers}, timeout=10)


def test_a_fifth_of_zendesk_failing_still_gives_one_ticket_per_thread_and_nothing_parked(stack):
    sandbox = stack.services["zendesk"].sandbox
    sandbox.set_faults(rate_429=0.1, rate_500=0.1, seed=8)
    texts = ["I was charged twice", "the app crashes on login", "I am locked out of my account"]
    for n in range(THREADS + REPEATS):
        thread = n if n < THREADS else n % 37
        assert escalate(stack, n, thread, texts[thread % 3] + f" (message {n})").status_code == 200
    assert stack.drain(240)
    sandbox.set_faults()

    client = sandbox.zenpy()
    tickets = {}
    for thread in range(THREADS):
        found = list(client.tickets(external_id=external_id(f"slack:{TEAM}:C0HELP:1700000000.{thread:06d}")))
        tickets[thread] = found
    assert {thread: len(found) for thread, found in tickets.items() if len(found) != 1} == {}
    comments = sum(len(list(client.tickets.comments(ticket=found[0].id))) - 1 for found in tickets.values())
    assert comments == REPEATS
    assert stack.dead_letters("EscalationsDeadLetterQueue") == []
    assert sandbox.state.snapshot()["request_counts"].get("500", 0) > 0  # the faults did happen
