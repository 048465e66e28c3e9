"""A member who joined lands in Mailchimp with the right status, merge fields and tags, starts the welcome journey
once, and enters the drip until they take part. A platform that proves the member's address later, or consent
given after joining, moves the member on by the same consent rules. A member the platform holds in membership
screening is stored and onboarded once they pass it."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from memberflow import activity
from memberflow.errors import ComplianceState, ForgottenAddress, PermanentRefusal
from memberflow.events import (
    ConsentGiven,
    MemberAccountEvent,
    MemberEvent,
    MemberJoined,
    MemberScreeningPassed,
    MemberVerified,
)
from memberflow.ledger import ConsentEntry, ConsentLedger
from memberflow.members import IdentityLink, MemberJoin, MemberRecord, member_id_for
from memberflow.models import Platform
from memberflow.onboarding import consent
from memberflow.onboarding import consent_ledger as ledger
from memberflow.onboarding.consent import Facts
from memberflow.onboarding.consent_ledger import Basis, ConsentRules
from memberflow.onboarding.forgotten import drop_if_erased_later, latest_erasure
from memberflow.onboarding.rules import OnboardingRules
from memberflow.onboarding.welcome import enter_drip, start_welcome_journey
from memberflow.pipeline.envelope import QueuedEvent
from memberflow.ports import (
    ActivityLog,
    DueWorkIndex,
    ErasureParticipant,
    ListMember,
    MailingList,
    MemberRepository,
    SuppressionList,
)
from memberflow.trace import ErasableTrace, Outcome, Step, StepRecorder, email_subject, identity_subject

OPT_IN = "opt-in"
"""The due-work queue of members who must confirm double opt-in."""
OPT_IN_FIRST_CHECK = timedelta(hours=1)

GIVEN_NOW = "given_now"
"""The event is the member's consent, given when it says (a sign-up form's box, /newsletter): if they had
unsubscribed before, it asks Mailchimp for the re-opt-in."""
STANDING = "standing"
"""The event repeats a consent box that stays ticked in a profile (Discourse sends it with every profile edit, without
saying when it was ticked): it asks for the re-opt-in only if this platform never gave the member's consent before."""


@dataclass
class OnboardingDeps:
    mailing_list: MailingList
    members: MemberRepository
    due_work: DueWorkIndex
    trace: ErasableTrace
    rules: OnboardingRules
    suppressions: SuppressionList
    """Who asked to be forgotten (keyed hashes): consulted on every join, written by erasure."""
    ledger: ConsentLedger
    """Every consent change, appended: the member record's consent and Mailchimp's timestamps come from it."""
    consent_rules: ConsentRules = field(default_factory=ConsentRules)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    erasure_participants: tuple[ErasureParticipant, ...] = ()
    """Other automations that keep something about members (escalation: Zendesk); an erasure reaches them too."""
    activity: ActivityLog | None = None
    """The activity log (joins, Mailchimp, welcome, activity) for the health report; None: not recorded."""


def onboard_member(queued: QueuedEvent, deps: OnboardingDeps) -> dict[str, str]:
    event = queued.event
    assert isinstance(event, MemberJoined)
    forgotten = _forgotten(queued, event, deps)
    if forgotten is None:
        return {"result": "dropped_after_erasure"}
    step = StepRecorder.for_event(deps.trace, queued)
    if event.screening_pending:
        deps.members.hold_for_screening(event.identity.key, utc(event.joined_at))
    member, link = _remember_member(
        event, queued, deps, consented=event.marketing_consent, verified=event.email_verified
    )
    activity.note(
        deps.activity,
        activity.JOINED,
        member_id=member.member_id,
        platform=event.identity.platform.value,
        at=utc(event.joined_at),
        source_key=queued.idempotency_key,
        workspace=event.identity.workspace,
    )

    if event.awaiting_approval:
        return _skip(
            step,
            f"{event.identity.platform} must approve the member first: stored, onboarded once approved",
            "awaiting_approval",
        )
    if link and link.in_screening:  # this join, or an earlier one of this platform identity that is still held
        return _skip(
            step,
            f"{event.identity.platform} membership screening not passed yet: stored, onboarded once it is passed",
            "awaiting_screening",
        )
    if not event.email:
        return _skip(
            step,
            f"{event.identity.platform} gave no email: stored, not added to Mailchimp",
            "stored_without_email",
        )
    # An address this platform proved earlier (its confirmation may arrive before the join) counts as verified.
    verified = event.email_verified or event.identity.key in member.verified_identities
    facts = Facts(event.marketing_consent, verified)
    basis = join_basis(queued, event)
    return _settle(
        event,
        event.email,
        member,
        facts,
        deps,
        step,
        basis,
        tag=True,
        forgotten_before=forgotten,
        consent_kind=GIVEN_NOW if event.marketing_consent else None,
    )


