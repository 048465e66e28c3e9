"""End to end on the local stack: consent you can prove. Members joining over HTTP land in the sandbox Mailchimp
with `timestamp_opt` from their consent ledger (read back with the official client); a member who unsubscribes in
the sandbox (which sends Mailchimp's webhook) gets no further drip step without any poll in between; a double
opt-in confirmed in the sandbox is welcomed at once; `memberflow export` returns a member's data."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import requests
from test_local_stack_http import post, sample

from memberflow.adapters.consent_ledger import DynamoConsentLedger
from memberflow.adapters.member_profiles import DynamoMemberRepository
from memberflow.ledger import mailchimp_time
from memberflow.privacy import email_key
from memberflow_cli.main import main as memberflow_cli
from support.mailchimp import official_client

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def running_stack():
    from memberflow_local.settings import LocalSettings
    from memberflow_local.stack import LocalStack

    with LocalStack(LocalSettings.from_env(api_port=0, aws_port=0, mailchimp_port=0)) as stack:
        yield stack


@pytest.fixture
def mailchimp(running_stack):
    return official_client(running_stack.mailchimp.url, running_stack.settings.mailchimp_api_key)


def join(stack, email: str, user_id: str, *, consent: bool) -> None:
    body = {
        "event_id": f"consent-e2e-{user_id}",
        "type": "member_joined",
        "occurred_at": "2026-11-02T09:30:00Z",
        "workspace": "meetup-amsterdam",
        "member": {"id": user_id, "email": email, "name": "Test Member", "marketing_consent": consent},
    }
    answer = post(stack, "generic", body, {"Content-Type": "application/json"})
    assert answer.status_code == 200 and answer.json()["status"] == "queued", answer.text


def ledger(stack, email: str):
    return DynamoConsentLedger(stack.table_name("MembersTable")).entries(email_key(email))


def record(stack, email: str):
    return DynamoMemberRepository(stack.table_name("MembersTable")).get(email_key(email))


def sandbox(stack, action: str, **body) -> dict:
    answer = requests.post(f"{stack.mailchimp.base_url}/_sandbox/{action}", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def drip_tags(mailchimp, stack, email: str) -> list[str]:
    member = mailchimp.lists.get_list_member(stack.settings.mailchimp_list_id, email)
    return [tag["name"] for tag in member["tags"] if tag["name"].startswith("onboarding-day-")]


def test_subscribed_members_carry_timestamp_opt_from_their_ledger_and_others_say_why(running_stack, mailchimp):
    join(running_stack, "opted.in@example.com", "c1", consent=True)
    join(running_stack, "no.consent@example.com", "c2", consent=False)
    assert running_stack.drain(timeout=60)

    subscribed = mailchimp.lists.get_list_member(running_stack.settings.mailchimp_list_id, "opted.in@example.com")
    [given] = ledger(running_stack, "opted.in@example.com")
    assert subscribed["status"] == "subscribed" and given.change == "given" and given.status == "subscribed"
    assert subscribed["timestamp_opt"] == mailchimp_time(given.at) == subscribed["timestamp_signup"]
    assert given.wording is not None and given.source_event_id == "generic:consent-e2e-c1"

    other = mailchimp.lists.get_list_member(running_stack.settings.mailchimp_list_id, "no.consent@example.com")
    [why] = ledger(running_stack, "no.consent@example.com")
    assert other["status"] == "transactional" and other["timestamp_opt"] == ""
    assert why.change == "not_given" and "no marketing consent" in why.detail


def test_an_unsubscribe_in_mailchimp_stops_the_drip_with_no_poll_in_between(running_stack, mailchimp):
    list_id = running_stack.settings.mailchimp_list_id
    join(running_stack, "leaver@example.com", "c3", consent=True)
    join(running_stack, "stayer@example.com", "c4", consent=True)
    assert running_stack.drain(timeout=60)

    sandbox(running_stack, "unsubscribe", list_id=list_id, email="leaver@example.com")  # sends the webhook
    assert running_stack.drain(timeout=60)

    member = record(running_stack, "leaver@example.com")
    assert member.mailchimp_status == "unsubscribed" and member.opted_out_before and not member.marketing_consent
    assert [entry.change for entry in ledger(running_stack, "leaver@example.com")] == ["given", "withdrawn"]

    # The next scheduled run, a week on: the member who stayed gets their step, the one who left none.
    running_stack.fire_schedule("DripSchedule", datetime.now(UTC) + timedelta(days=8))
    assert drip_tags(mailchimp, running_stack, "stayer@example.com") == ["onboarding-day-1"]
    assert drip_tags(mailchimp, running_stack, "leaver@example.com") == []


def test_a_confirmed_double_opt_in_is_welcomed_at_once_by_mailchimps_webhook(running_stack, mailchimp):
    list_id = running_stack.settings.mailchimp_list_id
    created = sample("discourse_user_created")  # consent ticked, address not confirmed yet: double opt-in
    email = created["body"]["user"]["email"]
    assert post(running_stack, "discourse", created["body"], created["headers"]).json()["status"] == "queued"
    assert running_stack.drain(timeout=60)
    assert record(running_stack, email).mailchimp_status == "pending"
    assert not any(t["email_address"] == email for t in running_stack.mailchimp.state.journey_triggers)

    sandbox(running_stack, "confirm", list_id=list_id, email=email)  # the member clicks; Mailchimp's webhook follows
    assert running_stack.drain(timeout=60)

    assert any(t["email_address"] == email for t in running_stack.mailchimp.state.journey_triggers)
    entries = ledger(running_stack, email)
    assert [(entry.change, entry.status) for entry in entries] == [("given", "pending"), ("confirmed", "subscribed")]
    member = mailchimp.lists.get_list_member(list_id, email)
    assert member["status"] == "subscribed" and member["timestamp_opt"]
    assert member["timestamp_signup"] == mailchimp_time(entries[0].at)


def test_export_returns_record_identities_ledger_and_trace(running_stack, monkeypatch, capsys):
    join(running_stack, "exported@example.com", "c6", consent=True)
    assert running_stack.drain(timeout=60)
    endpoints = running_stack.endpoints()
    monkeypatch.setenv("MEMBERFLOW_LOCAL_AWS_PORT", endpoints["aws_endpoint"].rsplit(":", 1)[1])
    monkeypatch.setenv("MEMBERFLOW_LOCAL_MAILCHIMP_PORT", endpoints["mailchimp_url"].rsplit(":", 1)[1].split("/")[0])
    capsys.readouterr()

    assert memberflow_cli(["export", "exported@example.com"]) == 0
    document = json.loads(capsys.readouterr().out)

    assert document["record"]["profile"]["email"] == "exported@example.com"
    assert [link["identity"] for link in document["identities"]] == ["generic:meetup-amsterdam:c6"]
    assert [entry["change"] for entry in document["ledger"]] == ["given"]
    assert {"event_received", "mailchimp_upsert", "journey_started"} <= {r["step"] for r in document["trace"]}
    assert document["suppression"] is None

    assert memberflow_cli(["trace", "exported@example.com"]) == 0
    printed = capsys.readouterr().out
    assert "consent ledger:" in printed and "member_joined generic:consent-e2e-c6" in printed


def test_an_address_changed_in_mailchimp_moves_the_member(running_stack):
    join(running_stack, "old.address@example.com", "c7", consent=True)
    assert running_stack.drain(timeout=60)

    sandbox(
        running_stack,
        "change_email",
        list_id=running_stack.settings.mailchimp_list_id,
        email="old.address@example.com",
        new_email="new.address@example.com",
    )
    assert running_stack.drain(timeout=60)

    assert record(running_stack, "old.address@example.com") is None
    moved = record(running_stack, "new.address@example.com")
    assert moved is not None and moved.email == "new.address@example.com" and moved.mailchimp_status == "subscribed"
    assert [entry.change for entry in ledger(running_stack, "new.address@example.com")] == ["given"]


def test_the_webhook_url_is_checked_and_a_wrong_secret_refused(running_stack):
    url = running_stack.mailchimp_webhook_url()
    assert requests.get(url, timeout=10).status_code == 200
    wrong = url.rsplit("/", 1)[0] + "/not-the-secret"
    answer = requests.post(
        wrong, data="type=unsubscribe", headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=10
    )
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_secret"
