"""A member who joined lands in Mailchimp with the right status, merge fields and tags, starts the welcome journey
once, and enters the drip until they take part."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from memberflow.errors import ComplianceState, ForgottenAddress, PermanentRefusal
from memberflow.events import MemberJoined
from memberflow.members import MemberJoin, MemberRecord, member_id_for
from memberflow.onboarding import consent
from memberflow.onboarding.forgotten import drop_if_erased_later, latest_erasure
from memberflow.onboarding.rules import OnboardingRules
from memberflow.onboarding.welcome import enter_drip, start_welcome_journey
from memberflow.pipeline.envelope import QueuedEvent
from memberflow.ports import DueWorkIndex, ListMember, MailingList, MemberRepository, SuppressionList
from memberflow.trace import ErasableTrace, Outcome, Step, StepRecorder

OPT_IN = "opt-in"
"""The due-work queue of members who must confirm double opt-in."""
OPT_IN_FIRST_CHECK = timedelta(hours=1)


@dataclass
class OnboardingDeps:
    mailing_list: MailingList
    members: MemberRepository
    due_work: DueWorkIndex
    trace: ErasableTrace
    rules: OnboardingRules
    suppressions: SuppressionList
    """Who asked to be forgotten (keyed hashes): consulted on every join, written by erasure."""
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


def onboard_member(queued: QueuedEvent, deps: OnboardingDeps) -> dict[str, str]:
    event = queued.event
    assert isinstance(event, MemberJoined)
    erasure = latest_erasure(deps.suppressions, event.email, event.identity.key)
    if drop_if_erased_later(queued, erasure, deps.trace):
        return {"result": "dropped_after_erasure"}
    step = StepRecorder.for_event(deps.trace, queued)
    member = _remember_member(event, queued, deps)

    if not event.email:
        step(Step.SKIPPED, Outcome.SKIPPED, f"{event.identity.platform} gave no email: stored, not added to Mailchimp")
        return {"result": "stored_without_email"}

    try:
        list_member = _upsert(event, member, deps, step, forgotten_before=erasure is not None)
    except PermanentRefusal as refusal:  # compliance state, a forgotten or a fake address: this member's, for good
        deps.members.set_mailchimp_status(member.member_id, f"refused: {refusal.title}")
        how = (
            ": it was permanently deleted and can come back only through a Mailchimp signup form (a fresh opt-in)"
            if isinstance(refusal, ForgottenAddress)
            else ""
        )
        step(Step.MAILCHIMP_UPSERT, Outcome.REFUSED, f"Mailchimp refused the member: {refusal}{how}")
        return {"result": "refused", "reason": refusal.title}

    opted_out = list_member.status in consent.OPTED_OUT
    deps.members.set_mailchimp_status(member.member_id, list_member.status, opted_out=opted_out)
    if opted_out:
        step(
            Step.SKIPPED,
            Outcome.SKIPPED,
            f"member is {list_member.status} in Mailchimp (opted out earlier): status kept, no welcome journey",
        )
        return {"result": "kept_opted_out", "status": list_member.status}

    tags = [f"platform:{event.identity.platform}", f"cohort:{member.joined_at:%Y-%m}"]
    deps.mailing_list.add_tags(deps.rules.list_id, event.email, tags)
    step(Step.TAGGED, Outcome.OK, "tags " + ", ".join(tags))

    now = deps.clock()
    if list_member.status == consent.PENDING:
        # The scheduled run re-checks Mailchimp and welcomes the member once they have confirmed.
        # A repeated join (a redelivery, a second platform) does not restart a wait that is already running.
        deps.due_work.schedule(
            OPT_IN, member.member_id, now + OPT_IN_FIRST_CHECK, {"awaiting_since": now.isoformat()}, keep_existing=True
        )
        step(Step.SKIPPED, Outcome.SKIPPED, "welcome journey waits for the double opt-in confirmation (status pending)")
        return {"result": "awaiting_opt_in", "status": list_member.status}
    if not consent.receives_marketing(list_member.status):
        step(
            Step.SKIPPED,
            Outcome.SKIPPED,
            f"welcome journey not started: no marketing consent (status {list_member.status})",
        )
        return {"result": "onboarded_without_marketing", "status": list_member.status}

    started = start_welcome_journey(
        member.member_id, event.email, deps.rules.welcome_journey, deps.mailing_list, deps.members, step, now
    )
    enter_drip(deps.due_work, member.member_id, deps.rules.drip_step_days, now)
    return {"result": "onboarded", "status": list_member.status, "journey": started}


def _remember_member(event: MemberJoined, queued: QueuedEvent, deps: OnboardingDeps) -> MemberRecord:
    link = deps.members.link(event.identity.key)
    member = deps.members.record_join(
        MemberJoin(
            member_id=member_id_for(event.identity, event.email),
            identity_key=event.identity.key,
            platform=event.identity.platform.value,
            joined_at=utc(event.joined_at),
            correlation_id=queued.correlation_id,
            email=event.email,
            name=event.name,
            marketing_consent=event.marketing_consent,
            active_before_join=link.last_active_at if link else None,
        )
    )
    deps.members.save_link(event.identity.key, member.member_id)
    # Activity processed while this join was on its way found no member and was noted on the link: apply it now.
    relinked = deps.members.link(event.identity.key)
    if relinked and relinked.last_active_at and member.activated_at is None:
        deps.members.mark_active(member.member_id, relinked.last_active_at)
        member = deps.members.get(member.member_id) or member
    return member


def _upsert(
    event: MemberJoined, member: MemberRecord, deps: OnboardingDeps, step: StepRecorder, *, forgotten_before: bool
) -> ListMember:
    assert event.email
    list_id = deps.rules.list_id
    wanted = consent.status_for_new_member(
        event, opted_out_before=member.opted_out_before, forgotten_before=forgotten_before
    )
    merge_fields = _merge_fields(event, member)
    try:
        answer = deps.mailing_list.upsert_member(list_id, event.email, status_if_new=wanted, merge_fields=merge_fields)
    except ComplianceState as refusal:
        if wanted != consent.SUBSCRIBED:
            raise
        step(Step.MAILCHIMP_UPSERT, Outcome.REFUSED, f"direct subscribe refused ({refusal.title}): asking for opt-in")
        answer = deps.mailing_list.upsert_member(
            list_id, event.email, status_if_new=consent.PENDING, merge_fields=merge_fields
        )
    why = "; a re-join after an erasure: double opt-in at most" if forgotten_before else ""
    step(Step.MAILCHIMP_UPSERT, Outcome.OK, f"upserted as {answer.status} (asked {wanted} if new{why})")

    upgrade = consent.upgrade_for_consent(
        answer.status, event, opted_out_before=member.opted_out_before, forgotten_before=forgotten_before
    )
    if upgrade:
        try:
            answer = deps.mailing_list.set_status(list_id, event.email, upgrade)
        except ComplianceState as refusal:
            if upgrade != consent.SUBSCRIBED:
                raise
            step(Step.MAILCHIMP_UPSERT, Outcome.REFUSED, f"subscribe refused ({refusal.title}): asking for opt-in")
            answer = deps.mailing_list.set_status(list_id, event.email, consent.PENDING)
        step(Step.MAILCHIMP_UPSERT, Outcome.OK, f"consent given: status now {answer.status}")
    return answer


def _merge_fields(event: MemberJoined, member: MemberRecord) -> dict[str, str]:
    first, _, last = (event.name or event.username or "").partition(" ")
    fields = {
        "FNAME": first,
        "LNAME": last,
        "PLATFORM": event.identity.platform.value,
        "JOINED": f"{member.joined_at:%Y-%m-%d}",  # the first join, on whichever platform
    }
    return {key: value for key, value in fields.items() if value}


def utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
