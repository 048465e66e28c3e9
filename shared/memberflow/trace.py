"""The member trace: every step taken for a member, so "why did this member (not) get the welcome email?" has an
answer. Records are keyed by a hash of the email (or, before we know it, by the platform identity), never by the
address itself, and carry the correlation id that also appears in the logs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from memberflow.privacy import email_key

if TYPE_CHECKING:
    from memberflow.pipeline.envelope import QueuedEvent


class Step(StrEnum):
    EVENT_RECEIVED = "event_received"
    REQUEST_REJECTED = "request_rejected"
    MAILCHIMP_UPSERT = "mailchimp_upsert"
    TAGGED = "tagged"
    JOURNEY_STARTED = "journey_started"
    ACTIVATED = "activated"
    SCREENING_PASSED = "screening_passed"
    DRIP_STEP = "drip_step"
    RETRY_SCHEDULED = "retry_scheduled"
    DEAD_LETTERED = "dead_lettered"
    SKIPPED = "skipped"
    ERASED = "erased"
    ESCALATION_ALERTED = "escalation_alerted"
    TICKET_CREATED = "ticket_created"
    TICKET_COMMENTED = "ticket_commented"
    MEMBER_TOLD = "member_told"


class Outcome(StrEnum):
    OK = "ok"
    SKIPPED = "skipped"
    ERASED = "erased"
    REFUSED = "refused"
    FAILED = "failed"


def email_subject(email: str) -> str:
    return f"email#{email_key(email)}"


def identity_subject(identity_key: str) -> str:
    return f"identity#{identity_key}"


def rejections_subject(day: str) -> str:
    """All rejected requests of one UTC day (YYYY-MM-DD), whether or not they named a member."""
    return f"rejections#{day}"


def erased_subject(suppression_key: str) -> str:
    """The erasure of a member, filed under the suppression list's keyed hash: the only trace left of them."""
    return f"erased#{suppression_key}"


ERASURE_REQUESTS = "erasures"
"""Where erasure requests are filed when received: under neither the address nor the identity, which the erasure
deletes (erasures are rare, so one subject lists them all)."""


@dataclass(frozen=True)
class TraceRecord:
    subject: str
    step: Step
    outcome: Outcome
    detail: str
    correlation_id: str
    source: str = ""
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    extra: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, str]:
        """What `memberflow trace --json` and `memberflow export` show of a record."""
        return {
            "at": self.at.isoformat(),
            "step": self.step.value,
            "outcome": self.outcome.value,
            "source": self.source,
            "detail": self.detail,
            "correlation_id": self.correlation_id,
        }


class TraceRecorder(Protocol):
    def record(self, record: TraceRecord) -> None: ...


class TraceBuffer:
    """A `TraceRecorder` that keeps the records until `flush()`, which writes them in batches when the trace can
    (`record_many`): a chunk of imported members is a few batch writes, not one write per step."""

    def __init__(self, trace: TraceRecorder) -> None:
        self._trace = trace
        self._records: list[TraceRecord] = []

    def record(self, record: TraceRecord) -> None:
        self._records.append(record)

    def flush(self) -> int:
        records, self._records = self._records, []
        record_many = getattr(self._trace, "record_many", None)
        if record_many is not None:
            record_many(records)
        else:
            for record in records:
                self._trace.record(record)
        return len(records)


class TraceReader(Protocol):
    def query(self, subject: str) -> list[TraceRecord]: ...


class TraceEraser(Protocol):
    def erase(self, subject: str) -> int:
        """Delete every record filed under `subject`; how many there were."""


class ErasableTrace(TraceRecorder, TraceEraser, Protocol):
    """The trace as erasure needs it: record, and delete a member's records."""


class StepRecorder:
    """Records steps under one subject with one correlation id: `step(Step.TAGGED, Outcome.OK, "tags ...")`."""

    def __init__(
        self, trace: TraceRecorder, subject: str, correlation_id: str, source: str = "", extra: dict | None = None
    ) -> None:
        self._trace, self._subject, self._correlation_id = trace, subject, correlation_id
        self._source, self._extra = source, dict(extra or {})

    @classmethod
    def for_event(cls, trace: TraceRecorder, queued: QueuedEvent, subject: str | None = None) -> StepRecorder:
        return cls(
            trace,
            subject or queued.event.trace_subject(),
            queued.correlation_id,
            queued.source,
            {"idempotency_key": queued.idempotency_key},
        )

    def __call__(self, step: Step, outcome: Outcome, detail: str) -> None:
        self._trace.record(
            TraceRecord(
                subject=self._subject,
                step=step,
                outcome=outcome,
                detail=detail,
                correlation_id=self._correlation_id,
                source=self._source,
                extra=self._extra,
            )
        )
