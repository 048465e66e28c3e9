"""The Mailchimp sandbox's merge-field validation, its journeys and its signup-throttle and load-shedding knobs, as
the official mailchimp-marketing client sees them, and our adapter's errors for each against it."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pytest
import requests
from mailchimp_marketing.api_client import ApiClientError

from memberflow.adapters.mailchimp import MailchimpList
from memberflow.bulk import SIGNUP_THROTTLE_TEXT, BulkMember, RefusalKind
from memberflow.errors import AddressThrottled, NotFound, RateLimited, ResourceGone, is_service_failure
from memberflow.members import MemberJoin
from memberflow.onboarding.rules import WelcomeJourney
from memberflow.onboarding.welcome import start_welcome_journey
from memberflow.trace import StepRecorder
from memberflow_sandboxes.mailchimp import MailchimpSandbox
from support import mailchimp as sandbox_fixtures
from support.fakes import MemoryMembers, MemoryTrace
from support.mailchimp import official_client

LIST_ID = "list123"
API_KEY = sandbox_fixtures.SANDBOX_API_KEY
JOURNEY = WelcomeJourney("101", "201")
ADA = "ada@example.org"


def md5(email: str) -> str:
    return hashlib.md5(email.lower().encode()).hexdigest()


def problem(error: ApiClientError) -> dict:
    return json.loads(error.text)


@pytest.fixture(scope="module")
def running_sandbox():
    # The merge fields the local stack's audience has (PLATFORM, JOINED) besides Mailchimp's defaults.
    with MailchimpSandbox(
        api_key=API_KEY, merge_fields=(("PLATFORM", "Platform", "text"), ("JOINED", "Joined", "date"))
    ) as sandbox:
        yield sandbox


sandbox = sandbox_fixtures.sandbox
client = sandbox_fixtures.client
adapter = sandbox_fixtures.adapter


def admin(sandbox: MailchimpSandbox, control: str, body: dict) -> dict:
    answer = requests.post(f"{sandbox.admin_url}/{control}", json=body, timeout=5)
    assert answer.status_code == 200, answer.text
    return answer.json()


# -- merge fields ------------------------------------------------------------------------------------------------

WRITES = {
    "put": lambda client, fields: client.lists.set_list_member(
        LIST_ID, md5(ADA), {"email_address": ADA, "status_if_new": "subscribed", "merge_fields": fields}
    ),
    "post": lambda client, fields: client.lists.add_list_member(
        LIST_ID, {"email_address": ADA, "status": "subscribed", "merge_fields": fields}
    ),
}
# (id, merge fields sent, the field named, Mailchimp's detail)
INVALID = [
    ("number-in-a-text-field", {"FNAME": 42}, "FNAME", "Your merge fields were invalid."),
    ("object-in-a-text-field", {"LNAME": {"first": "Ada"}}, "LNAME", "Your merge fields were invalid."),
    ("words-in-a-number-field", {"AGE": "old"}, "AGE", "Your merge fields were invalid."),
    ("incomplete-address", {"ADDRESS": {"addr1": "1 Main St"}}, "ADDRESS", "Your merge fields were invalid."),
    ("boolean-fits-no-merge-field", {"FNAME": True}, "merge_fields.FNAME", "The resource submitted could not be"),
]


@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
@pytest.mark.parametrize(("fields", "named", "detail"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_a_merge_field_of_the_wrong_type_is_invalid_resource_naming_the_field(client, write, fields, named, detail):
    client.lists.add_list_merge_field(LIST_ID, {"name": "Age", "tag": "AGE", "type": "number"})

    with pytest.raises(ApiClientError) as caught:
        write(client, fields)

    refused = problem(caught.value)
    assert caught.value.status_code == 400 and refused["title"] == "Invalid Resource"
    assert refused["detail"].startswith(detail)
    assert [error["field"] for error in refused["errors"]] == [named]
    with pytest.raises(ApiClientError) as absent:
        client.lists.get_list_member(LIST_ID, md5(ADA))
    assert absent.value.status_code == 404


@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
def test_well_typed_merge_fields_are_stored(client, write):
    client.lists.add_list_merge_field(LIST_ID, {"name": "Age", "tag": "AGE", "type": "number"})
    fields = {"FNAME": "Ada", "LNAME": "", "AGE": "36", "PLATFORM": "slack", "JOINED": "2026-11-03"}

    member = write(client, fields)

    assert member["merge_fields"] == fields


def test_a_required_merge_field_left_out_is_refused_unless_merge_validation_is_skipped(client, sandbox):
    client.lists.add_list_merge_field(LIST_ID, {"name": "Company", "tag": "COMPANY", "type": "text", "required": True})
    body = {"email_address": ADA, "status_if_new": "subscribed", "merge_fields": {"FNAME": "Ada", "COMPANY": ""}}

    with pytest.raises(ApiClientError) as caught:
        client.lists.set_list_member(LIST_ID, md5(ADA), body)
    refused = problem(caught.value)
    assert refused["detail"] == "Your merge fields were invalid."
    assert refused["errors"] == [{"field": "COMPANY", "message": "Please enter a value"}]

    assert client.lists.set_list_member(LIST_ID, md5(ADA), body, skip_merge_validation=True)["status"] == "subscribed"
    # An existing member's update is not held to the required fields.
    assert client.lists.update_list_member(LIST_ID, md5(ADA), {"merge_fields": {"FNAME": "A."}})["status"]


def test_batch_subscribe_reports_a_missing_required_field_per_member_unless_skipped(client):
    client.lists.add_list_merge_field(LIST_ID, {"name": "Company", "tag": "COMPANY", "type": "text", "required": True})
    members = [{"email_address": ADA, "status": "subscribed", "merge_fields": {"FNAME": "Ada"}}]

    refused = client.lists.batch_list_members(LIST_ID, {"members": members})
    assert refused["error_count"] == 1 and refused["errors"][0]["field"] == "COMPANY"

    created = client.lists.batch_list_members(LIST_ID, {"members": members}, skip_merge_validation=True)
    assert created["total_created"] == 1 and created["error_count"] == 0


def test_memberflows_own_calls_pass_merge_validation_with_a_required_field_they_do_not_fill(client, adapter):
    # The adapter skips merge validation: an operator's required field never blocks a join or an import.
    client.lists.add_list_merge_field(LIST_ID, {"name": "Company", "tag": "COMPANY", "type": "text", "required": True})
    fields = {"FNAME": "Ada", "LNAME": "Lovelace", "PLATFORM": "slack", "JOINED": "2026-11-03"}

    assert adapter.upsert_member(LIST_ID, ADA, status_if_new="subscribed", merge_fields=fields).status == "subscribed"
    outcome = adapter.subscribe_many(LIST_ID, [BulkMember("bob@example.org", "subscribed", fields)])
    assert outcome.created == ["bob@example.org"] and not outcome.refused


# -- journeys ----------------------------------------------------------------------------------------------------


def test_a_trigger_for_a_journey_or_step_the_account_does_not_have_is_404(client, sandbox):
    admin(sandbox, "journeys", {"journey_id": JOURNEY.journey_id, "step_id": JOURNEY.step_id})
    sandbox.seed_member(LIST_ID, ADA, "subscribed")

    for journey_id, step_id in (("999", JOURNEY.step_id), (JOURNEY.journey_id, "999")):
        with pytest.raises(ApiClientError) as caught:
            client.customerJourneys.trigger(journey_id, step_id, {"email_address": ADA})
        assert caught.value.status_code == 404
        assert problem(caught.value)["title"] == "Resource Not Found"

    started = client.customerJourneys.trigger(JOURNEY.journey_id, JOURNEY.step_id, {"email_address": ADA})
    assert started.status_code == 204
    assert [t["email_address"] for t in sandbox.state.journey_triggers] == [ADA]


def test_journeys_given_at_start_are_the_accounts_and_survive_a_reset():
    with MailchimpSandbox(api_key=API_KEY, journeys=(("101", "201"),)) as sandbox:
        sandbox.reset()
        sandbox.seed_member(LIST_ID, ADA, "subscribed")
        client = official_client(sandbox.url, API_KEY)
        assert client.customerJourneys.trigger("101", "201", {"email_address": ADA}).status_code == 204
        with pytest.raises(ApiClientError) as caught:
            client.customerJourneys.trigger("7", "11", {"email_address": ADA})
        assert caught.value.status_code == 404


def welcome(adapter: MailchimpList, members: MemoryMembers) -> str:
    members.record_join(MemberJoin("m1", "slack:w1:u1", "slack", datetime.now(UTC), "c1", email=ADA))
    step = StepRecorder(MemoryTrace(), "subject", "run-1", "test")
    return start_welcome_journey("m1", ADA, JOURNEY, adapter, members, step, datetime.now(UTC), list_id=LIST_ID)


def test_a_welcome_for_a_missing_journey_is_an_account_problem_and_for_a_deleted_member_a_refusal(
    client, sandbox, adapter
):
    admin(sandbox, "journeys", {"journey_id": "555", "step_id": "666"})
    sandbox.seed_member(LIST_ID, ADA, "subscribed")
    with pytest.raises(NotFound) as account:
        welcome(adapter, MemoryMembers())
    assert is_service_failure(account.value)

    admin(sandbox, "journeys", {"journey_id": JOURNEY.journey_id, "step_id": JOURNEY.step_id})
    client.lists.delete_list_member_permanent(LIST_ID, md5(ADA))  # an admin deletes Ada after her upsert
    with pytest.raises(ResourceGone) as refused:
        welcome(adapter, MemoryMembers())
    assert not is_service_failure(refused.value)


@pytest.mark.parametrize(
    "call",
    [
        lambda adapter: adapter.add_tags(LIST_ID, ADA, ["platform:slack"]),
        lambda adapter: adapter.set_status(LIST_ID, ADA, "pending"),
    ],
    ids=["add_tags", "set_status"],
)
def test_a_member_deleted_between_onboarding_steps_is_refused_not_an_account_problem(client, sandbox, adapter, call):
    adapter.upsert_member(LIST_ID, ADA, status_if_new="subscribed", merge_fields={"FNAME": "Ada"})
    client.lists.delete_list_member_permanent(LIST_ID, md5(ADA))

    with pytest.raises(ResourceGone):
        call(adapter)


# -- fault knobs -------------------------------------------------------------------------------------------------


def test_a_throttled_signup_is_invalid_resource_in_mailchimps_words_and_the_adapter_waits_for_the_address(
    client, sandbox, adapter
):
    admin(sandbox, "throttle_signup", {"email": ADA})

    with pytest.raises(ApiClientError) as caught:
        client.lists.set_list_member(LIST_ID, md5(ADA), {"email_address": ADA, "status_if_new": "subscribed"})
    refused = problem(caught.value)
    assert caught.value.status_code == 400 and refused["title"] == "Invalid Resource"
    assert SIGNUP_THROTTLE_TEXT in refused["detail"]

    with pytest.raises(AddressThrottled) as throttled:
        adapter.upsert_member(LIST_ID, ADA, status_if_new="subscribed", merge_fields={})
    assert not is_service_failure(throttled.value)
    outcome = adapter.subscribe_many(LIST_ID, [BulkMember(ADA, "subscribed")])
    assert outcome.refused[ADA].kind is RefusalKind.SIGNUP_THROTTLED

    admin(sandbox, "throttle_signup", {"email": ADA, "throttled": False})
    assert adapter.upsert_member(LIST_ID, ADA, status_if_new="subscribed", merge_fields={}).status == "subscribed"


def test_shed_load_answers_a_bare_403_that_the_adapter_takes_for_a_rate_limit(client, sandbox, adapter):
    admin(sandbox, "shed_load", {"calls": 1})
    shed = client.ping.get()  # an empty-bodied error: the official client returns it instead of raising
    assert isinstance(shed, requests.Response) and shed.status_code == 403 and shed.content == b""
    assert client.ping.get()["health_status"]

    admin(sandbox, "shed_load", {"calls": 10})
    with pytest.raises(RateLimited) as limited:
        adapter.add_tags(LIST_ID, ADA, ["platform:slack"])
    assert limited.value.retry_after is None and is_service_failure(limited.value)
    admin(sandbox, "shed_load", {"calls": 0})
    assert adapter.list_exists(LIST_ID)


def test_search_members_finds_the_address_exactly_and_by_part_of_an_address_or_name(client):
    client.lists.add_list_member(
        LIST_ID, {"email_address": ADA, "status": "subscribed", "merge_fields": {"FNAME": "Ada", "LNAME": "Lovelace"}}
    )
    client.lists.add_list_member(LIST_ID, {"email_address": "grace@example.org", "status": "pending"})

    exact = client.searchMembers.search(ADA.upper(), list_id=LIST_ID)
    by_name = client.searchMembers.search("lovelace")
    by_domain = client.searchMembers.search("example.org")

    assert [m["email_address"] for m in exact["exact_matches"]["members"]] == [ADA]
    assert exact["full_search"]["total_items"] == 0
    assert [m["email_address"] for m in by_name["full_search"]["members"]] == [ADA]
    assert by_domain["full_search"]["total_items"] == 2
    assert by_domain["exact_matches"] == {"members": [], "total_items": 0}


def test_search_members_without_a_query_is_invalid_resource(sandbox):
    answer = requests.get(f"{sandbox.url}/search-members", auth=("any", API_KEY), timeout=5)

    assert answer.status_code == 400
    assert answer.headers["Content-Type"].startswith("application/problem+json")
    assert answer.json()["errors"][0]["field"] == "query"


def test_the_api_root_describes_the_account_and_counts_its_subscribers(client):
    client.lists.add_list_member(LIST_ID, {"email_address": ADA, "status": "subscribed"})

    root = client.root.get_root(fields=["account_name", "total_subscribers"])

    assert root == {"account_name": "memberflow sandbox", "total_subscribers": 1}
