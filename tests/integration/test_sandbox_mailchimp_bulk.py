"""Mailchimp in bulk on the sandbox: batch subscribe and static segments (tags) through the official
mailchimp-marketing client, and through memberflow's adapter (`MailchimpList` as a `BulkMailingList`)."""

from __future__ import annotations

import json
import time

import mailchimp_marketing
import pytest
from mailchimp_marketing.api_client import ApiClientError

from memberflow_sandboxes.mailchimp import MailchimpSandbox

LIST_ID = "list123"
API_KEY = "sandbox-key-us1"


def make_client(url: str) -> mailchimp_marketing.Client:
    client = mailchimp_marketing.Client()
    client.set_config({"api_key": API_KEY})
    client.api_client.host = url
    return client


def problem(error: ApiClientError) -> dict:
    return json.loads(error.text)


def addresses(n: int, prefix: str = "member") -> list[str]:
    return [f"{prefix}{i}@example.org" for i in range(n)]


@pytest.fixture(scope="module")
def running_sandbox():
    with MailchimpSandbox(api_key=API_KEY) as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(running_sandbox):
    running_sandbox.reset()
    return running_sandbox


@pytest.fixture
def client(sandbox):
    return make_client(sandbox.url)


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
