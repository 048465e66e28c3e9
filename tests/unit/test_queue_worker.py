"""Failed work goes back to the queue with a delay, and is parked in the DLQ with its reason at the last attempt."""

from datetime import UTC, datetime

import pytest

from memberflow.errors import AddressThrottled, PermanentRefusal, RateLimited, RetryLater, Transient
from memberflow.events import CATALOG, MemberJoined
from memberflow.models import MemberIdentity, Platform
from memberflow.pipeline.envelope import QueuedEvent
from memberflow.pipeline.health import ServiceHealth
from memberflow.pipeline.policy import RetryPolicy
from memberflow.pipeline.worker import QueuedMessage, RetryNotSet, WillRetry, Worker
from memberflow.trace import Step
from support.fakes import FakeWorkQueue, MemoryTrace

POLICY = RetryPolicy(max_attempts=3, retry_base_seconds=30, max_receives=3)


def message(receive_count: int, message_id: str = "m-1") -> QueuedMessage:
    event = MemberJoined(
        identity=MemberIdentity(platform=Platform.SLACK, workspace="T1", user_id="U1"),
        email="sam@example.org",
        joined_at=datetime(2026, 11, 1, tzinfo=UTC),
    )
    key = "slack:T1:Ev1" if message_id == "m-1" else f"slack:T1:{message_id}"
    queued = QueuedEvent(idempotency_key=key, correlation_id="corr-9", source="slack", event=event)
    return QueuedMessage(message_id, "rh-1", queued.model_dump_json(), receive_count)


def failing(error: Exception):
    def work(_):
        raise error

    return work


def worker(work, queue=None, trace=None, policy=POLICY, health=None) -> Worker:
    handlers = {"member_joined": work, "member_active": work}
    return Worker(
        CATALOG, handlers, queue or FakeWorkQueue(), trace or MemoryTrace(), policy, health or ServiceHealth()
    )


def test_transient_failure_is_retried_with_exponential_backoff():
    sqs, trace = FakeWorkQueue(), MemoryTrace()
    with pytest.raises(WillRetry):
        worker(failing(Transient("Mailchimp 500")), sqs, trace).process(message(2))
    assert sqs.visibility == [60] and sqs.parked == []
    assert trace.steps()[0][0] is Step.RETRY_SCHEDULED


def test_retry_after_sets_the_message_visibility():
    sqs = FakeWorkQueue()
    with pytest.raises(WillRetry):
        worker(failing(RetryLater("429", 600)), sqs).process(message(1))
    assert sqs.visibility == [601]


def test_last_attempt_is_parked_with_reason_and_correlation_id():
    sqs, trace = FakeWorkQueue(), MemoryTrace()
    assert worker(failing(Transient("Mailchimp 500")), sqs, trace).process(message(3)) is None
    [parked] = sqs.parked
    assert "Mailchimp 500" in parked["failure_reason"]
    assert parked["correlation_id"] == "corr-9" and parked["idempotency_key"] == "slack:T1:Ev1"
    assert trace.steps()[0][0] is Step.DEAD_LETTERED


def test_unreadable_message_is_parked_at_once():
    sqs = FakeWorkQueue()
    worker(failing(AssertionError()), sqs).process(QueuedMessage("m-2", "rh", '{"nope": 1}', 1))
    assert sqs.parked and sqs.parked[0]["failure_reason"].startswith("invalid message")


def test_unreadable_message_is_parked_with_the_correlation_id_and_key_its_attributes_carry(caplog):
    sqs = FakeWorkQueue()
    carried = {"correlation_id": "req-42", "idempotency_key": "slack:T1:Ev1", "event_type": "member_joined"}

    with caplog.at_level("ERROR"):
        worker(failing(AssertionError()), sqs).process(QueuedMessage("m-2", "rh", '{"nope": 1}', 1, carried))

    [parked] = sqs.parked
    assert parked["failure_kind"] == "invalid"
    assert parked["correlation_id"] == "req-42" and parked["idempotency_key"] == "slack:T1:Ev1"
    [logged] = [r for r in caplog.records if r.getMessage() == "message parked"]
    assert logged.correlation_id == "req-42"


def test_unreadable_message_without_attributes_is_parked_as_unknown_and_long_ones_are_cut():
    sqs = FakeWorkQueue()
    long_id = {"correlation_id": "c" * 5000}

    worker(failing(AssertionError()), sqs).process(QueuedMessage("m-2", "rh", '{"nope": 1}', 1))
    worker(failing(AssertionError()), sqs).process(QueuedMessage("m-3", "rh", '{"nope": 1}', 1, long_id))

    bare, cut = sqs.parked
    assert bare["correlation_id"] == "unknown" and bare["idempotency_key"] == "unknown"
    assert cut["correlation_id"] == "c" * 512 and cut["idempotency_key"] == "unknown"


