"""The onboarding function against moto (tables, queues, secrets from template.yaml) and the sandbox Mailchimp."""

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import mailchimp_marketing
import pytest
from mailchimp_marketing.api_client import ApiClientError

from memberflow.adapters.due_work import DynamoDueWorkIndex
from memberflow.adapters.member_profiles import DynamoMemberRepository
from memberflow.adapters.trace_store import DynamoTraceStore
from memberflow.events import MemberJoined, MemberScreeningPassed
from memberflow.members import MemberJoin
from memberflow.models import MemberIdentity, Platform, check_email
from memberflow.onboarding.drip import send_due_drip_steps
from memberflow.pipeline.envelope import QueuedEvent
from memberflow.ports import DueWork
from memberflow.privacy import email_key
from memberflow.runtime.container import container
from memberflow.trace import Step, email_subject
from memberflow_local.event_sources import lambda_sqs_record
from support.queue import (
    JOINED,
    active,
    consent_given,
    dead_letters,
    empty_queues,
    joined,
    receive_all,
    run_onboarding,
    verified,
)


@pytest.fixture(autouse=True)
def clean_state(local_stack):
    local_stack.mailchimp.reset()
    empty_queues(local_stack)
    yield


@pytest.fixture
def mailchimp(local_stack):
    """The official client, pointed at the sandbox: what a marketer would see."""
    client = mailchimp_marketing.Client()
    client.set_config({"api_key": local_stack.settings.mailchimp_api_key})
    client.api_client.host = local_stack.mailchimp.url
    return client


def status(mailchimp, email):
    return mailchimp.lists.get_list_member(LIST, email)["status"]


def journeys(local_stack, email):
    return [t for t in local_stack.mailchimp.state.journey_triggers if t["email_address"].lower() == email.lower()]


def members(local_stack):
    return DynamoMemberRepository(local_stack.table_name("MembersTable"))


def trace_steps(local_stack, email):
    records = DynamoTraceStore(local_stack.table_name("TraceTable")).query(email_subject(email))
    return [(r.step, r.outcome.value) for r in sorted(records, key=lambda r: r.at)]


LIST = "list123"


def test_consenting_member_is_subscribed_tagged_and_welcomed(local_stack, mailchimp):
    email = "ada@example.org"
    answer = run_onboarding(local_stack, joined(email, consent=True))

    assert answer == {"batchItemFailures": []}
    member = mailchimp.lists.get_list_member(LIST, email)
    assert member["status"] == "subscribed"
    assert member["merge_fields"]["FNAME"] == "Ada" and member["merge_fields"]["PLATFORM"] == "discourse"
    assert {tag["name"] for tag in member["tags"]} == {"platform:discourse", "cohort:2026-11"}
    assert len(journeys(local_stack, email)) == 1
    stored = members(local_stack).get(email_key(email))
    assert stored.mailchimp_status == "subscribed"
    # The drip counts from when the member entered it (now), not from an old join date.
    assert abs(stored.drip_started_at - datetime.now(UTC)) < timedelta(minutes=1)
    assert stored.drip_due_at == stored.drip_started_at + timedelta(days=1)
    assert (Step.JOURNEY_STARTED, "ok") in trace_steps(local_stack, email)


def test_duplicate_delivery_starts_no_second_journey(local_stack, mailchimp):
    email = "grace@example.org"
    event = joined(email, consent=True, key="discourse:w1:user_created:42")
    run_onboarding(local_stack, event)
    requests_after_first = sum(local_stack.mailchimp.state.request_counts.values())
    run_onboarding(local_stack, event)  # SQS redelivery / platform retry: same idempotency key
    run_onboarding(local_stack, event, event)  # twice in one batch

    assert len(journeys(local_stack, email)) == 1
    assert sum(local_stack.mailchimp.state.request_counts.values()) == requests_after_first


def test_member_without_consent_is_stored_without_marketing_permission(local_stack, mailchimp):
    email = "linus@example.org"
    run_onboarding(local_stack, joined(email, consent=False, platform=Platform.SLACK))

    assert status(mailchimp, email) == "transactional"
    assert journeys(local_stack, email) == []
    assert members(local_stack).get(email_key(email)).drip_due_at is None


