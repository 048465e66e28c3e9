"""Answers "why did this member (not) get the welcome email?" from their trace records."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from memberflow.members import MemberRecord
from memberflow.ports import MemberRepository
from memberflow.privacy import email_key, mask_email
from memberflow.trace import Outcome, Step, TraceReader, TraceRecord, email_subject, identity_subject


@dataclass(frozen=True)
class Verdict:
    welcomed: bool | None
    """True: the welcome journey started; False: it did not, for `reason`; None: nothing known about the member."""
    reason: str


@dataclass(frozen=True)
class MemberReport:
    email: str
    member: MemberRecord | None
    records: list[TraceRecord]
    verdict: Verdict


def collect(email: str, traces: TraceReader, members: MemberRepository) -> MemberReport:
    """Everything recorded for a member: under their email, and under each platform identity they used."""
    records = traces.query(email_subject(email))
    member = members.get(email_key(email))
    for identity in member.identities if member else []:
        records += traces.query(identity_subject(identity))
    records.sort(key=lambda record: record.at)
    return MemberReport(email, member, records, explain(records))


def render(report: MemberReport) -> list[str]:
    lines = [f"member {mask_email(report.email)}"]
    member = report.member
    if member:
        lines.append(
            f"  platforms: {', '.join(member.platforms)}; Mailchimp status: {member.mailchimp_status}; "
            f"consent: {member.marketing_consent}; active: {bool(member.activated_at)}; "
            f"drip steps sent: {member.drip_steps_sent}"
        )
    lines += ["  " + line for line in format_timeline(report.records)]
    answer = {True: "YES", False: "NO", None: "UNKNOWN"}[report.verdict.welcomed]
    lines.append(f"welcome email: {answer}: {report.verdict.reason}")
    return lines


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
            return Verdict(
                False, f"processing failed and the event was parked in the dead-letter queue: {record.detail}"
            )
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
