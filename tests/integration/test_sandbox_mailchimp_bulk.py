"""Mailchimp in bulk on the sandbox: batch subscribe and static segments (tags) through the official
mailchimp-marketing client, and through memberflow's adapter (`MailchimpList` as a `BulkMailingList`)."""

from __future__ import annotations

import json
import time

import pytest
from mailchimp_marketing.api_client import ApiClientError

from memberflow.adapters.mailchimp import MailchimpList
from memberflow.bulk import BulkMember, RefusalKind
from memberflow.errors import ComplianceState, ForgottenAddress, PermanentRefusal
from support import mailchimp as sandbox_fixtures

API_KEY = sandbox_fixtures.SANDBOX_API_KEY
LIST_ID = "list123"
running_sandbox = sandbox_fixtures.running_sandbox
sandbox = sandbox_fixtures.sandbox
client = sandbox_fixtures.client


def problem(error: ApiClientError) -> dict:
    return json.loads(error.text)


def addresses(n: int, prefix: str = "member") -> list[str]:
    return [f"{prefix}{i}@example.org" for i in range(n)]


# ------------------------------------------------------------------------------ batch subscribe (official client)
def test_batch_subscribe_reports_each_member(client, sandbox):
    sandbox.seed_member(LIST_ID, "old@example.org", "subscribed")
    answer = client.lists.batch_list_members(
        LIST_ID,
        {
            "members": [
                {"email_address": "new@example.org", "status": "subscribed", "timestamp_signup": "2024-05-01 09:30:00"},
                {"email_address": "old@example.org", "status": "subscribed"},
                {"email_address": "fake@example.invalid", "status": "subscribed"},
            ],
            "update_existing": False,
        },
    )
    assert answer["total_created"] == 1 and answer["total_updated"] == 0 and answer["error_count"] == 2
    assert [m["email_address"] for m in answer["new_members"]] == ["new@example.org"]
    assert answer["new_members"][0]["timestamp_signup"] == "2024-05-01T09:30:00+00:00"
    errors = {e["email_address"]: e for e in answer["errors"]}
    assert errors["old@example.org"]["error_code"] == "ERROR_CONTACT_EXISTS"
    assert "please provide update_existing:true" in errors["old@example.org"]["error"]
    assert errors["fake@example.invalid"]["error_code"] == "ERROR_GENERIC"
    assert "looks fake or invalid" in errors["fake@example.invalid"]["error"]


def test_batch_subscribe_has_no_status_if_new(client, sandbox):
    # Batch members take `status` only: `status_if_new` is a PUT's field, and a new member without a status fails.
    answer = client.lists.batch_list_members(
        LIST_ID,
        {"members": [{"email_address": "new@example.org", "status_if_new": "subscribed"}], "update_existing": False},
    )
    assert answer["total_created"] == 0 and answer["error_count"] == 1
    assert answer["errors"][0]["email_address"] == "new@example.org"
    with pytest.raises(ApiClientError):  # not in the audience
        client.lists.get_list_member(LIST_ID, "new@example.org")


def test_batch_subscribe_does_not_count_on_a_members_tags(client):
    # Mailchimp does not reliably apply them: the sandbox never does, so code relying on them fails here first.
    client.lists.batch_list_members(
        LIST_ID, {"members": [{"email_address": "tagged@example.org", "status": "subscribed", "tags": ["vip"]}]}
    )
    assert client.lists.get_list_member(LIST_ID, "tagged@example.org")["tags"] == []


def test_batch_subscribe_refuses_more_than_500_members(client):
    members = [{"email_address": email, "status": "subscribed"} for email in addresses(501)]
    with pytest.raises(ApiClientError) as refused:
        client.lists.batch_list_members(LIST_ID, {"members": members})
    assert refused.value.status_code == 400
    assert problem(refused.value)["errors"][0]["field"] == "members"