def verify_member(queued: QueuedEvent, deps: OnboardingDeps) -> dict[str, str]:
    """The platform proved the member's address. A member already in Mailchimp gets what their consent allows now:
    a direct subscribe only where Mailchimp holds nothing that would make it a resubscribe or overrule its own
    confirmation (a `transactional` member who consented, or no record at all); `pending` stays pending until the
    member confirms Mailchimp's email, opted-out members keep their status. A member not onboarded yet (their join
    is on its way, or the platform has still to approve them) is only noted: their join acts on it."""
    event = queued.event
    assert isinstance(event, MemberVerified)
    forgotten = _forgotten(queued, event, deps)
    if forgotten is None:
        return {"result": "dropped_after_erasure"}
    step = StepRecorder.for_event(deps.trace, queued)
    onboarded = _onboarded(deps.members.get(member_id_for(event.identity, event.email)))
    member, _ = _remember_member(event, queued, deps, consented=event.marketing_consent, verified=True)
    if not onboarded:
        return _skip(
            step,
            f"address verified by {event.identity.platform}: noted, acted on when the member is onboarded",
            "verification_noted",
        )
    facts = Facts(event.marketing_consent, True)
    basis = basis_of(queued, queued.received_at)
    return _settle(
        event,
        event.email,
        member,
        facts,
        deps,
        step,
        basis,
        tag=False,
        forgotten_before=forgotten,
    )


def give_consent(queued: QueuedEvent, deps: OnboardingDeps) -> dict[str, str]:
    """The member agreed to marketing email after joining: a member stored without permission is upgraded by the
    consent rules (double opt-in unless this platform proved the address; never a resubscribe). A member we never
    saw join is onboarded now, like a join; one not onboarded yet is only noted. The welcome journey, if consent
    leads to it, starts at most once per member."""
    event = queued.event
    assert isinstance(event, ConsentGiven)
    forgotten = _forgotten(queued, event, deps)
    if forgotten is None:
        return {"result": "dropped_after_erasure"}
    step = StepRecorder.for_event(deps.trace, queued)
    known = deps.members.get(member_id_for(event.identity, event.email))
    member, _ = _remember_member(event, queued, deps, consented=True, verified=False)
    if known is not None and not _onboarded(known):
        return _skip(
            step,
            f"consent given on {event.identity.platform}: noted, acted on when the member is onboarded",
            "consent_noted",
        )
    verified = event.identity.key in member.verified_identities
    facts = Facts(True, verified)
    basis = basis_of(queued, queued.received_at)
    return _settle(
        event,
        event.email,
        member,
        facts,
        deps,
        step,
        basis,
        tag=known is None,
        forgotten_before=forgotten,
        consent_kind=STANDING,
    )


def complete_screening(queued: QueuedEvent, deps: OnboardingDeps) -> dict[str, str]:
    """The member passed membership screening: onboard them with what their held joins told us, as a join would be.
    Their address came from the member, not from the platform, so consent leads to double opt-in."""
    event = queued.event
    assert isinstance(event, MemberScreeningPassed)
    forgotten = _forgotten(queued, event, deps)
    if forgotten is None:
        return {"result": "dropped_after_erasure"}
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
        return _skip(step, "a later join is still in membership screening: waiting for it", "awaiting_screening")
    step(Step.SCREENING_PASSED, Outcome.OK, f"passed {event.identity.platform} membership screening")
    if not member.email:
        return _skip(
            step,
            f"{event.identity.platform} gave no email: stored, not added to Mailchimp",
            "stored_without_email",
        )
    joined = MemberJoined(
        identity=event.identity,
        email=member.email,
        name=member.name,
        joined_at=member.joined_at or event.joined_at,
        marketing_consent=member.marketing_consent,
        email_verified=False,
    )
    # The pass names the platform identity only; the address the member gave may have been erased before.
    forgotten_before = forgotten or latest_erasure(deps.suppressions, member.email, None) is not None
    facts = Facts(member.marketing_consent, False)
    # The consent came with the held join that passed (its own time), not with the member's first join anywhere.
    basis = basis_of(queued, event.joined_at)
    return _settle(
        joined,
        member.email,
        member,
        facts,
        deps,
        step,
        basis,
        tag=True,
        forgotten_before=forgotten_before,
        consent_kind=GIVEN_NOW if member.marketing_consent else None,
    )


