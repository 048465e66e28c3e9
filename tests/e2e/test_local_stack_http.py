"""End to end: signed platform deliveries over HTTP to the local stack's API, through SQS and the onboarding
function, into the sandbox Mailchimp (read back with the official client) and the member trace."""

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
from memberflow.trace_report import collect
from memberflow_cli.main import main as memberflow_cli

pytestmark = pytest.mark.e2e
SAMPLES = Path(__file__).resolve().parents[2] / "events" / "webhooks"


@pytest.fixture(scope="module")
def running_stack():
    from memberflow_local.settings import LocalSettings
    from memberflow_local.stack import LocalStack

    with LocalStack(LocalSettings.from_env(api_port=0, aws_port=0, mailchimp_port=0)) as stack:
        yield stack


def sample(name: str) -> dict:
    return json.loads((SAMPLES / f"{name}.json").read_text())


def post(stack, source: str, body: dict | str, headers: dict, *, forge: bool = False) -> requests.Response:
    raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    settings, now = stack.settings, int(time.time())
    signer = {
        "slack": lambda: signatures.sign_slack(settings.slack_signing_secret, raw, now),
        "discourse": lambda: signatures.sign_discourse(settings.discourse_secret, raw),
        "discord": lambda: signatures.sign_discord_relay(settings.discord_relay_private_key, raw, now),
        "generic": lambda: signatures.sign_generic(settings.generic_hmac_secret, raw, now),
    }[source]
    signed = signer() if not forge else signatures.sign_slack("not-the-secret", raw, now)
    url = stack.endpoints()["api_url"].rstrip("/") + f"/webhooks/{source}"
    return requests.post(url, data=raw, headers={**headers, **signed}, timeout=10)


@pytest.fixture
def mailchimp(running_stack):
    client = mailchimp_marketing.Client()
    client.set_config({"api_key": running_stack.settings.mailchimp_api_key})
    client.api_client.host = running_stack.mailchimp.url
    return client


def test_slack_url_verification_answers_the_challenge(running_stack):
    delivery = sample("slack_url_verification")
    answer = post(running_stack, "slack", delivery["body"], delivery["headers"])
    assert answer.status_code == 200
    assert answer.json()["challenge"] == delivery["body"]["challenge"]


def test_consenting_discourse_member_is_onboarded_once_despite_redelivery(running_stack, mailchimp):
    delivery = sample("discourse_user_created")
    email = delivery["body"]["user"]["email"]
    for _ in range(2):  # an admin "Redeliver" resends the same headers and body
        answer = post(running_stack, "discourse", delivery["body"], delivery["headers"])
        assert answer.status_code == 200 and answer.json()["status"] == "queued"
    assert running_stack.drain(timeout=60)
    # Discourse sends user_created before the address is confirmed: the member confirms Mailchimp's opt-in email,
    # and Mailchimp's webhook welcomes them; the scheduled run two hours later finds nothing left to do.
    running_stack.mailchimp.confirm_opt_in(running_stack.settings.mailchimp_list_id, email)
    assert running_stack.drain(timeout=60)
    running_stack.fire_schedule("DripSchedule", datetime.now(UTC) + timedelta(hours=2))

    assert mailchimp.lists.get_list_member(running_stack.settings.mailchimp_list_id, email)["status"] == "subscribed"
    triggers = [t for t in running_stack.mailchimp.state.journey_triggers if t["email_address"] == email]
    assert len(triggers) == 1

    report = collect(
        email,
        DynamoTraceStore(running_stack.table_name("TraceTable")),
        DynamoMemberRepository(running_stack.table_name("MembersTable")),
    )
    assert report.verdict.welcomed is True


def test_slack_member_without_consent_is_explained_by_the_trace(running_stack, mailchimp, capsys, monkeypatch):
    delivery = sample("slack_team_join")
    email = "slack.only@example.org"
    delivery["body"]["event"]["user"]["profile"]["email"] = email
    delivery["body"]["event"]["user"]["id"] = delivery["body"]["event_id"] = "USLACKONLY"
    assert post(running_stack, "slack", delivery["body"], delivery["headers"]).status_code == 200
    assert running_stack.drain(timeout=60)

    status = mailchimp.lists.get_list_member(running_stack.settings.mailchimp_list_id, email)["status"]
    assert status == "transactional"

    aws_port = running_stack.endpoints()["aws_endpoint"].rsplit(":", 1)[1]
    monkeypatch.setenv("MEMBERFLOW_LOCAL_AWS_PORT", aws_port)
    assert memberflow_cli(["trace", email]) == 0
    printed = capsys.readouterr().out
    assert "welcome email: NO" in printed and "no marketing consent" in printed
    assert email not in printed  # the trace never prints the address itself


def test_forged_and_malformed_requests_are_rejected_and_nothing_is_queued(
    running_stack, mailchimp, capsys, monkeypatch
):
    delivery = sample("slack_team_join")
    body = json.loads(json.dumps(delivery["body"]))
    body["event_id"] = "EvFORGED1"
    body["event"]["user"]["id"] = "UFORGED1"
    body["event"]["user"]["profile"]["email"] = "forged@example.net"
    list_id = running_stack.settings.mailchimp_list_id

    forged = post(running_stack, "slack", body, delivery["headers"], forge=True)
    assert forged.status_code == 401 and forged.json()["error"] == "invalid_signature"
    malformed = post(running_stack, "discourse", '{"user": {"id": 1', sample("discourse_user_created")["headers"])
    assert malformed.status_code == 400 and malformed.json()["error"] == "invalid_json"
    unknown_source = requests.post(running_stack.endpoints()["api_url"].rstrip("/") + "/webhooks/myspace", data="{}")
    assert unknown_source.status_code == 404 and unknown_source.json()["error"] == "unknown_source"

    assert running_stack.drain(timeout=60)
    members = mailchimp.lists.get_list_members_info(list_id, count=1000)["members"]
    assert "forged@example.net" not in {m["email_address"] for m in members}

    # The same body, signed by Slack, goes through.
    assert post(running_stack, "slack", body, delivery["headers"]).status_code == 200
    assert running_stack.drain(timeout=60)
    assert mailchimp.lists.get_list_member(list_id, "forged@example.net")["status"] == "transactional"

    # Support can list the day's rejections and why.
    monkeypatch.setenv("MEMBERFLOW_LOCAL_AWS_PORT", running_stack.endpoints()["aws_endpoint"].rsplit(":", 1)[1])
    assert memberflow_cli(["rejections"]) == 0
    printed = capsys.readouterr().out
    assert "401 invalid_signature" in printed and "400 invalid_json" in printed and "404 unknown_source" in printed
