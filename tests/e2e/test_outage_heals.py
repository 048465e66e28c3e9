"""Outages heal on their own: Mailchimp failing for a while during a wave of joins ends with every member
onboarded exactly once, nothing in the dead-letter queue, and nobody redriving anything by hand."""

import json
import time
from collections import Counter

import pytest
import requests

from memberflow import signatures
from memberflow.onboarding.consumer import CONSUMER

pytestmark = pytest.mark.e2e
WAVE = 12
"""More joins than one SQS batch (10), so both of the local event source's pollers take part."""
DEFERRALS = 2
"""The outage lasts until every member's event has been deferred (handed back without spending one of the member's
attempts) at least this often. Deferring the whole wave takes the consumer's breaker opening: a 500 is deferred only
once the service counts as failing, and throttling of several members in a row opens it."""


@pytest.fixture(scope="module")
def running_stack():
    from memberflow_local.settings import LocalSettings
    from memberflow_local.stack import LocalStack

    with LocalStack(LocalSettings.from_env(api_port=0, aws_port=0, mailchimp_port=0)) as stack:
        yield stack


def join(stack, n: int, run: str) -> requests.Response:
    body = json.dumps(
        {
            "event_id": f"outage-{run}-{n}",
            "type": "member_joined",
            "occurred_at": "2026-11-25T10:00:00Z",
            "member": {"id": f"{run}-{n}", "email": f"wave.{run}.{n}@example.org", "marketing_consent": True},
        }
    ).encode()
    headers = signatures.sign_generic(stack.settings.generic_hmac_secret, body, int(time.time()))
    url = stack.endpoints()["api_url"].rstrip("/") + "/webhooks/generic"
    return requests.post(url, data=body, headers={"Content-Type": "application/json", **headers}, timeout=10)


def triggers(stack, run: str) -> Counter:
    return Counter(
        t["email_address"] for t in stack.mailchimp.state.journey_triggers if f".{run}." in t["email_address"]
    )


def deferrals(stack) -> dict[str, int]:
    """The onboarding consumer's deferral ledger, per SQS message id: how often each message was handed back
    because Mailchimp was failing, without spending the member's attempts (kept in the idempotency table)."""
    prefix = f"memberflow.{CONSUMER}.deferrals#"
    pages = stack.client("dynamodb").get_paginator("scan").paginate(TableName=stack.table_name("IdempotencyTable"))
    return {
        item["id"]["S"].removeprefix(prefix): int(item["deferrals"]["N"])
        for page in pages
        for item in page["Items"]
        if item["id"]["S"].startswith(prefix)
    }


def wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


@pytest.mark.parametrize("fault", [{"rate_500": 1.0}, {"rate_429": 1.0}], ids=["500-on-every-call", "throttled"])
def test_a_mailchimp_outage_during_a_wave_of_joins_heals_without_an_operator(running_stack, fault):
    run = next(iter(fault))
    earlier = set(deferrals(running_stack))  # messages of an earlier case on this stack

    def deferred_often_enough() -> bool:
        wave = {message: count for message, count in deferrals(running_stack).items() if message not in earlier}
        return len(wave) == WAVE and min(wave.values()) >= DEFERRALS

    running_stack.mailchimp.set_faults(**fault)
    try:
        for n in range(WAVE):
            assert join(running_stack, n, run).status_code == 200  # accepted and queued while Mailchimp is down
        # The outage goes on: the consumer backs off instead of spending the members' attempts, until every
        # member's event has been deferred more than once.
        assert wait_for(deferred_often_enough, timeout=60)
        assert triggers(running_stack, run) == Counter()
    finally:
        running_stack.mailchimp.set_faults()  # Mailchimp recovers

    assert wait_for(lambda: len(triggers(running_stack, run)) == WAVE, timeout=150)
    assert running_stack.drain(timeout=60)
    assert set(triggers(running_stack, run).values()) == {1}  # every member welcomed exactly once
    assert running_stack.dead_letters("MemberEventsDeadLetterQueue") == []
    list_id = running_stack.settings.mailchimp_list_id
    for email in triggers(running_stack, run):
        assert running_stack.mailchimp.state.get_member(list_id, email).status == "subscribed"
