"""The generic queue worker: one message at a time, for every consumer.

Parse the envelope (the catalog types the event), run the consumer's handler for the event type (wrapped by the
caller's idempotency), and when it fails ask the policy what to do: back to the queue with a delay, deferred
because the service is failing, or parked with its reason. The queue calls live behind the `WorkQueue` port.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import ValidationError

from memberflow.errors import InvalidMessage, MemberflowError, PermanentRefusal
from memberflow.events.base import EventCatalog
from memberflow.models import MAX_EVENT_KEY_BYTES
from memberflow.pipeline.envelope import QueuedEvent
from memberflow.pipeline.health import ServiceHealth
from memberflow.pipeline.policy import Delivery, Park, Retry, RetryPolicy, decide, defer, hand_back_untried
from memberflow.trace import Outcome, Step, StepRecorder, TraceRecorder

logger = logging.getLogger(__name__)

Handler = Callable[[QueuedEvent], Any]
"""A consumer's work for one event type; what it returns is stored as the idempotency record's result."""


@dataclass(frozen=True)
class QueuedMessage:
    """The parts of a queue message the worker needs."""

    message_id: str
    receipt_handle: str
    body: str
    receive_count: int
    attributes: Mapping[str, str] = field(default_factory=dict)
    """The message's string attributes (e.g. how often it was redriven from the DLQ)."""


class WorkQueue(Protocol):
    """The queue a consumer reads, and its dead-letter queue."""

    def retry_later(self, message: QueuedMessage, delay_seconds: int) -> None:
        """Make the message visible again after `delay_seconds`."""

    def park(self, message: QueuedMessage, park: Park, correlation_id: str, idempotency_key: str) -> None:
        """Copy the message to the dead-letter queue with its reason (the caller then lets it go)."""

    def deferrals(self, message: QueuedMessage) -> int:
        """How often this message was handed back because the service was failing."""

    def record_deferral(self, message: QueuedMessage) -> None: ...


class WillRetry(Exception):
    """The message goes back to the queue: the batch reports it as failed, so SQS delivers it again."""


class RetryNotSet(Exception):
    """The message's work failed and so did setting its retry delay (logged with both reasons): SQS delivers it
    again when the queue's visibility timeout ends."""


