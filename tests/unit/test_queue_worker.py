"""Failed work goes back to the queue with a delay, and is parked in the DLQ with its reason at the last attempt."""

from datetime import UTC, datetime

import pytest

from memberflow.models import MemberIdentity, MemberJoined, Platform, QueuedEvent
from memberflow.queue_worker import QueuedMessage, RedeliveryPolicy, WillRetry, process_message
from memberflow.retry import PermanentFailure, RetryLater, TransientFailure
from memberflow.trace import MemoryTrace, Step

POLICY = RedeliveryPolicy("queue-url", "dlq-url", max_receive_count=3, retry_base_seconds=30)


class FakeSqs:
    def __init__(self):
        self.visibility: list[int] = []
        self.parked: list[dict] = []

    def change_message_visibility(self, QueueUrl, ReceiptHandle, VisibilityTimeout):
        assert QueueUrl == "queue-url"
        self.visibility.append(VisibilityTimeout)

    def send_message(self, QueueUrl, MessageBody, MessageAttributes):
        assert QueueUrl == "dlq-url"
        self.parked.append({"body": MessageBody, **{k: v["StringValue"] for k, v in MessageAttributes.items()}})


def message(receive_count: int) -> QueuedMessage:
    event = MemberJoined(
        identity=MemberIdentity(platform=Platform.SLACK, workspace="T1", user_id="U1"),
        email="sam@example.org",
        joined_at=datetime(2026, 11, 1, tzinfo=UTC),
    )
    queued = QueuedEvent(idempotency_key="slack:T1:Ev1", correlation_id="corr-9", source="slack", event=event)
    return QueuedMessage("m-1", "rh-1", queued.model_dump_json(), receive_count)


def failing(error: Exception):
    def work(_):
        raise error

    return work


def test_transient_failure_is_retried_with_exponential_backoff():
    sqs, trace = FakeSqs(), MemoryTrace()
    with pytest.raises(WillRetry):
        process_message(message(2), failing(TransientFailure("Mailchimp 500")), POLICY, trace, sqs)
    assert sqs.visibility == [60] and sqs.parked == []
    assert trace.steps()[0][0] is Step.RETRY_SCHEDULED


def test_retry_after_sets_the_message_visibility():
    sqs = FakeSqs()
    with pytest.raises(WillRetry):
        process_message(message(1), failing(RetryLater("429", 600)), POLICY, MemoryTrace(), sqs)
    assert sqs.visibility == [601]


def test_last_attempt_is_parked_with_reason_and_correlation_id():
    sqs, trace = FakeSqs(), MemoryTrace()
    assert process_message(message(3), failing(TransientFailure("Mailchimp 500")), POLICY, trace, sqs) is None
    [parked] = sqs.parked
    assert "Mailchimp 500" in parked["failure_reason"]
    assert parked["correlation_id"] == "corr-9" and parked["idempotency_key"] == "slack:T1:Ev1"
    assert trace.steps()[0][0] is Step.DEAD_LETTERED


def test_unreadable_message_is_parked_at_once():
    sqs = FakeSqs()
    process_message(QueuedMessage("m-2", "rh", '{"nope": 1}', 1), failing(AssertionError()), POLICY, MemoryTrace(), sqs)
    assert sqs.parked and sqs.parked[0]["failure_reason"].startswith("invalid message")


def test_success_returns_the_work_result():
    assert process_message(message(1), lambda queued: {"ok": queued.source}, POLICY, MemoryTrace(), FakeSqs()) == {
        "ok": "slack"
    }


def test_permanent_refusal_is_parked_at_once_without_retrying():
    sqs, trace = FakeSqs(), MemoryTrace()

    process_message(message(1), failing(PermanentFailure("400 Invalid Resource")), POLICY, trace, sqs)

    assert sqs.visibility == [] and "Invalid Resource" in sqs.parked[0]["failure_reason"]
    assert trace.steps()[0][0] is Step.DEAD_LETTERED


def test_without_enough_time_left_the_message_goes_straight_back_untouched():
    sqs = FakeSqs()
    with pytest.raises(WillRetry):
        process_message(
            message(1), failing(AssertionError("must not run")), POLICY, MemoryTrace(), sqs, enough_time=False
        )
    assert sqs.visibility == [0] and sqs.parked == []


def test_no_time_left_at_the_last_attempt_parks_with_a_reason_instead_of_a_silent_redrive():
    sqs = FakeSqs()

    process_message(message(3), failing(AssertionError("must not run")), POLICY, MemoryTrace(), sqs, enough_time=False)

    assert sqs.visibility == [] and "no time left" in sqs.parked[0]["failure_reason"]
