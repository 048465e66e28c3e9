"""The scheduled onboarding run.

1. Members on double opt-in (`opt_in`): once Mailchimp says they confirmed, they get the welcome journey and enter
   the drip; members who never confirm are let go after a while.
2. The drip: members who have not taken part yet get the next step (a Mailchimp tag that a journey listens for)
   the configured days after entering the drip; anyone active is left alone.

Both read only what is due from the due-work index. A rate limit, an outage or an account problem ends the run
early: no member is at fault, and what is left stays due for the next run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from memberflow import activity
from memberflow.errors import AccountProblem, NotFound, PermanentRefusal, Transient
from memberflow.ledger import ConsentLedger
from memberflow.members import MemberRecord
from memberflow.onboarding.consent import OPTED_OUT
from memberflow.onboarding.consent_ledger import ConsentRules
from memberflow.onboarding.rules import WelcomeJourney
from memberflow.onboarding.welcome import DRIP
from memberflow.ports import ActivityLog, DueWork, DueWorkIndex, MailingList, MemberRepository
from memberflow.trace import Outcome, Step, StepRecorder, TraceRecorder, email_subject

logger = logging.getLogger(__name__)


@dataclass
class DripDeps:
    mailing_list: MailingList
    members: MemberRepository
    due_work: DueWorkIndex
    trace: TraceRecorder
    list_id: str
    step_days: tuple[int, ...]
    welcome_journey: WelcomeJourney
    ledger: ConsentLedger
    consent_rules: ConsentRules = field(default_factory=ConsentRules)
    activity: ActivityLog | None = None
    """The activity log (welcomed after an opt-in, drip finished); None: not recorded."""


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


class Deferred(Exception):
    """Mailchimp is throttling, failing or misconfigured: no member is at fault; what is left stays due."""


def drip_tag(day: int) -> str:
    return f"onboarding-day-{day}"


def send_due_drip_steps(now: datetime, run_id: str, deps: DripDeps) -> DripReport:
    """Welcome who confirmed their opt-in, then send every drip step due at `now`."""
    from memberflow.onboarding.opt_in import check_opt_ins

    report = DripReport()
    try:
        check_opt_ins(now, run_id, deps, report)
        for work in deps.due_work.due(DRIP, now):
            _drip(work, run_id, deps, report)
    except Deferred as failure:
        report.deferred = True
        logger.warning("run deferred", extra={"reason": str(failure.__cause__)})
    return report


def _drip(work: DueWork, run_id: str, deps: DripDeps, report: DripReport) -> None:
    member = deps.members.get(work.member_id)
    if member is None or member.email is None:
        deps.due_work.remove(DRIP, work.member_id)
        return
    step = StepRecorder(deps.trace, email_subject(member.email), run_id, "drip")
    if member.opted_out_before and member.mailchimp_status in OPTED_OUT:
        # An unsubscribe or clean (Mailchimp's webhook) stops the drip at once; this only catches a race with it.
        deps.due_work.remove(DRIP, member.member_id)
        step(Step.DRIP_STEP, Outcome.SKIPPED, f"member is {member.mailchimp_status} in Mailchimp: drip stopped")
        return
    if member.activated_at is not None:
        deps.due_work.remove(DRIP, member.member_id)
        report.stopped_active += 1
        step(Step.DRIP_STEP, Outcome.SKIPPED, "member is active: drip stopped")
        return
    try:
        _send_next_step(work, member, deps, step, report)
    except (Transient, AccountProblem) as failure:
        raise Deferred() from failure


def _send_next_step(
    work: DueWork, member: MemberRecord, deps: DripDeps, step: StepRecorder, report: DripReport
) -> None:
    index = member.drip_steps_sent
    if index >= len(deps.step_days):
        deps.due_work.remove(DRIP, member.member_id)
        return
    assert member.email
    tag = drip_tag(deps.step_days[index])
    is_last = index + 1 >= len(deps.step_days)
    started = member.drip_started_at or member.joined_at or work.due_at
    next_due = None if is_last else started + timedelta(days=deps.step_days[index + 1])
    progress = {"drip_steps_sent": index}
    # Claim, then send: a member who became active meanwhile, or a step another run took, is never tagged.
    # A crash between the two loses one nudge rather than sending one twice.
    if not deps.due_work.claim(work, next_due=next_due, progress=progress):
        return
    try:
        deps.mailing_list.add_tags(deps.list_id, member.email, [tag])
        refusal: Exception | None = None
    except (PermanentRefusal, NotFound) as refused:
        refusal = refused
    except Exception:
        deps.due_work.release(work, progress=progress)
        raise
    if refusal is not None:
        try:
            audience_missing = isinstance(refusal, NotFound) and not deps.mailing_list.list_exists(deps.list_id)
        except Exception:
            deps.due_work.release(work, progress=progress)
            raise
        if audience_missing:
            deps.due_work.release(work, progress=progress)
            raise refusal  # a configuration problem, not this member's
        deps.due_work.remove(DRIP, member.member_id)
        report.refused += 1
        step(Step.DRIP_STEP, Outcome.REFUSED, f"Mailchimp refused {tag}: {refusal}; drip stopped")
        return
    report.sent += 1
    report.completed += is_last
    if is_last:
        activity.note(
            deps.activity,
            activity.DRIP_FINISHED,
            member_id=member.member_id,
            platform=member.platforms[0] if member.platforms else "unknown",
            at=work.due_at,
            source_key=f"drip:{member.member_id}:{tag}",
        )
    report.tags[tag] = report.tags.get(tag, 0) + 1
    step(Step.DRIP_STEP, Outcome.OK, f"sent {tag} (step {index + 1} of {len(deps.step_days)})")