def test_unsubscribed_member_is_never_resubscribed(local_stack, mailchimp):
    email = "former@example.org"
    local_stack.mailchimp.seed_member(LIST, email, "unsubscribed")

    answer = run_onboarding(local_stack, joined(email, consent=False, platform=Platform.SLACK))

    assert answer == {"batchItemFailures": []}  # a compliance answer is recorded, not retried
    assert status(mailchimp, email) == "unsubscribed"
    assert journeys(local_stack, email) == []
    assert any("opted out earlier" in detail for detail in _details(local_stack, email))


def test_unsubscribed_member_who_consents_again_gets_mailchimps_re_opt_in_never_a_subscribe(local_stack, mailchimp):
    email = "returning@example.org"
    local_stack.mailchimp.seed_member(LIST, email, "unsubscribed")

    answer = run_onboarding(local_stack, joined(email, consent=True))

    # `status: pending` on the existing member: Mailchimp's re-opt-in email; the address stays in compliance state
    # (no direct subscribe possible) until the member confirms it.
    assert answer == {"batchItemFailures": []}
    assert status(mailchimp, email) == "pending"
    assert local_stack.mailchimp.state.audience(LIST).in_compliance_state(email)
    assert journeys(local_stack, email) == []
    assert any("re-opt-in" in detail for detail in _details(local_stack, email))
    member = members(local_stack).get(email_key(email))
    assert member.mailchimp_status == "pending" and member.opted_out_before

    local_stack.mailchimp.state.confirm_opt_in(LIST, email)  # the member clicks the link
    assert status(mailchimp, email) == "subscribed"


def test_refused_direct_subscribe_falls_back_to_double_opt_in(local_stack, mailchimp):
    email = "review@example.org"
    local_stack.mailchimp.state.compliance_review.add(email)

    run_onboarding(local_stack, joined(email, consent=True))

    assert status(mailchimp, email) == "pending"
    assert journeys(local_stack, email) == []


def test_consent_on_a_second_platform_subscribes_once(local_stack, mailchimp):
    email = "katherine@example.org"
    run_onboarding(local_stack, joined(email, consent=False, platform=Platform.SLACK))
    run_onboarding(local_stack, joined(email, consent=True, platform=Platform.DISCOURSE))
    run_onboarding(local_stack, joined(email, consent=True, platform=Platform.DISCORD))

    assert status(mailchimp, email) == "subscribed"
    assert len(journeys(local_stack, email)) == 1
    assert sorted(members(local_stack).get(email_key(email)).platforms) == ["discord", "discourse", "slack"]


def test_forgotten_email_is_recorded_not_retried(local_stack, mailchimp):
    email = "gone@example.org"
    local_stack.mailchimp.seed_member(LIST, email, "subscribed")
    mailchimp.lists.delete_list_member_permanent(LIST, email)

    answer = run_onboarding(local_stack, joined(email, consent=True))

    assert answer == {"batchItemFailures": []}
    assert dead_letters(local_stack) == []
    assert any("Forgotten Email" in detail for detail in _details(local_stack, email))


@pytest.mark.parametrize(
    "email",
    [
        "jöhn@example.org",  # mail systems deliver it (RFC 6531), Mailchimp cannot process UTF-8 before the @
        "someone@example.invalid",
        "fakeuser@example.org",
    ],
)
def test_an_address_mailchimp_refuses_as_fake_is_recorded_not_retried(local_stack, mailchimp, email):
    assert check_email(email) == email  # intake accepts it: only Mailchimp can say no

    answer = run_onboarding(local_stack, joined(email, consent=True))

    assert answer == {"batchItemFailures": []}
    assert dead_letters(local_stack) == []
    assert (Step.MAILCHIMP_UPSERT, "refused") in trace_steps(local_stack, email)
    assert any("looks fake or invalid" in detail for detail in _details(local_stack, email))
    assert members(local_stack).get(email_key(email)).mailchimp_status == "refused: Invalid Resource"
    assert mailchimp.lists.get_list_members_info(LIST)["total_items"] == 0
    assert journeys(local_stack, email) == []


def test_member_without_email_is_stored_but_not_sent_to_mailchimp(local_stack):
    event = joined(None, consent=True, platform=Platform.DISCORD, user_id="118773660214398")
    run_onboarding(local_stack, event)

    assert members(local_stack).get(event.event.identity.key) is not None
    assert sum(local_stack.mailchimp.state.request_counts.values()) == 0


