"""Mailchimp answering every call 3 s late: a wave of joins arrives while it is that slow, and no event is parked
without having been tried. Onboarding starts an event only with its worst case left in the invocation and hands
the others back untried; a handed-back event spends no attempt and is tried first in its next batch."""

import json
import time

import pytest
import requests

from memberflow import signatures

pytestmark = pytest.mark.e2e
WAVE = 8
LATENCY_MS = 3000


def join(stack, n: int) -> requests.Response:
    body = json.dumps(
        {
            "event_id": f"slow-{n}",
            "type": "member_joined",
            "occurred_at": "2026-11-25T10:00:00Z",
            # Half consent (upsert, tags, welcome journey: three calls), half not (upsert and tags).
            "member": {"id": f"slow-{n}", "email": f"slow.{n}@example.org", "marketing_consent": n % 2 == 0},
        }
    ).encode()
    headers = signatures.sign_generic(stack.settings.generic_hmac_secret, body, int(time.time()))
    url = stack.endpoints()["api_url"].rstrip("/") + "/webhooks/generic"
    return requests.post(url, data=body, headers={"Content-Type": "application/json", **headers}, timeout=10)


def untried_hand_backs(stack) -> int:
    """Deliveries handed back without spending an attempt, from the consumer's own record of them."""
    items = stack.client("dynamodb").scan(TableName=stack.table_name("IdempotencyTable"))["Items"]
    return sum(int(item["deferrals"]["N"]) for item in items if "deferrals#" in item["id"]["S"])


@pytest.mark.timeout(300)
def test_with_mailchimp_three_seconds_late_no_event_is_parked_without_having_been_tried():
    from memberflow_local.settings import LocalSettings
    from memberflow_local.stack import LocalStack

    # The queue gives each message two deliveries (the template's minimum MaxDeliveries): a consumer that hands an
    # event back twice would see it parked untried within this test; with the default of 50 it would take longer.
    settings = LocalSettings.from_env(api_port=0, aws_port=0, mailchimp_port=0, max_deliveries=2)
    with LocalStack(settings, pollers=False) as stack:
        stack.mailchimp.set_faults(latency_ms=LATENCY_MS)
        for n in range(WAVE):
            assert join(stack, n).status_code == 200
        stack.event_sources.start()  # the whole wave is waiting: onboarding receives it in one batch

        assert stack.drain(timeout=240)
        parked = stack.dead_letters("MemberEventsDeadLetterQueue")
        list_id = stack.settings.mailchimp_list_id
        reached_mailchimp = {
            f"slow.{n}@example.org"
            for n in range(WAVE)
            if stack.mailchimp.state.get_member(list_id, f"slow.{n}@example.org") is not None
        }
        parked_untried = [p for p in parked if json.loads(p["body"])["event"]["email"] not in reached_mailchimp]
        counts = {
            "joins": WAVE,
            "tried": len(reached_mailchimp),
            "handed back untried": untried_hand_backs(stack),
            "parked": len(parked),
            "parked without a try": len(parked_untried),
        }
        print(f"Mailchimp {LATENCY_MS} ms late on every call: {counts}")

        assert counts["parked without a try"] == 0, counts
        assert counts["parked"] == 0 and counts["tried"] == WAVE, counts
        journeys = [t["email_address"] for t in stack.mailchimp.state.journey_triggers]
        assert sorted(journeys) == sorted(f"slow.{n}@example.org" for n in range(0, WAVE, 2))
