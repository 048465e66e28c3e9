"""Onboarding: a member who joined lands in Mailchimp with the right status, merge fields and tags, starts the
welcome journey once, and enters the drip until they take part."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from memberflow import consent
from memberflow.adapters.mailchimp import ComplianceState, MailchimpClient, MailchimpMember, PermanentRefusal
from memberflow.adapters.member_store import MemberJoin, MemberRecord, MemberStore
from memberflow.models import MemberActive, MemberJoined, QueuedEvent
from memberflow.privacy import email_key
from memberflow.trace import (
    Outcome,
    Step,
    StepRecorder,
    TraceRecorder,
    email_subject,
    identity_subject,
)
from memberflow.welcome import WelcomeJourney, enter_drip, start_welcome_journey

OPT_IN_FIRST_CHECK = timedelta(hours=1)

WORST_CASE_MS_PER_EVENT = 45_000
"""Up to four Mailchimp calls, each at most two attempts of 5 s: an event is only started with this much time
left in the invocation (the function timeout is 60 s)."""


@dataclass(frozen=True)
class OnboardingRules:
    list_id: str
    welcome_journey: WelcomeJourney
    drip_step_days: tuple[int, ...] = (1, 3, 7)


@dataclass
class OnboardingDeps:
    mailchimp: MailchimpClient
    members: MemberStore
    trace: TraceRecorder
    rules: OnboardingRules
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


def member_id_for(event: MemberJoined | MemberActive) -> str:
    return email_key(event.email) if event.email else event.identity.key


def handle_member_event(queued: QueuedEvent, deps: OnboardingDeps) -> dict[str, str]:
    """The unit of work for one queued event; what it returns is stored as the idempotency record's result."""
    if isinstance(queued.event, MemberJoined):
        return onboard_member(queued, queued.event, deps)
    return record_activity(queued, queued.event, deps)


def onboard_member(queued: QueuedEvent, event: MemberJoined, deps: OnboardingDeps) -> dict[str, str]:
    step = StepRecorder.for_event(deps.trace, queued)
    member = _remember_member(event, queued, deps)

    if not event.email:
        step(Step.SKIPPED, Outcome.SKIPPED, f"{event.identity.platform} gave no email: stored, not added to Mailchimp")
        return {"result": "stored_without_email"}

    try:
        mailchimp_member = _upsert(event, member, deps, step)
    except PermanentRefusal as refusal:
        deps.members.set_mailchimp_status(member.member_id, f"refused: {refusal.title}")
        step(Step.MAILCHIMP_UPSERT, Outcome.REFUSED, f"Mailchimp refused the member: {refusal}")
        return {"result": "refused", "reason": refusal.title}

    opted_out = mailchimp_member.status in consent.OPTED_OUT
    deps.members.set_mailchimp_status(member.member_id, mailchimp_member.status, opted_out=opted_out)
    if opted_out:
        step(
            Step.SKIPPED,
            Outcome.SKIPPED,
            f"member is {mailchimp_member.status} in Mailchimp (opted out earlier): status kept, no welcome journey",
        )
        return {"result": "kept_opted_out", "status": mailchimp_member.status}

    tags = [f"platform:{event.identity.platform}", f"cohort:{member.joined_at:%Y-%m}"]
    deps.mailchimp.add_tags(deps.rules.list_id, event.email, tags)
    step(Step.TAGGED, Outcome.OK, "tags " + ", ".join(tags))

    now = deps.clock()
    if mailchimp_member.status == consent.PENDING:
        # The scheduled run re-checks Mailchimp and welcomes the member once they have confirmed.
        deps.members.await_opt_in(member.member_id, since=now, check_at=now + OPT_IN_FIRST_CHECK)
        step(Step.SKIPPED, Outcome.SKIPPED, "welcome journey waits for the double opt-in confirmation (status pending)")
        return {"result": "awaiting_opt_in", "status": mailchimp_member.status}
    if not consent.receives_marketing(mailchimp_member.status):
        step(
            Step.SKIPPED,
            Outcome.SKIPPED,
            f"welcome journey not started: no marketing consent (status {mailchimp_member.status})",
        )
        return {"result": "onboarded_without_marketing", "status": mailchimp_member.status}

    started = start_welcome_journey(
        member.member_id, event.email, deps.rules.welcome_journey, deps.mailchimp, deps.members, step, now
    )
    enter_drip(deps.members, member.member_id, deps.rules.drip_step_days, now)
    return {"result": "onboarded", "status": mailchimp_member.status, "journey": started}


def record_activity(queued: QueuedEvent, event: MemberActive, deps: OnboardingDeps) -> dict[str, str]:
    """Activity marks the member active and stops their drip."""
    link = deps.members.link(event.identity.key)
    member_id = link.member_id if link and link.member_id else (email_key(event.email) if event.email else None)
    if member_id is None or deps.members.get(member_id) is None:
        deps.members.note_unlinked_activity(event.identity.key, _utc(event.active_at))
        return {"result": "activity_noted_for_unknown_member"}
    if deps.members.mark_active(member_id, _utc(event.active_at)):
        subject = identity_subject(event.identity.key)
        member = deps.members.get(member_id)
        if member and member.email:
            subject = email_subject(member.email)
        StepRecorder.for_event(deps.trace, queued, subject)(
            Step.ACTIVATED, Outcome.OK, f"first {event.activity} on {event.identity.platform}: drip stopped"
        )
        return {"result": "activated"}
    return {"result": "activity_recorded"}


def _remember_member(event: MemberJoined, queued: QueuedEvent, deps: OnboardingDeps) -> MemberRecord:
    link = deps.members.link(event.identity.key)
    member = deps.members.record_join(
        MemberJoin(
            member_id=member_id_for(event),
            identity_key=event.identity.key,
            platform=event.identity.platform.value,
            joined_at=_utc(event.joined_at),
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


def _upsert(event: MemberJoined, member: MemberRecord, deps: OnboardingDeps, step: StepRecorder) -> MailchimpMember:
    assert event.email
    list_id = deps.rules.list_id
    wanted = consent.status_for_new_member(event, opted_out_before=member.opted_out_before)
    merge_fields = _merge_fields(event, member)
    try:
        answer = deps.mailchimp.upsert_member(list_id, event.email, status_if_new=wanted, merge_fields=merge_fields)
    except ComplianceState as refusal:
        if wanted != consent.SUBSCRIBED:
            raise
        step(Step.MAILCHIMP_UPSERT, Outcome.REFUSED, f"direct subscribe refused ({refusal.title}): asking for opt-in")
        answer = deps.mailchimp.upsert_member(
            list_id, event.email, status_if_new=consent.PENDING, merge_fields=merge_fields
        )
    step(Step.MAILCHIMP_UPSERT, Outcome.OK, f"upserted as {answer.status} (asked {wanted} if new)")

    upgrade = consent.upgrade_for_consent(answer.status, event, opted_out_before=member.opted_out_before)
    if upgrade:
        try:
            answer = deps.mailchimp.set_status(list_id, event.email, upgrade)
        except ComplianceState as refusal:
            if upgrade != consent.SUBSCRIBED:
                raise
            step(Step.MAILCHIMP_UPSERT, Outcome.REFUSED, f"subscribe refused ({refusal.title}): asking for opt-in")
            answer = deps.mailchimp.set_status(list_id, event.email, consent.PENDING)
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


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
