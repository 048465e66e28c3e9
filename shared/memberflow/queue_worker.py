"""What happens to one queued message when its work fails: back to the queue with a delay, or, once it has been
tried often enough (or can never succeed), parked in the dead-letter queue together with the reason."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger
from pydantic import ValidationError

from memberflow.models import QueuedEvent
from memberflow.retry import PermanentFailure, RetryLater, TransientFailure
from memberflow.trace import Outcome, Step, StepRecorder, TraceRecorder

logger = Logger()

MAX_VISIBILITY_SECONDS = 11 * 3600
"""SQS caps a message's total invisibility at 12 hours from receipt; a longer request is rejected, not clamped."""
MAX_BACKOFF_SECONDS = 900


@dataclass(frozen=True)
class RedeliveryPolicy:
    queue_url: str
    dead_letter_queue_url: str
    max_receive_count: int
    retry_base_seconds: int

    def backoff(self, receive_count: int) -> int:
        return min(MAX_BACKOFF_SECONDS, self.retry_base_seconds * 2 ** max(0, receive_count - 1))


class WillRetry(Exception):
    """Raised so the batch processor reports the message as a batch item failure; SQS redelivers it."""


@dataclass(frozen=True)
class QueuedMessage:
    """The parts of an SQS record the policy needs (built from the Lambda SQS event record)."""

    message_id: str
    receipt_handle: str
    body: str
    receive_count: int

    @classmethod
    def from_lambda_record(cls, record: Mapping[str, Any]) -> QueuedMessage:
        return cls(
            message_id=record["messageId"],
            receipt_handle=record["receiptHandle"],
            body=record["body"],
            receive_count=int(record.get("attributes", {}).get("ApproximateReceiveCount", 1)),
        )


def process_message(
    message: QueuedMessage,
    work: Callable[[QueuedEvent], Any],
    policy: RedeliveryPolicy,
    trace: TraceRecorder,
    sqs: Any,
    *,
    enough_time: bool = True,
) -> Any:
    """Run `work` for one message. Without `enough_time` left in the invocation, the message is handed straight
    back to the queue: a Lambda timeout would return the whole batch and count an attempt against every message."""
    if not enough_time:
        if message.receive_count >= policy.max_receive_count:
            # SQS would move it to the DLQ on its next receive, without a reason: park it ourselves.
            _park(message, "not processed: no time left in the invocation at its last attempt", "", "", policy, sqs)
            return None
        sqs.change_message_visibility(
            QueueUrl=policy.queue_url, ReceiptHandle=message.receipt_handle, VisibilityTimeout=0
        )
        raise WillRetry("not enough time left in this invocation")
    try:
        queued = QueuedEvent.model_validate_json(message.body)
    except ValidationError as error:
        reason = f"invalid message: {error.error_count()} problem(s), first: {_first_problem(error)}"
        _park(message, reason, "", "", policy, sqs)
        return None

    logger.set_correlation_id(queued.correlation_id)
    step = StepRecorder.for_event(trace, queued)
    try:
        return work(queued)
    except PermanentFailure as refusal:
        reason = f"{type(refusal).__name__}: {refusal}"
        _park(message, reason, queued.correlation_id, queued.idempotency_key, policy, sqs)
        step(Step.DEAD_LETTERED, Outcome.REFUSED, f"parked without retrying, the service refused it for good: {reason}")
        return None
    except RetryLater as wait:
        delay = min(int(wait.delay_seconds) + 1, MAX_VISIBILITY_SECONDS)
        failure: Exception = wait
    except (TransientFailure, Exception) as error:  # noqa: B014 - an unexpected bug is retried like a transient fault
        delay = policy.backoff(message.receive_count)
        failure = error

    reason = f"{type(failure).__name__}: {failure}"
    if message.receive_count >= policy.max_receive_count:
        _park(message, reason, queued.correlation_id, queued.idempotency_key, policy, sqs)
        step(Step.DEAD_LETTERED, Outcome.FAILED, f"parked after {message.receive_count} attempts: {reason}")
        return None
    sqs.change_message_visibility(
        QueueUrl=policy.queue_url, ReceiptHandle=message.receipt_handle, VisibilityTimeout=delay
    )
    step(Step.RETRY_SCHEDULED, Outcome.FAILED, f"attempt {message.receive_count} failed ({reason}); retry in {delay}s")
    logger.warning("retry scheduled", extra={"reason": reason, "delay_seconds": delay})
    raise WillRetry(reason) from failure


def _park(
    message: QueuedMessage,
    reason: str,
    correlation_id: str,
    idempotency_key: str,
    policy: RedeliveryPolicy,
    sqs: Any,
) -> None:
    attributes = {
        "failure_reason": reason[:1000],
        "source_message_id": message.message_id,
        "receive_count": str(message.receive_count),
        "correlation_id": correlation_id or "unknown",
        "idempotency_key": idempotency_key or "unknown",
    }
    sqs.send_message(
        QueueUrl=policy.dead_letter_queue_url,
        MessageBody=message.body,
        MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
    )
    logger.error("message parked in dead-letter queue", extra={"reason": reason, "message_id": message.message_id})


def _first_problem(error: ValidationError) -> str:
    first = error.errors()[0]
    return f"{'.'.join(map(str, first['loc'])) or 'body'}: {first['msg']}"
