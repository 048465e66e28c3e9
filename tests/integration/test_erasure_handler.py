"""Erasure through the onboarding function against moto (tables, queues, secrets from template.yaml) and the sandbox
Mailchimp: the member is gone from Mailchimp (read back with the official client) and from every table, only a
keyed hash is left, and what comes after the erasure is dropped or held to a fresh opt-in."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest
from mailchimp_marketing.api_client import ApiClientError

from memberflow.adapters.due_work import DynamoDueWorkIndex
from memberflow.adapters.member_profiles import DynamoMemberRepository
from memberflow.adapters.trace_store import DynamoTraceStore
from memberflow.events import MemberErased
from memberflow.pipeline.envelope import QueuedEvent
from memberflow.privacy import email_key, email_suppression_name, subscriber_hash
from memberflow.runtime.container import container
from memberflow.trace import Step, email_subject, erased_subject
from memberflow.trace_report import collect
from support.mailchimp import official_client
from support.queue import active, dead_letters, empty_queues, joined, run_onboarding

LIST = "list123"


@pytest.fixture(autouse=True)
def clean_state(local_stack):
    local_stack.mailchimp.reset()
    empty_queues(local_stack)
    yield


@pytest.fixture
def mailchimp(local_stack):
    return official_client(local_stack.mailchimp.url, local_stack.settings.mailchimp_api_key)


def erasure(email: str | None, identity=None, n: int = 1) -> QueuedEvent:
    return QueuedEvent(
        idempotency_key=f"discourse:w1:user_destroyed:{email}:{n}",
        correlation_id=f"corr-erase-{n}",
        source="discourse",
        event=MemberErased(email=email, identity=identity),
    )


def scan(local_stack, table: str) -> list[dict]:
    dynamodb, items, kwargs = local_stack.client("dynamodb"), [], {"TableName": local_stack.table_name(table)}
    while True:
        page = dynamodb.scan(**kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def traces_of(email: str) -> list[str]:
    """The address and every unsalted hash of it memberflow or Mailchimp key anything by."""
    normalised = email.lower()
    return [normalised, email_key(email), subscriber_hash(email), hashlib.sha256(normalised.encode()).hexdigest()]


def test_an_erased_member_is_gone_from_mailchimp_and_every_table(local_stack, mailchimp):
    email = "erase.me@example.org"
    join = joined(email, consent=True, user_id="501")
    run_onboarding(local_stack, join)
    run_onboarding(local_stack, active(join.event.identity))
    assert mailchimp.lists.get_list_member(LIST, email)["status"] == "subscribed"

    answer = run_onboarding(local_stack, erasure(email, join.event.identity))

    assert answer == {"batchItemFailures": []}
    with pytest.raises(ApiClientError) as caught:
        mailchimp.lists.get_list_member(LIST, email)
    assert caught.value.status_code == 404
    assert email in local_stack.mailchimp.state.snapshot()["lists"][LIST]["forgotten"]
    for table in ("MembersTable", "TraceTable", "IdempotencyTable"):
        stored = json.dumps(scan(local_stack, table))
        for trace in traces_of(email):
            assert trace not in stored, (table, trace)
    members = scan(local_stack, "MembersTable")
    assert not [item for item in members if join.event.identity.key in json.dumps(item)]
    # Left: the suppression (keyed hashes of the address and the identity) and the erasure's trace record.
    assert sum(item["pk"]["S"].startswith("SUPPRESSED#") for item in members) == 2
    erasure_record = container().suppressions.find(email_suppression_name(email))
    assert erasure_record is not None and erasure_record.requested_by == "discourse"
    trace = DynamoTraceStore(local_stack.table_name("TraceTable"))
    [erased] = trace.query(erased_subject(erasure_record.key))
    assert erased.step is Step.ERASED and "permanently deleted" in erased.detail
    assert trace.query(email_subject(email)) == []


def test_the_trace_of_an_erased_member_says_when(local_stack):
    email = "traced.erasure@example.org"
    run_onboarding(local_stack, joined(email, consent=True, user_id="502"))
    before = datetime.now(UTC)
    run_onboarding(local_stack, erasure(email))

    report = collect(
        email,
        DynamoTraceStore(local_stack.table_name("TraceTable")),
        DynamoMemberRepository(local_stack.table_name("MembersTable")),
        container().suppressions,
    )

    assert report.member is None and report.erasure is not None
    assert before - timedelta(seconds=1) <= report.erasure.erased_at <= datetime.now(UTC)
    assert report.verdict.reason.startswith(f"erased on {report.erasure.erased_at:%Y-%m-%d}")


def test_a_join_queued_before_the_erasure_is_dropped_and_a_re_join_is_recorded_as_refused(local_stack, mailchimp):
    email = "came.back@example.org"
    run_onboarding(local_stack, joined(email, consent=True, user_id="503"))
    stale = joined(email, consent=True, user_id="503", key="discourse:w1:join:503:redelivered")  # received now
    run_onboarding(local_stack, erasure(email))

    assert run_onboarding(local_stack, stale) == {"batchItemFailures": []}
    assert DynamoMemberRepository(local_stack.table_name("MembersTable")).get(email_key(email)) is None

    rejoin = joined(email, consent=True, user_id="504")  # a new forum account, received after the erasure
    assert run_onboarding(local_stack, rejoin) == {"batchItemFailures": []}  # recorded, not retried
    assert dead_letters(local_stack) == []
    with pytest.raises(ApiClientError):
        mailchimp.lists.get_list_member(LIST, email)  # Mailchimp refuses a permanently deleted address by API
    refused = [r for r in DynamoTraceStore(local_stack.table_name("TraceTable")).query(email_subject(email))]
    assert any("Forgotten Email Not Subscribed" in r.detail and "fresh opt-in" in r.detail for r in refused)


def test_an_erasure_waits_out_a_mailchimp_outage_without_losing_the_member(local_stack, mailchimp):
    email = "patient.erasure@example.org"
    run_onboarding(local_stack, joined(email, consent=True, user_id="505"))
    local_stack.mailchimp.set_faults(fail_emails={email: 500})
    try:
        answer = run_onboarding(local_stack, erasure(email))
    finally:
        local_stack.mailchimp.set_faults()

    assert len(answer["batchItemFailures"]) == 1  # back to the queue, with the member still known for the retry
    assert DynamoMemberRepository(local_stack.table_name("MembersTable")).get(email_key(email)) is not None
    assert mailchimp.lists.get_list_member(LIST, email)["status"] == "subscribed"


def test_a_drip_run_racing_an_erasure_leaves_no_empty_profile_behind(local_stack):
    """The drip removes a member's step after Mailchimp refused it (the contact is gone): that write must not
    create an empty profile under the erased member's key."""
    due_work = DynamoDueWorkIndex(local_stack.table_name("MembersTable"))

    due_work.remove("drip", email_key("raced@example.org"))

    keys = [item["pk"]["S"] for item in scan(local_stack, "MembersTable")]
    assert f"MEMBER#{email_key('raced@example.org')}" not in keys
