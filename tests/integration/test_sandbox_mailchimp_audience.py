"""The sandbox's audience fields and permanent delete as the official mailchimp-marketing client sees them, and our
Mailchimp adapter's calls for erasure (`forget`) and `memberflow doctor` (ping, audience, merge fields) against it."""

from __future__ import annotations

import json

import pytest
from mailchimp_marketing.api_client import ApiClientError

from memberflow.adapters.mailchimp import MailchimpList
from memberflow.errors import CredentialsRejected, NotFound
from memberflow_sandboxes.mailchimp import MailchimpSandbox
from support import mailchimp as sandbox_fixtures

LIST_ID = "list123"
API_KEY = sandbox_fixtures.SANDBOX_API_KEY


@pytest.fixture(scope="module")
def running_sandbox():
    with MailchimpSandbox(api_key=API_KEY, merge_fields=(("PLATFORM", "Platform", "text"),)) as sandbox:
        yield sandbox


sandbox = sandbox_fixtures.sandbox
client = sandbox_fixtures.client
adapter = sandbox_fixtures.adapter


def test_an_audience_starts_with_mailchimps_default_fields_and_those_the_operator_added(client):
    answer = client.lists.get_list_merge_fields(LIST_ID, count=100)

    assert answer["list_id"] == LIST_ID and answer["total_items"] == 6
    tags = [field["tag"] for field in answer["merge_fields"]]
    assert tags == ["FNAME", "LNAME", "ADDRESS", "PHONE", "BIRTHDAY", "PLATFORM"]
    first = answer["merge_fields"][0]
    assert set(first) >= {
        "merge_id",
        "tag",
        "name",
        "type",
        "required",
        "default_value",
        "public",
        "display_order",
        "options",
        "help_text",
        "list_id",
        "_links",
    }
    assert (first["merge_id"], first["name"], first["type"]) == (1, "First Name", "text")


def test_merge_fields_are_paged_filtered_and_projected_like_mailchimps(client):
    page = client.lists.get_list_merge_fields(LIST_ID, count=2, offset=1, fields=["merge_fields.tag", "total_items"])
    assert page == {"merge_fields": [{"tag": "LNAME"}, {"tag": "ADDRESS"}], "total_items": 6}
    texts = client.lists.get_list_merge_fields(LIST_ID, type="text")
    assert [field["tag"] for field in texts["merge_fields"]] == ["FNAME", "LNAME", "PLATFORM"]


def test_a_merge_field_is_added_read_and_deleted(client):
    added = client.lists.add_list_merge_field(LIST_ID, {"name": "Joined", "type": "date", "tag": "joined"})

    assert (added["tag"], added["type"], added["options"]["date_format"]) == ("JOINED", "date", "MM/DD/YYYY")
    assert client.lists.get_list_merge_field(LIST_ID, added["merge_id"])["tag"] == "JOINED"
    untagged = client.lists.add_list_merge_field(LIST_ID, {"name": "Shoe size", "type": "number"})
    assert untagged["tag"] == f"MMERGE{untagged['merge_id']}"

    response = client.lists.delete_list_merge_field(LIST_ID, added["merge_id"])
    assert response.status_code == 204  # the client hands back the bare response of a 204
    with pytest.raises(ApiClientError) as caught:
        client.lists.get_list_merge_field(LIST_ID, added["merge_id"])
    assert caught.value.status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [({"type": "text"}, "name"), ({"name": "X", "type": "colour"}, "type")],
)
def test_an_invalid_merge_field_is_refused_naming_the_field(client, body, field):
    with pytest.raises(ApiClientError) as caught:
        client.lists.add_list_merge_field(LIST_ID, body)
    problem = json.loads(caught.value.text)
    assert (caught.value.status_code, problem["title"]) == (400, "Invalid Resource")
    assert problem["errors"][0]["field"] == field


def test_a_second_field_with_the_same_tag_is_refused(client):
    with pytest.raises(ApiClientError) as caught:
        client.lists.add_list_merge_field(LIST_ID, {"name": "Platform again", "type": "text", "tag": "PLATFORM"})
    assert "already exists" in json.loads(caught.value.text)["detail"]


def test_reset_brings_back_the_audience_fields(client, sandbox):
    client.lists.delete_list_merge_field(LIST_ID, 6)
    sandbox.reset()
    assert "PLATFORM" in [f["tag"] for f in client.lists.get_list_merge_fields(LIST_ID)["merge_fields"]]


def test_forget_deletes_permanently_and_mailchimp_then_refuses_the_address(adapter, client, sandbox):
    sandbox.seed_member(LIST_ID, "gone@example.org", "subscribed")

    assert adapter.forget(LIST_ID, "Gone@Example.org") is True

    with pytest.raises(ApiClientError) as caught:
        client.lists.get_list_member(LIST_ID, "gone@example.org")
    assert caught.value.status_code == 404
    with pytest.raises(ApiClientError) as refused:
        client.lists.set_list_member(
            LIST_ID, "gone@example.org", {"email_address": "gone@example.org", "status_if_new": "pending"}
        )
    assert json.loads(refused.value.text)["title"] == "Forgotten Email Not Subscribed"
    assert adapter.forget(LIST_ID, "gone@example.org") is False  # already gone: done


def test_forget_in_a_missing_audience_is_an_account_problem_not_done(adapter):
    with pytest.raises(NotFound):
        adapter.forget("no-such-list", "someone@example.org")


def test_what_the_doctor_reads(adapter, sandbox):
    adapter.ping()
    assert adapter.audience_name(LIST_ID) == f"Sandbox list {LIST_ID}"
    assert adapter.merge_fields(LIST_ID)["PLATFORM"] == "text"
    with pytest.raises(NotFound):
        adapter.audience_name("no-such-list")
    with pytest.raises(CredentialsRejected):
        MailchimpList(lambda fresh: "wrong-us1", sandbox.url).ping()