def test_unknown_event_type_is_parked_at_once_with_its_name():
    sqs = FakeWorkQueue()
    body = message(1).body.replace('"member_joined"', '"member_teleported"')
    worker(failing(AssertionError()), sqs).process(QueuedMessage("m-3", "rh", body, 1))
    assert "member_teleported" in sqs.parked[0]["failure_reason"] and sqs.parked[0]["retryable"] == "false"


def test_success_returns_the_work_result():
    assert worker(lambda queued: {"ok": queued.source}).process(message(1)) == {"ok": "slack"}


def test_permanent_refusal_is_parked_at_once_without_retrying():
    sqs, trace = FakeWorkQueue(), MemoryTrace()

    worker(failing(PermanentRefusal("Invalid Resource", "bad", 400)), sqs, trace).process(message(1))

    assert sqs.visibility == [] and "Invalid Resource" in sqs.parked[0]["failure_reason"]
    assert trace.steps()[0][0] is Step.DEAD_LETTERED


def test_without_enough_time_left_the_message_goes_straight_back_untouched():
    sqs = FakeWorkQueue()
    with pytest.raises(WillRetry):
        worker(failing(AssertionError("must not run")), sqs).process(message(1), enough_time=False)
    assert sqs.visibility == [0] and sqs.parked == []


def test_no_time_left_at_the_last_attempt_parks_with_a_reason_instead_of_a_silent_redrive():
    sqs = FakeWorkQueue()

    worker(failing(AssertionError("must not run")), sqs).process(message(3), enough_time=False)

    assert sqs.visibility == [] and "no time left" in sqs.parked[0]["failure_reason"]


def test_hand_backs_for_lack_of_time_spend_neither_attempts_nor_the_outage_allowance():
    sqs, trace = FakeWorkQueue(), MemoryTrace()
    policy = RetryPolicy(max_attempts=2, retry_base_seconds=30, max_deferrals=3, max_receives=50)
    for delivery in range(1, 11):  # handed back ten times: more than max_deferrals, but nothing was tried
        with pytest.raises(WillRetry):
            worker(failing(AssertionError("must not run")), sqs, trace, policy).process(
                message(delivery), enough_time=False
            )
    assert sqs.parked == [] and sqs.visibility == [0] * 10 and trace.steps() == []

    with pytest.raises(WillRetry):  # the first try fails: it is the member's first attempt, not their last
        worker(failing(Transient("Mailchimp 500")), sqs, trace, policy).process(message(11))
    assert sqs.parked == [] and sqs.visibility[-1] == 30
    assert "attempt 1 failed" in trace.details()[-1]


def test_untried_at_the_queues_last_delivery_is_parked_to_be_redriven_and_tried():
    sqs, trace = FakeWorkQueue(), MemoryTrace()

    worker(failing(AssertionError("must not run")), sqs, trace).process(message(3), enough_time=False)

    [parked] = sqs.parked
    assert parked["failure_kind"] == "untried" and parked["retryable"] == "true"
    assert parked["correlation_id"] == "corr-9" and "no time left" in parked["failure_reason"]
    assert trace.steps()[0][0] is Step.DEAD_LETTERED


def test_rate_limits_never_spend_the_members_attempts():
    sqs = FakeWorkQueue()
    policy = RetryPolicy(max_attempts=2, retry_base_seconds=1, max_receives=50)
    for delivery in range(1, 11):
        with pytest.raises(WillRetry):
            worker(failing(RateLimited("Mailchimp 429")), sqs, policy=policy).process(message(delivery))
    assert sqs.parked == [] and len(sqs.visibility) == 10


def test_a_failing_service_backs_off_the_whole_consumer_without_spending_attempts():
    sqs, health = FakeWorkQueue(), ServiceHealth(threshold=3, open_seconds=30)
    policy = RetryPolicy(max_attempts=3, retry_base_seconds=1, max_receives=50)
    calls = []

    def down(queued):
        calls.append(queued)
        raise Transient("Mailchimp 500")

    for n in range(10):  # ten members, each delivered a first time while the service is down
        with pytest.raises(WillRetry):
            worker(down, sqs, policy=policy, health=health).process(message(1, f"m-{n}"))
    assert health.failing
    assert len(calls) == 3  # after three failures in a row nobody calls the service until the back-off passed
    for n in range(10):  # and their redeliveries spend no attempt either: no one is parked
        with pytest.raises(WillRetry):
            worker(down, sqs, policy=policy, health=health).process(message(5, f"m-{n}"))
    assert sqs.parked == []


