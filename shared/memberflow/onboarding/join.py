"""A member who joined lands in Mailchimp with the right status, merge fields and tags, starts the welcome journey
once, and enters the drip until they take part. A member the platform holds in membership screening is stored and
onboarded once they pass it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from memberflow.errors import ComplianceState, PermanentRefusal
from memberflow.events import MemberJoined, MemberScreeningPassed
from memberflow.members import IdentityLink, MemberJoin, MemberRecord, member_id_for
from memberflow.onboarding import consent
from memberflow.onboarding.rules import OnboardingRules
from memberflow.onboarding.welcome import enter_drip, start_welcome_journey
from memberflow.pipeline.envelope import QueuedEvent
from memberflow.ports import DueWorkIndex, ListMember, MailingList, MemberRepository
from memberflow.trace import Outcome, Step, StepRecorder, TraceRecorder, email_subject, identity_subject

OPT_IN = "opt-in"
"""The due-work queue of members who must confirm double opt-in."""
OPT_IN_FIRST_CHECK = timedelta(hours=1)


@dataclass
class OnboardingDeps:
    mailing_list: MailingList
    members: MemberRepository
    due_work: DueWorkIndex
    trace: TraceRecorder
    rules: OnboardingRules
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


def onboard_member(queued: QueuedEvent, deps: OnboardingDeps) -> dict[str, str]:
    event = queued.event
    assert isinstance(event, MemberJoined)
    step = StepRecorder.for_event(deps.trace, queued)
    if event.screening_pending:
        deps.members.hold_for_screening(event.identity.key, utc(event.joined_at))
    member, link = _remember_member(event, queued, deps)
    if link and link.in_screening:  # this join, or an earlier one of this platform identity that is still held
        step(
            Step.SKIPPED,
            Outcome.SKIPPED,
            f"{event.identity.platform} membership screening not passed yet: stored, onboarded once it is passed",
        )
        return {"result": "awaiting_screening"}
    return _onboard(event, member, deps, step)


def complete_screening(queued: QueuedEvent, deps: OnboardingDeps) -> dict[str, str]:
    """The member passed membership screening: onboard them with what their held joins told us. Their address came
    from the member, not from the platform, so consent leads to double opt-in."""
    event = queued.event
    assert isinstance(event, MemberScreeningPassed)
    key = event.identity.key
    # Written before the link is read; a join writes its hold before reading the link: whichever runs second sees
    # the other, so a join and its pass handled at the same time still onboard the member (at least) once.
    deps.members.pass_screening(key, utc(event.joined_at))
    link = deps.members.link(key)
    member = deps.members.get(link.member_id) if link and link.member_id else None
    if member is None or link is None:
        return {"result": "screening_noted_for_unknown_member"}  # the join, when it arrives, is onboarded at once
    if link.screening_since is None:
        return {"result": "not_in_screening"}  # e.g. a member the platform never held
    step = StepRecorder.for_event(
        deps.trace, queued, email_subject(member.email) if member.email else identity_subject(key)
    )
    if link.in_screening:
        step(Step.SKIPPED, Outcome.SKIPPED, "a later join is still in membership screening: waiting for it")
        return {"result": "awaiting_screening"}
    step(Step.SCREENING_PASSED, Outcome.OK, f"passed {event.identity.platform} membership screening")
    joined = MemberJoined(
        identity=event.identity,
        email=member.email,
        name=member.name,
        joined_at=member.joined_at,
        marketing_consent=member.marketing_consent,
        email_verified=False,
    )
    return _onboard(joined, member, deps, step)


def _onboard(event: MemberJoined, member: MemberRecord, deps: OnboardingDeps, step: StepRecorder) -> dict[str, str]:
    if not event.email:
        step(Step.SKIPPED, Outcome.SKIPPED, f"{event.identity.platform} gave no email: stored, not added to Mailchimp")
        return {"result": "stored_without_email"}

    try:
        list_member = _upsert(event, member, deps, step)
    except PermanentRefusal as refusal:  # compliance state, a forgotten or a fake address: this member's, for good
        deps.members.set_mailchimp_status(member.member_id, f"refused: {refusal.title}")
        step(Step.MAILCHIMP_UPSERT, Outcome.REFUSED, f"Mailchimp refused the member: {refusal}")
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


def _remember_member(
    event: MemberJoined, queued: QueuedEvent, deps: OnboardingDeps
) -> tuple[MemberRecord, IdentityLink | None]:
    """Store the join and link the platform identity to the member; the member and the link as they are now."""
    link = deps.members.link(event.identity.key)
    linked = link.member_id if link else None
    # A join without an address belongs to the member this identity is already linked to (who may have given an
    # address since, e.g. through the Discord relay's /newsletter); a join with one, to that address's member.
    member_id = member_id_for(event.identity, event.email) if event.email or not linked else linked
    member = deps.members.record_join(
        MemberJoin(
            member_id=member_id,
            identity_key=event.identity.key,
            platform=event.identity.platform.value,
            joined_at=utc(event.joined_at),
            correlation_id=queued.correlation_id,
            email=event.email,
            name=event.name,
            marketing_consent=event.marketing_consent,
            active_before_join=_activity_before_join(link, member_id, deps),
        )
    )
    deps.members.save_link(event.identity.key, member.member_id)
    # Activity processed while this join was on its way found no member and was noted on the link: apply it now.
    relinked = deps.members.link(event.identity.key)
    if relinked and relinked.last_active_at and member.activated_at is None:
        deps.members.mark_active(member.member_id, relinked.last_active_at)
        member = deps.members.get(member.member_id) or member
    return member, relinked


def _activity_before_join(link: IdentityLink | None, member_id: str, deps: OnboardingDeps) -> datetime | None:
    """Activity seen from this identity before: noted on the link, or recorded on the member the identity was
    linked to until now (a Discord member who took part before giving an address is already active)."""
    if link is None:
        return None
    if link.last_active_at or not link.member_id or link.member_id == member_id:
        return link.last_active_at
    previous = deps.members.get(link.member_id)
    return previous.last_active_at if previous else None


def _upsert(event: MemberJoined, member: MemberRecord, deps: OnboardingDeps, step: StepRecorder) -> ListMember:
    assert event.email
    list_id = deps.rules.list_id
    wanted = consent.status_for_new_member(event, opted_out_before=member.opted_out_before)
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
    step(Step.MAILCHIMP_UPSERT, Outcome.OK, f"upserted as {answer.status} (asked {wanted} if new)")

    upgrade = consent.upgrade_for_consent(answer.status, event, opted_out_before=member.opted_out_before)
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
