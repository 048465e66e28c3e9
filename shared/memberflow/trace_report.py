"""Answers "why did this member (not) get the welcome email?" from their trace records."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from memberflow.ledger import ConsentEntry, ConsentLedger, format_entries
from memberflow.members import MemberRecord
from memberflow.ports import MemberRepository, Suppression, SuppressionList
from memberflow.privacy import email_key, email_suppression_name, mask_email
from memberflow.trace import Outcome, Step, TraceReader, TraceRecord, email_subject, erased_subject, identity_subject


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
    erasure: Suppression | None = None
    """Set when the person asked to be forgotten: what is left of them is this and the erasure's own record."""
    ledger: list[ConsentEntry] = field(default_factory=list)
    """The member's consent ledger, oldest first."""


def collect(
    email: str,
    traces: TraceReader,
    members: MemberRepository,
    suppressions: SuppressionList | None = None,
    ledger: ConsentLedger | None = None,
) -> MemberReport:
    """Everything recorded for a member: under their email, under each platform identity they used, and, if they
    asked to be forgotten, the erasure (found by the keyed hash of the address)."""
    records = traces.query(email_subject(email))
    member = members.get(email_key(email))
    for identity in member.identities if member else []:
        records += traces.query(identity_subject(identity))
    erasure = suppressions.find(email_suppression_name(email)) if suppressions is not None else None
    if erasure is not None:
        records += traces.query(erased_subject(erasure.key))
    records.sort(key=lambda record: record.at)
    entries = ledger.entries(member.member_id) if ledger is not None and member is not None else []
    return MemberReport(email, member, records, explain_with_erasure(records, erasure), erasure, entries)


def explain_with_erasure(records: list[TraceRecord], erasure: Suppression | None) -> Verdict:
    """What happened since the latest erasure: nothing (they were forgotten) or a re-join."""
    if erasure is None:
        return explain(records)
    # Records filed under the erasure itself (the erasure, events dropped because they came before it) are not news.
    since = [r for r in records if r.at > erasure.erased_at and r.subject != erased_subject(erasure.key)]
    if since:
        return explain(since)
    return Verdict(
        False,
        f"erased on {erasure.erased_at:%Y-%m-%d} at the person's request (via {erasure.requested_by}): removed "
        "from Mailchimp and from memberflow; a re-join needs a fresh opt-in",
    )


def render(report: MemberReport) -> list[str]:
    lines = [f"member {mask_email(report.email)}"]
    member = report.member
    if member:
        lines.append(
            f"  platforms: {', '.join(member.platforms)}; Mailchimp status: {member.mailchimp_status}; "
            f"consent: {member.marketing_consent}; active: {bool(member.activated_at)}; "
            f"drip steps sent: {member.drip_steps_sent}"
        )
    if report.erasure:
        lines.append(
            f"  erased on {report.erasure.erased_at:%Y-%m-%d %H:%M:%S} UTC at the person's request "
            f"(via {report.erasure.requested_by}); only a keyed hash of the address is kept"
        )
    lines += ["  " + line for line in format_timeline(report.records)]
    if report.ledger:
        lines.append("  consent ledger:")
        lines += ["    " + line for line in format_entries(report.ledger)]
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
