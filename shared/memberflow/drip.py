"""The scheduled onboarding run.

1. Members on double opt-in: once Mailchimp says they confirmed, they get the welcome journey and enter the drip;
   members who never confirm are let go after a while.
2. The drip: members who have not taken part yet get the next step (a Mailchimp tag that a journey listens for)
   the configured days after entering the drip; anyone active is left alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from aws_lambda_powertools import Logger

from memberflow import consent
from memberflow.adapters.mailchimp import AccountProblem, MailchimpClient, NotFound, PermanentRefusal
from memberflow.adapters.member_store import MemberRecord, MemberStore, OptInWait
from memberflow.retry import RetryLater, TransientFailure
from memberflow.trace import Outcome, Step, StepRecorder, TraceRecorder, email_subject
from memberflow.welcome import WelcomeJourney, enter_drip, start_welcome_journey

logger = Logger()

OPT_IN_PATIENCE = timedelta(days=30)
"""How long a pending member is re-checked before we stop waiting for their confirmation."""


@dataclass
class DripDeps:
    mailchimp: MailchimpClient
    members: MemberStore
    trace: TraceRecorder
    list_id: str
    step_days: tuple[int, ...]
    welcome_journey: WelcomeJourney


@dataclass
class DripReport:
    sent: int = 0
    completed: int = 0
    stopped_active: int = 0
    refused: int = 0
    opt_ins_confirmed: int = 0
    opt_ins_given_up: int = 0
    deferred: bool = False
    tags: dict[str, int] = field(default_factory=dict)


class _Deferred(Exception):
    """Mailchimp is throttling, failing or misconfigured: no member is at fault; what is left stays due."""


def drip_tag(day: int) -> str:
    return f"onboarding-day-{day}"


def send_due_drip_steps(now: datetime, run_id: str, deps: DripDeps) -> DripReport:
    """Welcome who confirmed their opt-in, then send every drip step due at `now`. A rate limit or an account
    problem ends the run early; the rest stays due for the next run."""
    report = DripReport()
    try:
        for wait in deps.members.opt_ins_due(now):
            _check_opt_in(wait, now, run_id, deps, report)
        for member in deps.members.due_for_drip(now):
            _drip(member, run_id, deps, report)
    except _Deferred as failure:
        report.deferred = True
        logger.warning("run deferred", extra={"reason": str(failure.__cause__)})
    return report


def _check_opt_in(wait: OptInWait, now: datetime, run_id: str, deps: DripDeps, report: DripReport) -> None:
    member = deps.members.get(wait.member_id)
    if member is None or member.email is None:
        deps.members.forget_opt_in(wait.member_id)
        return
    step = StepRecorder(deps.trace, email_subject(member.email), run_id, "opt-in")
    try:
        status = deps.mailchimp.member_status(deps.list_id, member.email)
        if status == consent.SUBSCRIBED:
            deps.members.set_mailchimp_status(member.member_id, status)
            step(Step.MAILCHIMP_UPSERT, Outcome.OK, "double opt-in confirmed: status subscribed")
            start_welcome_journey(
                member.member_id, member.email, deps.welcome_journey, deps.mailchimp, deps.members, step, now
            )
            enter_drip(deps.members, member.member_id, deps.step_days, now)
            deps.members.forget_opt_in(member.member_id)
            report.opt_ins_confirmed += 1
            return
    except (TransientFailure, RetryLater, AccountProblem) as failure:
        raise _Deferred() from failure
    waited = now - wait.since
    if status == consent.PENDING and waited < OPT_IN_PATIENCE:
        # Most people confirm within the hour; after the first day, once a day is enough.
        deps.members.recheck_opt_in_at(
            member.member_id, now + (timedelta(hours=1) if waited < timedelta(days=1) else timedelta(days=1))
        )
        return
    deps.members.forget_opt_in(member.member_id)
    report.opt_ins_given_up += 1
    reason = f"not confirmed within {OPT_IN_PATIENCE.days} days" if status == consent.PENDING else f"status {status}"
    step(Step.SKIPPED, Outcome.SKIPPED, f"double opt-in {reason}: no welcome journey")


def _drip(member: MemberRecord, run_id: str, deps: DripDeps, report: DripReport) -> None:
    if member.email is None:
        deps.members.stop_drip(member.member_id)
        return
    step = StepRecorder(deps.trace, email_subject(member.email), run_id, "drip")
    if member.activated_at is not None:
        deps.members.stop_drip(member.member_id)
        report.stopped_active += 1
        step(Step.DRIP_STEP, Outcome.SKIPPED, "member is active: drip stopped")
        return
    try:
        _send_next_step(member, deps, step, report)
    except (TransientFailure, RetryLater, AccountProblem) as failure:
        raise _Deferred() from failure


def _send_next_step(member: MemberRecord, deps: DripDeps, step: StepRecorder, report: DripReport) -> None:
    index = member.drip_steps_sent
    if index >= len(deps.step_days):
        deps.members.stop_drip(member.member_id)
        return
    assert member.email and member.drip_due_at
    tag = drip_tag(deps.step_days[index])
    is_last = index + 1 >= len(deps.step_days)
    started = member.drip_started_at or member.joined_at
    next_due = None if is_last else started + timedelta(days=deps.step_days[index + 1])
    # Claim, then send: a member who became active meanwhile, or a step another run took, is never tagged.
    # A crash between the two loses one nudge rather than sending one twice.
    if not deps.members.claim_drip_step(member.member_id, index, next_due):
        return
    try:
        deps.mailchimp.add_tags(deps.list_id, member.email, [tag])
        refusal: Exception | None = None
    except (PermanentRefusal, NotFound) as refused:
        refusal = refused
    except Exception:
        deps.members.unclaim_drip_step(member.member_id, index, member.drip_due_at)
        raise
    if refusal is not None:
        try:
            audience_missing = isinstance(refusal, NotFound) and not deps.mailchimp.list_exists(deps.list_id)
        except Exception:
            deps.members.unclaim_drip_step(member.member_id, index, member.drip_due_at)
            raise
        if audience_missing:
            deps.members.unclaim_drip_step(member.member_id, index, member.drip_due_at)
            raise refusal  # a configuration problem, not this member's
        deps.members.stop_drip(member.member_id)
        report.refused += 1
        step(Step.DRIP_STEP, Outcome.REFUSED, f"Mailchimp refused {tag}: {refusal}; drip stopped")
        return
    report.sent += 1
    report.completed += is_last
    report.tags[tag] = report.tags.get(tag, 0) + 1
    step(Step.DRIP_STEP, Outcome.OK, f"sent {tag} (step {index + 1} of {len(deps.step_days)})")
