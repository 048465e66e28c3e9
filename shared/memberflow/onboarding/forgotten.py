"""Who asked to be forgotten: the suppression list as joins and activity consult it (see `erasure`)."""

from __future__ import annotations

from memberflow.consent import latest_erasure
from memberflow.pipeline.envelope import QueuedEvent
from memberflow.ports import Suppression
from memberflow.trace import Outcome, Step, StepRecorder, TraceRecorder, erased_subject

__all__ = ["drop_if_erased_later", "latest_erasure"]


def drop_if_erased_later(queued: QueuedEvent, erasure: Suppression | None, trace: TraceRecorder) -> bool:
    """True (and recorded) when the event was received before the person's latest erasure: a join or activity
    still queued, or redriven from the dead-letter queue, must not bring back what the erasure removed."""
    if erasure is None or queued.received_at > erasure.erased_at:
        return False
    StepRecorder(trace, erased_subject(erasure.key), queued.correlation_id, queued.source)(
        Step.SKIPPED,
        Outcome.SKIPPED,
        f"{queued.event.type} received {queued.received_at:%Y-%m-%d %H:%M:%S} UTC, before the erasure: dropped",
    )
    return True