@dataclass
class Worker:
    catalog: EventCatalog
    handlers: Mapping[str, Handler]
    queue: WorkQueue
    trace: TraceRecorder
    policy: RetryPolicy
    health: ServiceHealth
    before: Callable[[QueuedEvent], None] | None = None
    """Called with each message's envelope before its work (e.g. to put its correlation id in the logs)."""

    def process(self, message: QueuedMessage, *, enough_time: bool = True) -> Any:
        """Run the work for one message. Without `enough_time` left in the invocation it goes straight back,
        untried: a Lambda timeout would return the whole batch and count an attempt against every message."""
        try:
            return self._process(message, enough_time)
        except (WillRetry, RetryNotSet):
            raise
        except Exception as failure:
            # Failed before a retry or a park could be decided (e.g. reading the message's deferrals, or parking it):
            # it comes back after the queue's visibility timeout, and this is the only account of why.
            logger.error(
                "message failed outside its retry path: it returns after the queue's visibility timeout",
                extra={"error_type": type(failure).__name__, "error": str(failure)[:300]},
                exc_info=True,
            )
            raise

    def _process(self, message: QueuedMessage, enough_time: bool) -> Any:
        delivery = Delivery(message.receive_count, self.queue.deferrals(message) if message.receive_count > 1 else 0)
        try:
            queued = QueuedEvent.from_json(message.body, self.catalog)
            handler = self.handlers.get(queued.event.type)
            if handler is None:
                raise InvalidMessage(f"no handler for event type {queued.event.type!r} in this consumer")
        except (ValidationError, InvalidMessage, ValueError) as error:
            reason = _unreadable(error)
            # The body cannot say, but the attributes intake set beside it can: on-call follows the parked message
            # back to intake's logs and the member's trace.
            correlation_id, key = _carried(message, "correlation_id"), _carried(message, "idempotency_key")
            self.queue.park(message, Park(reason, "invalid"), correlation_id, key)
            logger.error(
                "message parked",
                extra={
                    "reason": reason,
                    "message_id": message.message_id,
                    "correlation_id": correlation_id or "unknown",
                },
            )
            return None

        if self.before is not None:
            self.before(queued)
        if not enough_time:
            # Soon again, in a fresh invocation: nobody failed, so neither an attempt nor an outage is counted.
            decision = hand_back_untried("not processed: no time left in the invocation", delivery, self.policy)
            return self._apply(decision, message, queued, delivery, None)
        if not self.health.should_try():
            # The service is failing and its back-off has not passed: do not spend a call or an attempt.
            decision = defer("the service is failing: consumer backing off", delivery, self.policy)
            return self._apply(decision, message, queued, delivery, None)
        try:
            result = handler(queued)
        except Exception as error:  # noqa: BLE001 - every failure ends retried, deferred or parked
            self.health.record(error, queued.idempotency_key)
            decision = decide(error, delivery, self.policy, service_failing=self.health.failing)
            return self._apply(decision, message, queued, delivery, error)
        self.health.record(None)
        return result

    def _apply(
        self,
        decision: Retry | Park,
        message: QueuedMessage,
        queued: QueuedEvent | None,
        delivery: Delivery,
        error: BaseException | None,
    ) -> Any:
        step = StepRecorder.for_event(self.trace, queued) if queued else None
        correlation_id, key = (queued.correlation_id, queued.idempotency_key) if queued else ("", "")
        if isinstance(decision, Park):
            self.queue.park(message, decision, correlation_id, key)
            logger.error("message parked", extra={"reason": decision.reason, "kind": decision.kind})
            if step:
                refused = isinstance(error, PermanentRefusal)
                detail = (
                    f"parked without retrying, the service refused it for good: {decision.reason}"
                    if refused
                    else f"parked after {delivery.receive_count} deliveries: {decision.reason}"
                )
                _best_effort(step, Step.DEAD_LETTERED, Outcome.REFUSED if refused else Outcome.FAILED, detail)
            return None
        try:
            if not decision.counts_as_attempt:
                self.queue.record_deferral(message)
            self.queue.retry_later(message, decision.delay_seconds)
        except Exception as failure:
            # The message still comes back, but only when the queue's visibility timeout ends (minutes, not the
            # policy's delay): said here with the reason, since nothing else would say why it waited.
            logger.error(
                "retry delay not set: the message returns after the queue's visibility timeout",
                extra={"reason": decision.reason, "error_type": type(failure).__name__, "error": str(failure)[:300]},
            )
            raise RetryNotSet(decision.reason) from failure
        if step and error is not None:
            what = f"attempt {delivery.attempts} failed" if decision.counts_as_attempt else "deferred"
            _best_effort(
                step,
                Step.RETRY_SCHEDULED,
                Outcome.FAILED,
                f"{what} ({decision.reason}); retry in {decision.delay_seconds}s",
            )
        logger.warning(
            "retry scheduled",
            extra={
                "reason": decision.reason,
                "delay_seconds": decision.delay_seconds,
                "deferred": not decision.counts_as_attempt,
            },
            # An error outside memberflow's vocabulary is a defect: where it was raised says more than its message.
            exc_info=error if error is not None and not isinstance(error, MemberflowError) else None,
        )
        raise WillRetry(decision.reason) from error


def _carried(message: QueuedMessage, name: str) -> str:
    """An id the message carries as an attribute ("" when it has none), cut to the length an idempotency key may
    have: whoever sent the message, its parked copy must stay within SQS's limits."""
    return message.attributes.get(name, "")[:MAX_EVENT_KEY_BYTES]


def _unreadable(error: Exception) -> str:
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        where = ".".join(map(str, first["loc"])) or "body"
        return f"invalid message: {error.error_count()} problem(s), first: {where}: {first['msg']}"
    return f"invalid message: {error}"


def _best_effort(step: StepRecorder, *args: Any) -> None:
    """The trace explains; a failing trace write must not change what happens to the message."""
    try:
        step(*args)
    except Exception:  # noqa: BLE001
        logger.warning("trace record not written", exc_info=True)