def _forgotten(queued: QueuedEvent, event: MemberEvent, deps: OnboardingDeps) -> bool | None:
    """None when the event was received before the person's latest erasure (it is dropped); otherwise whether they
    asked to be forgotten before (a re-join then gets double opt-in at most)."""
    erasure = latest_erasure(deps.suppressions, event.email, event.identity.key)
    if drop_if_erased_later(queued, erasure, deps.trace):
        return None
    return erasure is not None


def basis_of(queued: QueuedEvent, at: datetime) -> Basis:
    """The event a consent decision rests on, and when the member made it (a join: `join_basis`; consent given
    later or a verification: when the platform told us)."""
    event = queued.event
    platform = event.identity.platform.value if isinstance(event, MemberEvent) else queued.source
    return Basis(platform, event.type, queued.idempotency_key, utc(at))


def join_basis(queued: QueuedEvent, event: MemberJoined) -> Basis:
    """A join's consent decision rests on the join, at the time the member gave (or did not give) the consent it
    carries: when they sent the form that asked (`consented_at`: a Discord /newsletter sign-up), else when they
    joined (a consent box on the sign-up form). Never the server join of a member who asked for the newsletter
    months later: the ledger's "when" and Mailchimp's `timestamp_signup` are the consent's time."""
    if event.consented_at is not None:
        return basis_of(queued, event.consented_at)
    if event.marketing_consent and event.email and event.identity.platform is Platform.DISCORD:
        # Queued before joins carried `consented_at`: the relay forwards a sign-up as it happens, so intake's
        # receipt is its time (the member's guild join may be months earlier).
        return basis_of(queued, queued.received_at)
    return basis_of(queued, event.joined_at)


def _skip(step: StepRecorder, detail: str, result: str) -> dict[str, str]:
    """A member event that leads to nothing now (held, noted, or nothing to do): recorded, and said."""
    step(Step.SKIPPED, Outcome.SKIPPED, detail)
    return {"result": result}


def _onboarded(member: MemberRecord | None) -> bool:
    """The member has been handed to Mailchimp before (whatever it answered)."""
    return member is not None and member.mailchimp_status is not None


