"""Members on double opt-in: re-checked in Mailchimp when due, welcomed once they confirmed, let go after a while."""

from __future__ import annotations

from datetime import datetime, timedelta

from memberflow import activity
from memberflow.errors import AccountProblem, PermanentRefusal, Transient
from memberflow.ledger import Change
from memberflow.members import MemberRecord
from memberflow.onboarding import consent, consent_ledger
from memberflow.onboarding.consent_ledger import Basis
from memberflow.onboarding.drip import Deferred, DripDeps, DripReport
from memberflow.onboarding.join import OPT_IN
from memberflow.onboarding.welcome import enter_drip, start_welcome_journey
from memberflow.ports import DueWork
from memberflow.trace import Outcome, Step, StepRecorder, email_subject

OPT_IN_PATIENCE = timedelta(days=30)
"""How long a pending member is re-checked before we stop waiting for their confirmation."""


def check_opt_ins(now: datetime, run_id: str, deps: DripDeps, report: DripReport) -> None:
    for work in deps.due_work.due(OPT_IN, now):
        _check(work, now, run_id, deps, report)


def welcome_confirmed(
    member: MemberRecord, basis: Basis, deps: DripDeps, step: StepRecorder, now: datetime, *, record: bool = True
) -> None:
    """The member confirmed Mailchimp's double opt-in email: written to the consent ledger (unless the caller wrote
    what it was), then the welcome journey (once) and the drip; their opt-in wait ends."""
    assert member.email
    if record:
        _record_confirmation(member, basis, deps)
    step(Step.MAILCHIMP_UPSERT, Outcome.OK, "double opt-in confirmed: status subscribed" if record else "subscribed")
    started = start_welcome_journey(
        member.member_id,
        member.email,
        deps.welcome_journey,
        deps.mailing_list,
        deps.members,
        step,
        now,
        list_id=deps.list_id,
    )
    if started == "started":
        activity.note(
            deps.activity,
            activity.WELCOMED,
            member_id=member.member_id,
            platform=member.platforms[0] if member.platforms else "unknown",
            at=now,
            source_key=f"opt-in:{member.member_id}",
        )
    enter_drip(deps.due_work, member.member_id, deps.step_days, now)
    deps.due_work.remove(OPT_IN, member.member_id)


def _record_confirmation(member: MemberRecord, basis: Basis, deps: DripDeps) -> None:
    consent_ledger.record(
        deps.ledger,
        deps.members,
        member.member_id,
        Change.CONFIRMED,
        consent.SUBSCRIBED,
        basis,
        deps.consent_rules,
        "double opt-in confirmed in Mailchimp",
        always=True,
    )


def _check(work: DueWork, now: datetime, run_id: str, deps: DripDeps, report: DripReport) -> None:
    member = deps.members.get(work.member_id)
    if member is None or member.email is None:
        deps.due_work.remove(OPT_IN, work.member_id)
        return
    since = datetime.fromisoformat(str(work.details.get("awaiting_since") or work.due_at.isoformat()))
    step = StepRecorder(deps.trace, email_subject(member.email), run_id, "opt-in")
    try:
        status = deps.mailing_list.member_status(deps.list_id, member.email)
        if status == consent.SUBSCRIBED:
            basis = Basis("mailchimp", "opt_in_check", f"opt-in:{member.member_id}:{since.isoformat()}", now)
            welcome_confirmed(member, basis, deps, step, now)
            report.opt_ins_confirmed += 1
            return
    except (Transient, AccountProblem) as failure:
        raise Deferred() from failure
    except PermanentRefusal as refusal:
        # This member's, for good: recorded, and the run goes on for everyone else.
        deps.due_work.remove(OPT_IN, member.member_id)
        report.refused += 1
        step(Step.JOURNEY_STARTED, Outcome.REFUSED, f"Mailchimp refused the welcome after the opt-in: {refusal}")
        return
    waited = now - since
    if status == consent.PENDING and waited < OPT_IN_PATIENCE:
        # Most people confirm within the hour; after the first day, once a day is enough.
        recheck = now + (timedelta(hours=1) if waited < timedelta(days=1) else timedelta(days=1))
        deps.due_work.schedule(OPT_IN, member.member_id, recheck, {"awaiting_since": since.isoformat()})
        return
    deps.due_work.remove(OPT_IN, member.member_id)
    report.opt_ins_given_up += 1
    reason = f"not confirmed within {OPT_IN_PATIENCE.days} days" if status == consent.PENDING else f"status {status}"
    step(Step.SKIPPED, Outcome.SKIPPED, f"double opt-in {reason}: no welcome journey")