def test_discord_member_in_screening_who_signs_up_is_asked_to_opt_in_only_once_they_pass(local_stack, mailchimp):
    email = "nova@example.org"
    identity = MemberIdentity(platform=Platform.DISCORD, workspace="1187736602143985664", user_id="1187736602143900777")

    def queued(key: str, event) -> QueuedEvent:
        return QueuedEvent(idempotency_key=f"discord:g:{key}", correlation_id=f"c-{key}", source="discord", event=event)

    join = MemberJoined(identity=identity, username="nova", joined_at=JOINED, screening_pending=True)
    signup = MemberJoined(
        identity=identity, email=email, joined_at=JOINED, marketing_consent=True, email_verified=False
    )
    passed = MemberScreeningPassed(identity=identity, joined_at=JOINED, passed_at=JOINED + timedelta(minutes=2))

    run_onboarding(local_stack, queued("join", join))
    run_onboarding(local_stack, queued("signup", signup))
    assert sum(local_stack.mailchimp.state.request_counts.values()) == 0  # held: stored, nothing sent
    link = members(local_stack).link(identity.key)
    assert link.in_screening and link.member_id == email_key(email)

    assert run_onboarding(local_stack, queued("passed", passed)) == {"batchItemFailures": []}

    assert status(mailchimp, email) == "pending"  # Mailchimp's confirmation email proves the address first
    assert journeys(local_stack, email) == []
    assert not members(local_stack).link(identity.key).in_screening
    assert (Step.SCREENING_PASSED, "ok") in trace_steps(local_stack, email)


def test_mailchimp_failure_is_retried_then_parked_with_its_reason(local_stack):
    email = "flaky@example.org"
    local_stack.mailchimp.set_faults(fail_emails={email: 500})
    event = joined(email, consent=True)

    first = run_onboarding(local_stack, event, receive_count=1)
    assert len(first["batchItemFailures"]) == 1  # SQS will redeliver it
    assert dead_letters(local_stack) == []

    last = run_onboarding(local_stack, event, receive_count=max_receive_count(local_stack))
    assert last == {"batchItemFailures": []}  # parked by us, so SQS deletes it from the source queue
    [parked] = dead_letters(local_stack)
    reason = parked["MessageAttributes"]["failure_reason"]["StringValue"]
    assert "500" in reason
    assert parked["MessageAttributes"]["correlation_id"]["StringValue"] == event.correlation_id
    assert (Step.DEAD_LETTERED, "failed") in trace_steps(local_stack, email)


def test_rate_limited_mailchimp_reports_a_batch_item_failure(local_stack):
    local_stack.mailchimp.set_faults(rate_429=1.0)
    good = joined("margaret@example.org", consent=True)

    answer = run_onboarding(local_stack, good, receive_count=1)

    assert len(answer["batchItemFailures"]) == 1
    local_stack.mailchimp.set_faults()
    retried = run_onboarding(local_stack, good)  # the redelivery succeeds and is not a duplicate
    assert retried == {"batchItemFailures": []}
    assert len(journeys(local_stack, "margaret@example.org")) == 1


def test_activity_marks_member_active_and_the_drip_skips_them(local_stack, mailchimp):
    quiet, chatty = joined("quiet@example.org", consent=True), joined("chatty@example.org", consent=True)
    run_onboarding(local_stack, quiet, chatty)
    run_onboarding(local_stack, active(chatty.event.identity))

    assert members(local_stack).get(email_key("chatty@example.org")).activated_at is not None
    start = members(local_stack).get(email_key("quiet@example.org")).drip_started_at
    report = local_stack.fire_schedule("DripSchedule", start + timedelta(days=1, hours=1))
    assert report["sent"] >= 1 and report["stopped_active"] == 0

    def tags(email):
        return {tag["name"] for tag in mailchimp.lists.get_list_member(LIST, email)["tags"]}

    assert "onboarding-day-1" in tags("quiet@example.org")
    assert "onboarding-day-1" not in tags("chatty@example.org")

    local_stack.fire_schedule("DripSchedule", start + timedelta(days=1, hours=2))
    assert members(local_stack).get(email_key("quiet@example.org")).drip_steps_sent == 1  # no step twice
    local_stack.fire_schedule("DripSchedule", start + timedelta(days=3, hours=1))
    assert "onboarding-day-3" in tags("quiet@example.org")
    assert members(local_stack).get(email_key("quiet@example.org")).drip_steps_sent == 2