def _settle(
    event: MemberAccountEvent,
    email: str,
    member: MemberRecord,
    facts: consent.Facts,
    deps: OnboardingDeps,
    step: StepRecorder,
    basis: Basis,
    *,
    tag: bool,
    forgotten_before: bool,
    consent_kind: str | None = None,
) -> dict[str, str]:
    """Give the member the Mailchimp status their consent allows, then what follows from it: the opt-in wait for a
    pending member, the welcome journey (once) and the drip for a subscribed one. The decision is appended to the
    consent ledger, from which the member record's consent is derived. `consent_kind` (`GIVEN_NOW`, `STANDING`, or
    None: the event gives no consent of its own) decides whether an unsubscribed member is asking again."""
    # The member's ledger as it is before this decision: read once, for the upsert's consent fields and the entry.
    entries = tuple(deps.ledger.entries(member.member_id))
    asked_again = (
        consent_kind is not None
        and facts.marketing_consent
        and ledger.asks_again(entries, basis, standing=consent_kind == STANDING)
    )
    try:
        list_member, upgraded, reopt_in = _upsert(
            event,
            email,
            member,
            facts,
            deps,
            step,
            basis,
            forgotten_before=forgotten_before,
            asked_again=asked_again,
            entries=entries,
        )
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
    ledger.settle(
        deps.ledger,
        deps.members,
        member.member_id,
        list_member.status,
        facts.marketing_consent,
        basis,
        deps.consent_rules,
        upgraded=upgraded,
        reopt_in=reopt_in,
        entries=entries,
    )
    platform = event.identity.platform.value
    if member.mailchimp_status is None and not opted_out:
        activity.note(
            deps.activity,
            activity.MAILCHIMP_ADDED,
            member_id=member.member_id,
            platform=platform,
            at=deps.clock(),
            source_key=basis.event_id,  # the event's idempotency key
        )
    if opted_out:
        stale = consent_kind is not None and facts.marketing_consent and not asked_again
        why = "; the consent this event carries is no new request (given before the opt-out, or repeated)"
        step(
            Step.SKIPPED,
            Outcome.SKIPPED,
            f"member is {list_member.status} in Mailchimp (opted out earlier): status kept, no welcome journey"
            + (why if stale and list_member.status == consent.UNSUBSCRIBED else ""),
        )
        return {"result": "kept_opted_out", "status": list_member.status}

    if tag:
        tags = join_tags(event, member)
        deps.mailing_list.add_tags(deps.rules.list_id, email, tags)
        step(Step.TAGGED, Outcome.OK, "tags " + ", ".join(tags))

    now = deps.clock()
    if list_member.status == consent.PENDING:
        # The scheduled run re-checks Mailchimp and welcomes the member once they have confirmed.
        # A repeated join (a redelivery, a second platform) does not restart a wait that is already running.
        deps.due_work.schedule(
            OPT_IN, member.member_id, now + OPT_IN_FIRST_CHECK, {"awaiting_since": now.isoformat()}, keep_existing=True
        )
        again = ": Mailchimp's re-opt-in email, as the member had unsubscribed" if reopt_in else ""
        step(
            Step.SKIPPED,
            Outcome.SKIPPED,
            f"welcome journey waits for the double opt-in confirmation (status pending{again})",
        )
        return {"result": "awaiting_opt_in", "status": list_member.status}
    if not consent.receives_marketing(list_member.status):
        step(
            Step.SKIPPED,
            Outcome.SKIPPED,
            f"welcome journey not started: no marketing consent (status {list_member.status})",
        )
        return {"result": "onboarded_without_marketing", "status": list_member.status}

    started = start_welcome_journey(
        member.member_id,
        email,
        deps.rules.welcome_journey,
        deps.mailing_list,
        deps.members,
        step,
        now,
        list_id=deps.rules.list_id,
    )
    if started == "started":
        activity.note(
            deps.activity,
            activity.WELCOMED,
            member_id=member.member_id,
            platform=platform,
            at=now,
            source_key=basis.event_id,  # the event's idempotency key
        )
    enter_drip(deps.due_work, member.member_id, deps.rules.drip_step_days, now)
    return {"result": "onboarded", "status": list_member.status, "journey": started}


def _remember_member(
    event: MemberAccountEvent, queued: QueuedEvent, deps: OnboardingDeps, *, consented: bool, verified: bool
) -> tuple[MemberRecord, IdentityLink | None]:
    """Store what the platform said and link the platform identity to the member; the member and the link as they
    are now."""
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
            marketing_consent=consented,
            address_verified=verified and bool(event.email),
            active_before_join=_activity_before_join(link, member_id, deps),
        )
    )
    # Activity processed while this join was on its way found no member and was noted on the link: apply it now.
    relinked = deps.members.save_link(event.identity.key, member.member_id)
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