# ------------------------------------------------------------------------------ static segments (official client)
def test_a_static_segment_is_a_tag(client, sandbox):
    for email in ("a@example.org", "b@example.org"):
        sandbox.seed_member(LIST_ID, email, "subscribed")
    segment = client.lists.create_segment(
        LIST_ID, {"name": "win-back", "static_segment": ["a@example.org", "nobody@example.org"]}
    )
    assert segment["type"] == "static" and segment["member_count"] == 1

    added = client.lists.batch_segment_members(
        {"members_to_add": ["a@example.org", "b@example.org", "nobody@example.org"]}, LIST_ID, segment["id"]
    )
    assert [m["email_address"] for m in added["members_added"]] == ["b@example.org"]  # a was in it already
    assert (added["total_added"], added["total_removed"], added["error_count"]) == (1, 0, 0)

    tags = client.lists.get_list_member_tags(LIST_ID, "b@example.org")["tags"]
    assert [(tag["id"], tag["name"]) for tag in tags] == [(segment["id"], "win-back")]
    assert client.lists.get_list_member(LIST_ID, "a@example.org")["tags"] == [{"id": segment["id"], "name": "win-back"}]
    members = client.lists.get_segment_members_list(LIST_ID, segment["id"])
    assert members["total_items"] == 2
    assert client.lists.get_segment(LIST_ID, segment["id"])["member_count"] == 2
    assert [event["email_address"] for event in sandbox.state.tag_events] == ["a@example.org", "b@example.org"]

    removed = client.lists.batch_segment_members({"members_to_remove": ["a@example.org"]}, LIST_ID, segment["id"])
    assert removed["total_removed"] == 1
    assert client.lists.get_list_member_tags(LIST_ID, "a@example.org")["tags"] == []


def test_tagging_a_member_by_name_makes_the_segment(client, sandbox):
    sandbox.seed_member(LIST_ID, "a@example.org", "subscribed")
    client.lists.update_list_member_tags(LIST_ID, "a@example.org", {"tags": [{"name": "vip", "status": "active"}]})
    segments = client.lists.list_segments(LIST_ID, type="static")
    assert [(s["name"], s["member_count"]) for s in segments["segments"]] == [("vip", 1)]
    assert client.lists.list_segments(LIST_ID, type="saved")["total_items"] == 0
    assert len(sandbox.state.tag_events) == 1


def test_segments_page_with_count_and_offset(client, sandbox):
    for i in range(5):
        client.lists.create_segment(LIST_ID, {"name": f"tag-{i}", "static_segment": []})
    page = client.lists.list_segments(LIST_ID, type="static", count=2, offset=3)
    assert page["total_items"] == 5
    assert [s["name"] for s in page["segments"]] == ["tag-3", "tag-4"]


def test_segment_calls_refuse_more_than_500_addresses(client):
    segment = client.lists.create_segment(LIST_ID, {"name": "big", "static_segment": []})
    with pytest.raises(ApiClientError) as refused:
        client.lists.batch_segment_members({"members_to_add": addresses(501)}, LIST_ID, segment["id"])
    assert refused.value.status_code == 400
    assert problem(refused.value)["detail"] == "Maximum allowed member items exceeded"
    with pytest.raises(ApiClientError) as missing:
        client.lists.get_segment(LIST_ID, 999)
    assert missing.value.status_code == 404


# ------------------------------------------------------------------------------ latency and call counts
def test_calls_are_counted_per_endpoint_and_latency_applies_to_each(client, sandbox):
    sandbox.seed_member(LIST_ID, "a@example.org", "subscribed")
    client.lists.list_segments(LIST_ID)
    client.lists.get_list_member(LIST_ID, "a@example.org")
    sandbox.set_latency(0.2)
    started = time.monotonic()
    client.lists.list_segments(LIST_ID)
    assert time.monotonic() - started >= 0.2
    assert sandbox.state.calls == {
        "GET /lists/{list_id}/segments": 2,
        "GET /lists/{list_id}/members/{subscriber_hash}": 1,
    }


# ------------------------------------------------------------------------------ through memberflow's adapter
@pytest.fixture
def bulk(sandbox) -> MailchimpList:
    return MailchimpList(lambda fresh: API_KEY, sandbox.url)


def test_1200_members_take_3_calls(bulk, sandbox):
    members = [BulkMember(email, "subscribed", {"FNAME": "Ada"}) for email in addresses(1200)]
    outcome = bulk.subscribe_many(LIST_ID, members)
    assert outcome.counts == {"created": 1200, "updated": 0, "existing": 0, "refused": 0}
    assert sandbox.state.calls == {"POST /lists/{list_id}": 3}
    assert bulk.calls == {"POST /lists/{list_id}": 3}
    assert len(sandbox.state.audience(LIST_ID).members) == 1200