def max_receive_count(local_stack):
    return int(local_stack.function("OnboardingFunction").spec.environment["MAX_RECEIVE_COUNT"])


def _details(local_stack, email):
    records = DynamoTraceStore(local_stack.table_name("TraceTable")).query(email_subject(email))
    return [r.detail for r in records]


def test_account_level_refusal_is_retried_then_parked_never_dropped(local_stack):
    email = "locked.out@example.org"
    local_stack.mailchimp.set_faults(fail_emails={email: 401})  # as with a wrong or revoked API key
    event = joined(email, consent=True)

    assert len(run_onboarding(local_stack, event, receive_count=1)["batchItemFailures"]) == 1
    run_onboarding(local_stack, event, receive_count=max_receive_count(local_stack))

    [parked] = dead_letters(local_stack)
    reason = parked["MessageAttributes"]["failure_reason"]["StringValue"]
    assert "AccountProblem" in reason and "401" in reason
    assert email not in reason  # no personal data in the DLQ
    assert all(email not in detail for detail in _details(local_stack, email))


def test_journey_being_started_elsewhere_is_retried_not_skipped(local_stack, mailchimp):
    email = "racing@example.org"
    event = joined(email, consent=True)
    store = members(local_stack)
    store.record_join(
        MemberJoin(email_key(email), event.event.identity.key, "discourse", JOINED, "other-invocation", email)
    )
    assert store.claim_journey(email_key(email), datetime.now(UTC), timedelta(minutes=2))

    assert len(run_onboarding(local_stack, event, receive_count=1)["batchItemFailures"]) == 1
    assert journeys(local_stack, email) == []

    store.release_journey_claim(email_key(email))  # the other invocation crashed; its lease ran out
    assert run_onboarding(local_stack, event) == {"batchItemFailures": []}
    assert len(journeys(local_stack, email)) == 1


def test_consent_with_an_unverified_address_gets_double_opt_in_then_the_welcome_once_confirmed(local_stack, mailchimp):
    email = "unconfirmed@example.org"
    event = joined(email, consent=True)
    unverified = event.model_copy(update={"event": event.event.model_copy(update={"email_verified": False})})

    run_onboarding(local_stack, unverified)
    assert status(mailchimp, email) == "pending"
    assert journeys(local_stack, email) == []

    now = datetime.now(UTC)
    local_stack.fire_schedule("DripSchedule", now + timedelta(hours=2))  # not confirmed yet: keep waiting
    assert journeys(local_stack, email) == []

    local_stack.mailchimp.confirm_opt_in(LIST, email)  # the member clicks the link in Mailchimp's email
    report = local_stack.fire_schedule("DripSchedule", now + timedelta(hours=4))
    assert report["opt_ins_confirmed"] == 1
    assert len(journeys(local_stack, email)) == 1
    assert members(local_stack).get(email_key(email)).drip_due_at is not None

    local_stack.fire_schedule("DripSchedule", now + timedelta(hours=6))
    assert len(journeys(local_stack, email)) == 1  # confirmed members are welcomed once


def test_pending_member_who_never_confirms_is_let_go(local_stack, mailchimp):
    email = "never.confirms@example.org"
    event = joined(email, consent=True)
    run_onboarding(
        local_stack, event.model_copy(update={"event": event.event.model_copy(update={"email_verified": False})})
    )

    report = local_stack.fire_schedule("DripSchedule", datetime.now(UTC) + timedelta(days=31))

    assert report["opt_ins_given_up"] >= 1 and journeys(local_stack, email) == []
    assert any("not confirmed within 30 days" in detail for detail in _details(local_stack, email))


def test_drip_run_with_a_missing_audience_leaves_every_member_due(local_stack):
    email = "patient@example.org"
    run_onboarding(local_stack, joined(email, consent=True))
    deps = replace(container().drip, list_id="no-such-list")

    report = send_due_drip_steps(datetime.now(UTC) + timedelta(days=2), "run-1", deps)

    assert report.deferred and report.sent == 0
    member = members(local_stack).get(email_key(email))
    assert member.drip_due_at is not None and member.drip_steps_sent == 0


