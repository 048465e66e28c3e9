"""Discourse and Slack deliveries exactly as the platforms send them, over HTTP to the local stack, through SQS and
the onboarding function into the sandbox Mailchimp, read back with the official mailchimp-marketing client."""

import copy
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import mailchimp_marketing
import pytest
import requests

from memberflow import signatures
from memberflow.adapters.member_profiles import DynamoMemberRepository
from memberflow.adapters.trace_store import DynamoTraceStore
from memberflow.members import member_id_for
from memberflow.models import MemberIdentity, Platform
from memberflow.trace import Step, email_subject, identity_subject

pytestmark = pytest.mark.e2e
SAMPLES = Path(__file__).resolve().parents[2] / "events" / "webhooks"
FORUM = "https://forum.example.com"


@pytest.fixture(scope="module")
def stack():
    from memberflow_local.settings import LocalSettings
    from memberflow_local.stack import LocalStack

    with LocalStack(LocalSettings.from_env(api_port=0, aws_port=0, mailchimp_port=0)) as running:
        yield running


@pytest.fixture(scope="module")
def mailchimp(stack):
    client = mailchimp_marketing.Client()
    client.set_config({"api_key": stack.settings.mailchimp_api_key})
    client.api_client.host = stack.mailchimp.url
    return client


def sample(name: str) -> dict:
    return json.loads((SAMPLES / f"{name}.json").read_text())


def post(stack, source: str, body: dict | bytes, headers: dict) -> requests.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    settings, now = stack.settings, int(time.time())
    signed = {
        "slack": lambda: signatures.sign_slack(settings.slack_signing_secret, raw, now),
        "discourse": lambda: signatures.sign_discourse(settings.discourse_secret, raw),
    }[source]()
    url = stack.endpoints()["api_url"].rstrip("/") + f"/webhooks/{source}"
    return requests.post(url, data=raw, headers={**headers, **signed}, timeout=10)


def forum_user(event: str, user_id: int, email: str, *, consent: bool) -> tuple[dict, dict]:
    """A Discourse user event from the sample of that event, for another user: (body, headers)."""
    delivery = sample(f"discourse_{event}")
    body = copy.deepcopy(delivery["body"])
    body["user"].update(id=user_id, username=f"member{user_id}", email=email)
    body["user"]["user_fields"]["1"] = "true" if consent else None
    return body, delivery["headers"]


def deliver_forum(stack, event: str, user_id: int, email: str, *, consent: bool) -> dict:
    body, headers = forum_user(event, user_id, email, consent=consent)
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"  # and the body is the raw JSON
    answer = post(stack, "discourse", body, headers)
    assert answer.status_code == 200, answer.text
    assert stack.drain(timeout=60)
    return answer.json()


def status(stack, mailchimp, email: str) -> str:
    return mailchimp.lists.get_list_member(stack.settings.mailchimp_list_id, email)["status"]


def journeys(stack, email: str) -> int:
    return sum(1 for t in stack.mailchimp.state.journey_triggers if t["email_address"].lower() == email.lower())


def members(stack) -> DynamoMemberRepository:
    return DynamoMemberRepository(stack.table_name("MembersTable"))


# ---------------------------------------------------------------- Discourse


def test_signup_then_confirmed_address_stays_double_opt_in_until_mailchimp_confirms(stack, mailchimp):
    email = "signup.confirms@example.org"

    assert deliver_forum(stack, "user_created", 301, email, consent=True)["status"] == "queued"
    assert status(stack, mailchimp, email) == "pending"
    deliver_forum(stack, "user_confirmed_email", 301, email, consent=True)

    assert status(stack, mailchimp, email) == "pending"  # never subscribed behind Mailchimp's confirmation
    assert journeys(stack, email) == 0
    assert members(stack).get(member_id_for(_identity(301), email)).verified_identities == [_identity(301).key]

    stack.mailchimp.confirm_opt_in(stack.settings.mailchimp_list_id, email)  # Mailchimp's webhook follows
    assert stack.drain(timeout=60)  # handled as it arrives, long before the run two hours later
    stack.fire_schedule("DripSchedule", datetime.now(UTC) + timedelta(hours=2))
    assert status(stack, mailchimp, email) == "subscribed" and journeys(stack, email) == 1