def _upsert(
    event: MemberAccountEvent,
    email: str,
    member: MemberRecord,
    facts: consent.Facts,
    deps: OnboardingDeps,
    step: StepRecorder,
    basis: Basis,
    *,
    forgotten_before: bool,
    asked_again: bool,
    entries: Sequence[ConsentEntry],
) -> tuple[ListMember, bool, bool]:
    """The member's status in Mailchimp now, whether consent given after joining upgraded it, and whether an
    unsubscribed member who asked again was sent Mailchimp's re-opt-in (`status: pending` on the existing member:
    `status_if_new` alone changes nothing for them)."""
    list_id = deps.rules.list_id
    wanted = consent.status_for_new_member(
        facts, opted_out_before=member.opted_out_before, forgotten_before=forgotten_before
    )
    merge_fields = merge_fields_for(event, member)

    def consent_fields(status: str) -> dict[str, object]:
        return ledger.mailchimp_fields(
            deps.ledger, member.member_id, status, facts.marketing_consent, basis, deps.consent_rules, entries=entries
        )

    try:
        answer = deps.mailing_list.upsert_member(
            list_id, email, status_if_new=wanted, merge_fields=merge_fields, consent_fields=consent_fields(wanted)
        )
    except ComplianceState as refusal:
        if wanted != consent.SUBSCRIBED:
            raise
        step(Step.MAILCHIMP_UPSERT, Outcome.REFUSED, f"direct subscribe refused ({refusal.title}): asking for opt-in")
        answer = deps.mailing_list.upsert_member(
            list_id,
            email,
            status_if_new=consent.PENDING,
            merge_fields=merge_fields,
            consent_fields=consent_fields(consent.PENDING),
        )
    why = "; a re-join after an erasure: double opt-in at most" if forgotten_before else ""
    step(Step.MAILCHIMP_UPSERT, Outcome.OK, f"upserted as {answer.status} (asked {wanted} if new{why})")

    upgrade = consent.upgrade_for_consent(
        answer.status, facts, opted_out_before=member.opted_out_before, forgotten_before=forgotten_before
    )
    if upgrade:

        def refused(refusal: ComplianceState) -> None:
            step(Step.MAILCHIMP_UPSERT, Outcome.REFUSED, f"subscribe refused ({refusal.title}): asking for opt-in")

        answer = set_upgraded_status(deps.mailing_list, list_id, email, upgrade, consent_fields, refused)
        step(Step.MAILCHIMP_UPSERT, Outcome.OK, f"consent given: status now {answer.status}")
        return answer, True, False
    reopt_in = consent.reopt_in_for_consent(answer.status, facts, asked_again=asked_again)
    if reopt_in is None:
        return answer, False, False
    try:
        answer = deps.mailing_list.set_status(list_id, email, reopt_in, consent_fields(reopt_in))
    except ComplianceState as refusal:  # e.g. under compliance review: the member stays unsubscribed
        step(Step.MAILCHIMP_UPSERT, Outcome.REFUSED, f"re-opt-in refused ({refusal.title}): status kept")
        return answer, False, False
    step(
        Step.MAILCHIMP_UPSERT,
        Outcome.OK,
        f"asked again after unsubscribing: status now {answer.status} (Mailchimp emails the re-opt-in; never "
        "subscribed before the member confirms it)",
    )
    return answer, False, answer.status == consent.PENDING


def join_tags(event: MemberAccountEvent, member: MemberRecord) -> list[str]:
    """The tags a join gives: its platform, and the cohort of the member's first join."""
    return [f"platform:{event.identity.platform}", f"cohort:{member.joined_at or event.joined_at:%Y-%m}"]


def merge_fields_for(event: MemberAccountEvent, member: MemberRecord) -> dict[str, str]:
    first, _, last = (event.name or event.username or "").partition(" ")
    fields = {
        "FNAME": first,
        "LNAME": last,
        "PLATFORM": event.identity.platform.value,
        "JOINED": f"{member.joined_at or event.joined_at:%Y-%m-%d}",  # the first join, on whichever platform
    }
    return {key: value for key, value in fields.items() if value}


def utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def set_upgraded_status(
    mailing_list: MailingList,
    list_id: str,
    email: str,
    upgrade: str,
    consent_fields: Callable[[str], Mapping[str, object]],
    refused: Callable[[ComplianceState], None] = lambda refusal: None,
) -> ListMember:
    """Give an existing member the status their consent earns (`consent.upgrade_for_consent`), with its consent
    fields. A subscribe Mailchimp refuses for the address's compliance state asks for double opt-in instead."""
    try:
        return mailing_list.set_status(list_id, email, upgrade, consent_fields(upgrade))
    except ComplianceState as refusal:
        if upgrade != consent.SUBSCRIBED:
            raise
        refused(refusal)
        return mailing_list.set_status(list_id, email, consent.PENDING, consent_fields(consent.PENDING))