def test_drip_step_is_never_sent_to_a_member_who_became_active(local_stack):
    email = "late.chatter@example.org"
    run_onboarding(local_stack, joined(email, consent=True))
    store = members(local_stack)
    due = store.get(email_key(email))
    work = DueWork("drip", due.member_id, due.drip_due_at)
    store.mark_active(email_key(email), JOINED + timedelta(hours=20))  # after the drip read the index

    due_work = DynamoDueWorkIndex(local_stack.table_name("MembersTable"))
    assert not due_work.claim(work, next_due=JOINED + timedelta(days=3), progress={"drip_steps_sent": 0})


def test_archived_former_unsubscriber_who_consents_again_gets_opt_in_not_a_resubscribe(local_stack, mailchimp):
    email = "came.back@example.org"
    local_stack.mailchimp.seed_member(LIST, email, "unsubscribed")
    mailchimp.lists.delete_list_member(LIST, email)  # archived in Mailchimp since

    run_onboarding(local_stack, joined(email, consent=False, platform=Platform.SLACK))
    run_onboarding(local_stack, joined(email, consent=True, platform=Platform.DISCOURSE))

    assert status(mailchimp, email) == "pending"  # Mailchimp asks them to confirm; never a silent resubscribe
    assert journeys(local_stack, email) == []


def test_a_parked_retryable_event_goes_back_once_mailchimp_answers_and_refused_ones_stay(local_stack):
    email = "comes.back@example.org"
    local_stack.mailchimp.set_faults(fail_emails={email: 500})
    event = joined(email, consent=True)
    run_onboarding(local_stack, event, receive_count=max_receive_count(local_stack))  # its last attempt: parked
    sqs, dlq = local_stack.client("sqs"), local_stack.queue_url("MemberEventsDeadLetterQueue")
    sqs.send_message(  # parked for a reason that will not pass: an operator must look at it
        QueueUrl=dlq,
        MessageBody='{"not": "an envelope"}',
        MessageAttributes={"retryable": {"DataType": "String", "StringValue": "false"}},
    )

    local_stack.mailchimp.set_faults(rate_500=1.0)  # Mailchimp is still down: nothing moves
    still_down = local_stack.fire_schedule("DeadLetterRedriveSchedule")
    assert still_down["service_available"] is False and still_down["redriven"] == 0

    local_stack.mailchimp.set_faults()  # Mailchimp answers again
    recovered = local_stack.fire_schedule("DeadLetterRedriveSchedule")
    assert recovered["redriven"] == 1 and recovered["kept"] == 1

    [back] = receive_all(local_stack, "MemberEventsQueue", 1)
    assert back["MessageAttributes"]["auto_redrives"]["StringValue"] == "1"
    records = [lambda_sqs_record(back, local_stack.queue_arn("MemberEventsQueue"))]
    assert local_stack.invoke("OnboardingFunction", {"Records": records}) == {"batchItemFailures": []}
    assert len(journeys(local_stack, email)) == 1


def not_in_audience(mailchimp, email: str) -> bool:
    try:
        mailchimp.lists.get_list_member(LIST, email)
    except ApiClientError as error:
        return error.status_code == 404
    return False


def _approval_flow(email: str, user_id: str):
    signup = joined(email, consent=True, user_id=user_id, key=f"discourse:w1:user_created:{user_id}")
    signup = signup.model_copy(
        update={"event": signup.event.model_copy(update={"email_verified": False, "awaiting_approval": True})}
    )
    approved = joined(email, consent=True, user_id=user_id, key=f"discourse:w1:user_approved:{user_id}")
    approved = approved.model_copy(update={"event": approved.event.model_copy(update={"email_verified": False})})
    return signup, approved


def test_forum_member_awaiting_approval_is_onboarded_at_approval_with_the_address_confirmed_meanwhile(
    local_stack, mailchimp
):
    email = "approved.later@example.org"
    signup, approved = _approval_flow(email, "9101")

    assert run_onboarding(local_stack, signup) == {"batchItemFailures": []}
    assert not_in_audience(mailchimp, email)  # stored, not onboarded
    run_onboarding(local_stack, verified(signup.event.identity, email, consent=True))
    assert not_in_audience(mailchimp, email)
    run_onboarding(local_stack, approved)

    assert status(mailchimp, email) == "subscribed"
    assert len(journeys(local_stack, email)) == 1
    assert members(local_stack).get(email_key(email)).verified_identities == [signup.event.identity.key]


