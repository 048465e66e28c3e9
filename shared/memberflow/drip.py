"""The onboarding drip: members who have not taken part yet get the next step (a Mailchimp tag that a journey
listens for) on the configured days after joining; anyone active is left alone."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from aws_lambda_powertools import Logger

from memberflow.adapters.mailchimp import AccountProblem, MailchimpClient, NotFound, PermanentRefusal
from memberflow.adapters.member_store import MemberRecord, MemberStore
from memberflow.retry import RetryLater, TransientFailure
from memberflow.trace import Outcome, Step, StepRecorder, TraceRecorder, email_subject

logger = Logger()


@dataclass
class DripDeps:
    mailchimp: MailchimpClient
    members: MemberStore
    trace: TraceRecorder
    list_id: str
    step_days: tuple[int, ...]


@dataclass
class DripReport:
    sent: int = 0
    completed: int = 0
    stopped_active: int = 0
    refused: int = 0
    deferred: bool = False
    tags: dict[str, int] = field(default_factory=dict)


def drip_tag(day: int) -> str:
    return f"onboarding-day-{day}"


def send_due_drip_steps(now: datetime, run_id: str, deps: DripDeps) -> DripReport:
    """Send every step due at `now`. A rate limit ends the run early; the rest stays due for the next run."""
    report = DripReport()
    for member in deps.members.due_for_drip(now):
        if member.email is None:
            deps.members.stop_drip(member.member_id)
            continue
        step = StepRecorder(deps.trace, email_subject(member.email), run_id, "drip")
        if member.activated_at is not None:
            deps.members.stop_drip(member.member_id)
            report.stopped_active += 1
            step(Step.DRIP_STEP, Outcome.SKIPPED, "member is active: drip stopped")
            continue
        try:
            _send_next_step(member, deps, step, report)
        except (TransientFailure, RetryLater, AccountProblem) as failure:
            # Mailchimp is throttling, failing or misconfigured: no member is at fault. Stop here; every step
            # not sent stays due for the next run.
            report.deferred = True
            logger.warning("drip run deferred", extra={"reason": str(failure)})
            break
    return report


def _send_next_step(member: MemberRecord, deps: DripDeps, step: StepRecorder, report: DripReport) -> None:
    index = member.drip_steps_sent
    if index >= len(deps.step_days):
        deps.members.stop_drip(member.member_id)
        return
    assert member.email and member.drip_due_at
    tag = drip_tag(deps.step_days[index])
    is_last = index + 1 >= len(deps.step_days)
    next_due = None if is_last else member.joined_at + timedelta(days=deps.step_days[index + 1])
    # Claim, then send: a member who became active meanwhile, or a step another run took, is never tagged.
    # A crash between the two loses one nudge rather than sending one twice.
    if not deps.members.claim_drip_step(member.member_id, index, next_due):
        return
    try:
        deps.mailchimp.add_tags(deps.list_id, member.email, [tag])
    except (PermanentRefusal, NotFound) as refusal:
        if isinstance(refusal, NotFound) and not deps.mailchimp.list_exists(deps.list_id):
            deps.members.unclaim_drip_step(member.member_id, index, member.drip_due_at)
            raise  # the audience itself is missing: a configuration problem, not this member's
        deps.members.stop_drip(member.member_id)
        report.refused += 1
        step(Step.DRIP_STEP, Outcome.REFUSED, f"Mailchimp refused {tag}: {refusal}; drip stopped")
        return
    except Exception:
        deps.members.unclaim_drip_step(member.member_id, index, member.drip_due_at)
        raise
    report.sent += 1
    report.completed += is_last
    report.tags[tag] = report.tags.get(tag, 0) + 1
    step(Step.DRIP_STEP, Outcome.OK, f"sent {tag} (step {index + 1} of {len(deps.step_days)})")
