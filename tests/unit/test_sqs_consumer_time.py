"""The SQS consumer starts a message only when its worst case fits in the invocation's remaining time, and the
batch's bulk step (run before the first message) counts: the time is looked at again once it is done."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from memberflow.events import MemberJoined
from memberflow.models import MemberIdentity, Platform
from memberflow.pipeline.envelope import QueuedEvent
from memberflow.pipeline.worker import QueuedMessage
from memberflow.runtime.sqs_consumer import SqsConsumer

WORST_CASE_MS = 158_000


class Clock:
    """A Lambda context whose remaining time goes down only when a test spends it."""

    def __init__(self, remaining_ms: int) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


class RecordingWorker:
    def __init__(self) -> None:
        self.started: list[tuple[str, bool]] = []

    def process(self, message: QueuedMessage, *, enough_time: bool = True) -> Any:
        self.started.append((message.message_id, enough_time))
        return {"result": "done"}


class Counts:
    def add_metric(self, **_: Any) -> None:
        pass


class ConsumerWithRecordingWorker(SqsConsumer):
    """The real consumer, with a stand-in for the worker (and its idempotency store) it would build."""

    def _build(self) -> Any:
        self._worst_case_ms = self._worst_case_ms_per_message()
        self.recording = RecordingWorker()
        return self.recording


def consumer(bulk_step_ms: int, clock: Clock) -> ConsumerWithRecordingWorker:
    def bulk_step(batch: list[QueuedEvent]) -> None:
        clock.remaining_ms -= bulk_step_ms

    return ConsumerWithRecordingWorker(
        "escalation",
        lambda: {},
        worst_case_ms_per_message=lambda: WORST_CASE_MS,
        metric_prefix="Escalation",
        logger=logging.getLogger("test"),  # type: ignore[arg-type]
        metrics=Counts(),  # type: ignore[arg-type]
        before_batch=bulk_step,
    )


def record(index: int) -> dict[str, Any]:
    event = MemberJoined(
        identity=MemberIdentity(platform=Platform.SLACK, workspace="T1", user_id=f"U{index}"),
        email=f"m{index}@example.org",
        joined_at=datetime(2026, 11, 1, tzinfo=UTC),
    )
    queued = QueuedEvent(idempotency_key=f"slack:T1:Ev{index}", correlation_id="corr", source="slack", event=event)
    return {
        "messageId": f"m-{index}",
        "receiptHandle": f"rh-{index}",
        "body": queued.model_dump_json(),
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
    }


def test_a_bulk_step_that_outran_its_estimate_hands_the_first_message_back_untried():
    clock = Clock(remaining_ms=400_000)
    escalation = consumer(bulk_step_ms=300_000, clock=clock)  # 100 s left: less than a message's 158 s

    escalation.handler({"Records": [record(0), record(1)]}, clock)

    assert escalation.recording.started == [("m-0", False), ("m-1", False)]


def test_a_quick_bulk_step_leaves_the_first_message_its_time():
    clock = Clock(remaining_ms=400_000)
    escalation = consumer(bulk_step_ms=2_000, clock=clock)

    escalation.handler({"Records": [record(0), record(1)]}, clock)

    assert escalation.recording.started == [("m-0", True), ("m-1", True)]