def test_members_refused_one_by_one_come_back_as_refusals(bulk, sandbox):
    sandbox.seed_member(LIST_ID, "left@example.org", "unsubscribed")
    sandbox.seed_member(LIST_ID, "staying@example.org", "subscribed")
    sandbox.seed_member(LIST_ID, "erased@example.org", "subscribed")
    MailchimpList(lambda fresh: API_KEY, sandbox.url).forget(LIST_ID, "erased@example.org")
    members = [
        BulkMember(email, "subscribed")
        for email in (
            "new@example.org",
            "left@example.org",
            "staying@example.org",
            "erased@example.org",
            "not-an-address",
        )
    ]

    outcome = bulk.subscribe_many(LIST_ID, members, update_existing=True)
    assert outcome.created == ["new@example.org"]
    assert outcome.updated == ["staying@example.org"]
    kinds = {email: refusal.kind for email, refusal in outcome.refused.items()}
    assert kinds == {
        "left@example.org": RefusalKind.COMPLIANCE_STATE,
        "erased@example.org": RefusalKind.FORGOTTEN_ADDRESS,
        "not-an-address": RefusalKind.INVALID_ADDRESS,
    }
    assert isinstance(outcome.refused["left@example.org"].error, ComplianceState)
    assert isinstance(outcome.refused["erased@example.org"].error, ForgottenAddress)
    assert sandbox.state.get_member(LIST_ID, "left@example.org").status == "unsubscribed"


def test_without_update_existing_members_already_there_are_left_alone(bulk, sandbox):
    sandbox.seed_member(LIST_ID, "left@example.org", "unsubscribed")
    outcome = bulk.subscribe_many(LIST_ID, [BulkMember("left@example.org", "subscribed")])
    assert outcome.existing == ["left@example.org"] and not outcome.refused
    assert sandbox.state.get_member(LIST_ID, "left@example.org").status == "unsubscribed"


def test_more_than_500_in_one_call_is_refused_whole(sandbox):
    """The adapter never sends more than 500; Mailchimp's 400 for a batch that does is a refusal of the call."""
    mailing_list = MailchimpList(lambda fresh: API_KEY, sandbox.url)
    members = [{"email_address": email, "status": "subscribed"} for email in addresses(501)]
    with pytest.raises(PermanentRefusal):
        mailing_list._call("POST", f"/lists/{LIST_ID}", {"members": members})
    assert sandbox.state.audience(LIST_ID).members == {}


def test_tags_added_through_the_segment_are_the_members_tags(bulk, sandbox, client):
    emails = addresses(700)
    bulk.subscribe_many(LIST_ID, [BulkMember(email, "subscribed") for email in emails])
    sandbox.state.calls.clear()

    outcome = bulk.tag_many(LIST_ID, "win-back", [*emails, "stranger@example.org"])
    assert len(outcome.updated) == 700 and outcome.existing == ["stranger@example.org"]
    assert sandbox.state.calls == {
        "GET /lists/{list_id}/segments": 1,
        "POST /lists/{list_id}/segments": 1,
        "POST /lists/{list_id}/segments/{segment_id}": 2,
    }
    tags = client.lists.get_list_member_tags(LIST_ID, emails[650])["tags"]
    assert [tag["name"] for tag in tags] == ["win-back"]
    assert len(sandbox.state.tag_events) == 700

    again = bulk.tag_many(LIST_ID, "win-back", emails[:10])  # a repeat tags nobody twice
    assert again.updated == [] and again.existing == emails[:10]
    assert len(sandbox.state.tag_events) == 700

    removed = bulk.untag_many(LIST_ID, "win-back", emails[:3])
    assert removed.updated == emails[:3]
    assert client.lists.get_list_member_tags(LIST_ID, emails[0])["tags"] == []
    segment_id = bulk.tag_segment_id(LIST_ID, "win-back")
    assert client.lists.get_segment(LIST_ID, segment_id)["member_count"] == 697


def test_an_existing_tag_is_found_not_created(bulk, sandbox, client):
    sandbox.seed_member(LIST_ID, "a@example.org", "subscribed")
    client.lists.update_list_member_tags(LIST_ID, "a@example.org", {"tags": [{"name": "vip", "status": "active"}]})
    segment_id = bulk.tag_segment_id(LIST_ID, "vip")
    assert client.lists.get_segment_members_list(LIST_ID, segment_id)["total_items"] == 1
    assert "POST /lists/{list_id}/segments" not in sandbox.state.calls