def test_consent_given_later_by_a_confirmed_member_subscribes_through_the_handler(local_stack, mailchimp):
    email = "later.consent@example.org"
    join = joined(email, consent=False, user_id="9102")
    join = join.model_copy(update={"event": join.event.model_copy(update={"email_verified": False})})
    run_onboarding(local_stack, join)
    run_onboarding(local_stack, verified(join.event.identity, email, consent=False))
    assert status(mailchimp, email) == "transactional"

    run_onboarding(local_stack, consent_given(join.event.identity, email))

    assert status(mailchimp, email) == "subscribed"
    assert len(journeys(local_stack, email)) == 1


def test_with_time_for_one_event_the_batch_tries_the_most_delivered_first_and_hands_back_the_rest(local_stack):
    from memberflow_local.runtime import LambdaContext

    fresh, handed_back_before, older = (joined(f"order.{n}@example.org", consent=False) for n in range(3))
    sqs, url = local_stack.client("sqs"), local_stack.queue_url("MemberEventsQueue")
    for queued in (fresh, handed_back_before, older):
        sqs.send_message(QueueUrl=url, MessageBody=queued.model_dump_json())
    messages = receive_all(local_stack, "MemberEventsQueue", 3)
    records = {}
    for message in messages:
        record = lambda_sqs_record(message, local_stack.queue_arn("MemberEventsQueue"))
        records[message["Body"]] = record
    for queued, count in ((fresh, 1), (handed_back_before, 4), (older, 2)):
        records[queued.model_dump_json()]["attributes"]["ApproximateReceiveCount"] = str(count)
    runtime = local_stack.function("OnboardingFunction")
    worst_case = container().onboarding_worst_case_ms
    started: list[float] = []

    class TimeForOneEvent(LambdaContext):
        """An invocation whose clock starts at its first look and runs a thousand times fast: after the first
        event no time is left."""

        def get_remaining_time_in_millis(self) -> int:
            started[:] = started or [time.monotonic()]
            return max(0, worst_case + 500 - int((time.monotonic() - started[0]) * 1_000_000))

    context = TimeForOneEvent(runtime.spec.function_name, 256, runtime.spec.arn, runtime.spec.timeout)
    answer = runtime.invoke(
        {"Records": [records[q.model_dump_json()] for q in (fresh, handed_back_before, older)]}, context
    )

    handed_back = {item["itemIdentifier"] for item in answer["batchItemFailures"]}
    ids = {q: records[q.model_dump_json()]["messageId"] for q in (fresh, handed_back_before, older)}
    assert handed_back == {ids[fresh], ids[older]}  # untried, without spending an attempt
    assert local_stack.mailchimp.state.get_member(LIST, "order.1@example.org") is not None
    assert local_stack.mailchimp.state.get_member(LIST, "order.0@example.org") is None
    assert dead_letters(local_stack) == []


def test_a_batch_of_fresh_joins_goes_to_mailchimp_in_one_batch_subscribe_and_one_call_per_tag(local_stack, mailchimp):
    wave = [joined(f"wave.{n}@example.org", consent=n % 10 < 7, user_id=f"wave{n}") for n in range(20)]
    redelivered = joined("wave.0@example.org", consent=True, user_id="wave0")  # the same join, delivered twice
    from memberflow.runtime.container import reset

    reset()  # a cold container: no segment ids cached from before the sandbox's reset
    local_stack.mailchimp.state.calls.clear()

    answer = run_onboarding(local_stack, *wave, redelivered)

    assert answer == {"batchItemFailures": []}
    calls = local_stack.mailchimp.state.calls
    assert calls["POST /lists/{list_id}"] == 1  # one batch subscribe for the 20 members
    assert calls["POST /lists/{list_id}/segments/{segment_id}"] == 2  # platform and cohort tags, by static segment
    assert calls["PUT /lists/{list_id}/members/{subscriber_hash}"] == 0  # no single upsert
    assert calls["POST /lists/{list_id}/members/{subscriber_hash}/tags"] == 0
    for n in range(20):
        assert status(mailchimp, f"wave.{n}@example.org") == ("subscribed" if n % 10 < 7 else "transactional")
        assert len(journeys(local_stack, f"wave.{n}@example.org")) == (1 if n % 10 < 7 else 0)  # once each
    assert dead_letters(local_stack) == []
