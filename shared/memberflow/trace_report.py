"""Answers "why did this member (not) get the welcome email?" from their trace records."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from memberflow.trace import Outcome, Step, TraceRecord


@dataclass(frozen=True)
class Verdict:
    welcomed: bool | None
    """True: the welcome journey started; False: it did not, for `reason`; None: nothing known about the member."""
    reason: str


def explain(records: Iterable[TraceRecord]) -> Verdict:
    timeline = sorted(records, key=lambda record: record.at)
    if not timeline:
        return Verdict(None, "no record of this member: no accepted event named this address")

    started = [r for r in timeline if r.step is Step.JOURNEY_STARTED and r.outcome is Outcome.OK]
    if started:
        first = started[0]
        return Verdict(True, f"welcome journey started {first.at:%Y-%m-%d %H:%M:%S} UTC ({first.correlation_id})")

    # Later records supersede earlier ones: the last decisive step is the answer.
    for record in reversed(timeline):
        if record.step is Step.DEAD_LETTERED:
            return Verdict(False, f"processing failed and the event was parked in the dead-letter queue: {record.detail}")
        if record.step is Step.MAILCHIMP_UPSERT and record.outcome is Outcome.REFUSED:
            return Verdict(False, record.detail)
        if record.step in (Step.SKIPPED, Step.JOURNEY_STARTED) and record.outcome is Outcome.SKIPPED:
            return Verdict(False, record.detail)
        if record.step is Step.RETRY_SCHEDULED:
            return Verdict(False, f"not yet: a retry is scheduled ({record.detail})")
    if all(r.step is Step.REQUEST_REJECTED for r in timeline):
        return Verdict(False, f"every request naming this member was rejected; last: {timeline[-1].detail}")
    return Verdict(False, "event received but not processed yet (still queued?)")


def format_timeline(records: Iterable[TraceRecord]) -> list[str]:
    return [
        f"{r.at:%Y-%m-%d %H:%M:%S}  {r.step.value:<17} {r.outcome.value:<8} {r.source:<10} "
        f"{r.detail}  [{r.correlation_id}]"
        for r in sorted(records, key=lambda record: record.at)
    ]