def test_consent_ticked_after_confirming_the_address_is_honoured_once(stack, mailchimp):
    email = "ticks.later@example.org"
    deliver_forum(stack, "user_created", 302, email, consent=False)
    assert status(stack, mailchimp, email) == "transactional"
    deliver_forum(stack, "user_confirmed_email", 302, email, consent=False)
    assert status(stack, mailchimp, email) == "transactional"

    deliver_forum(stack, "user_updated", 302, email, consent=True)
    deliver_forum(stack, "user_updated", 302, email, consent=True)  # a later profile edit repeats the ticked box

    assert status(stack, mailchimp, email) == "subscribed"
    assert journeys(stack, email) == 1


def test_consent_ticked_before_the_address_is_confirmed_asks_for_double_opt_in(stack, mailchimp):
    email = "ticks.unconfirmed@example.org"
    deliver_forum(stack, "user_created", 303, email, consent=False)

    deliver_forum(stack, "user_updated", 303, email, consent=True)

    assert status(stack, mailchimp, email) == "pending" and journeys(stack, email) == 0


def test_a_profile_update_without_consent_is_acknowledged_and_changes_nothing(stack, mailchimp):
    email = "no.consent.edit@example.org"
    deliver_forum(stack, "user_created", 304, email, consent=False)

    answer = deliver_forum(stack, "user_updated", 304, email, consent=False)

    assert answer["status"] == "ignored"
    assert status(stack, mailchimp, email) == "transactional"


def _identity(user_id: int) -> MemberIdentity:
    return MemberIdentity(platform=Platform.DISCOURSE, workspace=FORUM, user_id=str(user_id))


# ---------------------------------------------------------------- Slack


def slack_join(stack, user_id: str, email: str, event_id: str) -> tuple[dict, dict]:
    delivery = sample("slack_team_join")
    body = copy.deepcopy(delivery["body"])
    body["event"]["user"]["id"] = user_id
    body["event"]["user"]["profile"]["email"] = email
    body["event_id"] = event_id
    return body, delivery["headers"]


def test_a_refused_slack_delivery_carries_no_retry(stack):
    answer = post(stack, "slack", b'{"type": "event_callback", ', {"Content-Type": "application/json"})

    assert answer.status_code == 400
    assert answer.headers["X-Slack-No-Retry"] == "1"
    assert answer.json()["error"] == "invalid_json"


def test_a_slack_retry_writes_one_queue_message(stack):
    email = "slack.retried@example.org"
    body, headers = slack_join(stack, "U0RETRIED1", email, "Ev0RETRIED1")
    retry_headers = {**headers, "X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}

    first = post(stack, "slack", body, headers)
    retries = [post(stack, "slack", body, {**retry_headers, "X-Slack-Retry-Num": str(n)}) for n in (1, 2, 3)]
    assert stack.drain(timeout=60)

    assert first.json()["status"] == "queued"
    assert [r.json()["status"] for r in retries] == ["already_queued"] * 3
    assert all(r.json()["correlation_id"] == first.json()["correlation_id"] for r in retries)
    # Intake records "event received" once per queue message it writes.
    records = DynamoTraceStore(stack.table_name("TraceTable")).query(email_subject(email))
    assert [r.step for r in records].count(Step.EVENT_RECEIVED) == 1


def test_slack_connect_messages_by_another_organisations_members_are_ignored(stack):
    delivery = sample("slack_message_shared_channel")

    answer = post(stack, "slack", delivery["body"], delivery["headers"])

    assert answer.status_code == 200 and answer.json()["status"] == "ignored"
    assert stack.drain(timeout=60)
    identity = f"slack:{delivery['body']['authorizations'][0]['team_id']}:{delivery['body']['event']['user']}"
    assert DynamoTraceStore(stack.table_name("TraceTable")).query(identity_subject(identity)) == []


@pytest.mark.parametrize("name", ["slack_message_me", "slack_message_thread_broadcast"])
def test_me_messages_and_thread_broadcasts_make_the_member_active(stack, name):
    user_id, email = f"U0{name[-8:].upper()}", f"{name}@example.org"
    body, headers = slack_join(stack, user_id, email, f"Ev0JOIN{name[-6:].upper()}")
    assert post(stack, "slack", body, headers).json()["status"] == "queued"
    message = sample(name)
    message["body"]["event"]["user"] = user_id

    assert post(stack, "slack", message["body"], message["headers"]).json()["status"] == "queued"
    assert stack.drain(timeout=60)

    identity = MemberIdentity(platform=Platform.SLACK, workspace="T0001ABCDE", user_id=user_id)
    assert members(stack).get(member_id_for(identity, email)).activated_at is not None