def test_one_member_failing_again_and_again_does_not_open_the_breaker():
    health = ServiceHealth(threshold=3)
    for _ in range(5):
        health.record(Transient("Mailchimp 500 for this address"), "slack:T1:Ev1")
    assert not health.failing


def test_addresses_throttled_one_after_another_do_not_open_the_breaker():
    # A burst of bot sign-ups is when Mailchimp throttles addresses: the members waiting must not stop the others.
    sqs, health = FakeWorkQueue(), ServiceHealth(threshold=3)
    for n in range(5):
        with pytest.raises(WillRetry):
            throttled = failing(AddressThrottled("Mailchimp Invalid Resource: signup throttled", 6 * 3600))
            worker(throttled, sqs, health=health).process(message(1, f"m-{n}"))
    assert not health.failing and health.should_try()
    assert sqs.parked == [] and all(delay >= 6 * 3600 for delay in sqs.visibility)


def test_a_failure_of_one_member_while_the_service_answers_spends_that_members_attempts():
    sqs, health = FakeWorkQueue(), ServiceHealth(threshold=3)
    ok = worker(lambda queued: {"result": "onboarded"}, sqs, health=health)
    ok.process(message(1, "m-ok"))
    assert worker(failing(Transient("Mailchimp 500")), sqs, health=health).process(message(3, "m-bad")) is None
    assert "after 3 attempts" in sqs.parked[0]["failure_reason"] and sqs.parked[0]["retryable"] == "true"


def test_the_breaker_closes_after_a_successful_probe():
    now = [0.0]
    health = ServiceHealth(threshold=2, open_seconds=10, clock=lambda: now[0])
    for key in ("a", "b"):
        health.record(Transient("500"), key)
    assert health.failing and not health.should_try()
    now[0] = 11
    assert health.should_try()  # one probe once the back-off has passed
    health.record(None)
    assert not health.failing and health.should_try()


def test_a_retry_delay_that_cannot_be_set_is_logged_with_its_reason(caplog):
    class UnreachableQueue(FakeWorkQueue):
        def retry_later(self, message, delay_seconds):
            raise RuntimeError("SQS unreachable")

    with caplog.at_level("ERROR"), pytest.raises(RetryNotSet, match="Transient: Mailchimp 500") as raised:
        worker(failing(Transient("Mailchimp 500")), UnreachableQueue()).process(message(1))

    assert str(raised.value.__cause__) == "SQS unreachable"
    [record] = [r for r in caplog.records if r.levelname == "ERROR"]  # said once, with both reasons
    assert "retry delay not set" in record.getMessage()
    assert record.reason == "Transient: Mailchimp 500" and record.error_type == "RuntimeError"


def test_a_failure_before_any_retry_or_park_is_decided_is_logged_and_the_message_reported_failed(caplog):
    class UnreadableDeferrals(FakeWorkQueue):
        def deferrals(self, message):
            raise RuntimeError("DynamoDB unreachable")

    handled = []
    with caplog.at_level("ERROR"), pytest.raises(RuntimeError, match="DynamoDB unreachable"):
        worker(handled.append, UnreadableDeferrals()).process(message(2))

    assert handled == []
    [record] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert "outside its retry path" in record.getMessage() and record.error_type == "RuntimeError"
    assert record.exc_info is not None  # the traceback says where


def test_a_scheduled_retry_is_not_reported_as_a_failure_outside_the_retry_path(caplog):
    with caplog.at_level("ERROR"), pytest.raises(WillRetry):
        worker(failing(Transient("Mailchimp 500"))).process(message(1))

    assert [r for r in caplog.records if r.levelname == "ERROR"] == []


def test_an_unexpected_error_is_retried_with_its_traceback_and_a_service_failure_without(caplog):
    with caplog.at_level("WARNING"), pytest.raises(WillRetry):
        worker(failing(KeyError("member_id"))).process(message(1))
    with caplog.at_level("WARNING"), pytest.raises(WillRetry):
        worker(failing(Transient("Mailchimp 500"))).process(message(1, "m-2"))

    unexpected, transient = [r for r in caplog.records if r.getMessage() == "retry scheduled"]
    assert unexpected.reason == "KeyError: 'member_id'" and unexpected.exc_info[0] is KeyError
    assert transient.exc_info is None  # a named failure: its reason says it all
