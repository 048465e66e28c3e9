"""Onboarding's rules on the in-memory fakes: joining, consent, the welcome journey, activity, double opt-in and
the drip, in milliseconds and without moto or the sandbox."""

from __future__ import annotations

from datetime import timedelta

import pytest

from memberflow.errors import ForgottenAddress, NotFound, PermanentRefusal, ResourceGone, is_service_failure
from memberflow.events import MemberJoined, MemberScreeningPassed
from memberflow.members import member_id_for
from memberflow.models import MemberIdentity, Platform
from memberflow.onboarding.activity import record_activity
from memberflow.onboarding.drip import DripDeps, DripReport, drip_tag, send_due_drip_steps
from memberflow.onboarding.join import OPT_IN, OPT_IN_FIRST_CHECK, OnboardingDeps, complete_screening, onboard_member
from memberflow.onboarding.rules import OnboardingRules, WelcomeJourney
from memberflow.onboarding.welcome import DRIP
from memberflow.pipeline.envelope import QueuedEvent
from memberflow.pipeline.policy import Delivery, Park, RetryPolicy, decide
from memberflow.trace import Outcome, Step, email_subject
from support.fakes import (
    CountingReads,
    FakeMailingList,
    MemoryDueWork,
    MemoryLedger,
    MemoryMembers,
    MemorySuppressions,
    MemoryTrace,
    unavailable,
)
from support.queue import JOINED, active, joined

ADA = "ada@example.org"
LIST_ID = "list1"
JOURNEY = WelcomeJourney("j1", "s1")
NOW = JOINED + timedelta(minutes=5)
"""When the onboarding function handles the join."""
DAY = timedelta(days=1)


class World:
    """One community's onboarding on the fakes."""

    def __init__(self) -> None:
        self.mailing_list = FakeMailingList()
        self.members = MemoryMembers()
        self.due_work = MemoryDueWork(self.members)
        self.trace = MemoryTrace()
        self.suppressions = MemorySuppressions()
        self.ledger = MemoryLedger(self.members)
        self.rules = OnboardingRules(list_id=LIST_ID, welcome_journey=JOURNEY)
        self.deps = OnboardingDeps(
            mailing_list=self.mailing_list,
            members=self.members,
            due_work=self.due_work,
            trace=self.trace,
            rules=self.rules,
            suppressions=self.suppressions,
            ledger=self.ledger,
            clock=lambda: NOW,
        )
        self.drip_deps = DripDeps(
            mailing_list=self.mailing_list,
            members=self.members,
            due_work=self.due_work,
            trace=self.trace,
            list_id=LIST_ID,
            step_days=self.rules.drip_step_days,
            welcome_journey=JOURNEY,
            ledger=self.ledger,
        )
        self._runs = 0

    def join(self, queued: QueuedEvent) -> dict[str, str]:
        return onboard_member(queued, self.deps)

    def activity(self, queued: QueuedEvent) -> dict[str, str]:
        return record_activity(queued, self.deps)

    def run(self, at) -> DripReport:
        self._runs += 1
        return send_due_drip_steps(at, f"run-{self._runs}", self.drip_deps)

    def status(self, email: str = ADA) -> str | None:
        return self.mailing_list.members.get(email)

    def tags(self, email: str = ADA) -> list[str]:
        return self.mailing_list.tags.get(email, [])

    def drip_tags(self, email: str = ADA) -> list[str]:
        return [tag for tag in self.tags(email) if tag.startswith("onboarding-day-")]

    def steps(self, email: str = ADA) -> list[tuple[Step, Outcome]]:
        return self.trace.steps(email_subject(email))

    def due(self, queue: str, at) -> list[str]:
        return [work.member_id for work in self.due_work.due(queue, at)]


@pytest.fixture
def world() -> World:
    return World()


def unverified(queued: QueuedEvent) -> QueuedEvent:
    event = queued.event.model_copy(update={"email_verified": False})
    return queued.model_copy(update={"event": event})


def ada_id() -> str:
    return member_id_for(joined(ADA, consent=True).event.identity, ADA)


# -- joining -----------------------------------------------------------------------------------------------------


def test_consenting_member_is_subscribed_tagged_welcomed_once_and_enters_the_drip(world):
    result = world.join(joined(ADA, consent=True, platform=Platform.SLACK))

    assert result["result"] == "onboarded" and result["journey"] == "started"
    assert world.status() == "subscribed"
    assert set(world.tags()) == {"platform:slack", "cohort:2026-11"}
    assert world.mailing_list.journeys == [ADA]
    assert world.due(DRIP, NOW + DAY) == [ada_id()]
    assert world.due(DRIP, NOW + DAY - timedelta(seconds=1)) == []
    assert (Step.JOURNEY_STARTED, Outcome.OK) in world.steps()
    assert world.members.get(ada_id()).mailchimp_status == "subscribed"


def test_member_without_consent_is_stored_transactional_with_no_journey_and_no_drip(world):
    result = world.join(joined(ADA, consent=False))

    assert result == {"result": "onboarded_without_marketing", "status": "transactional"}
    assert world.status() == "transactional"
    assert world.mailing_list.journeys == []
    assert world.due(DRIP, NOW + 30 * DAY) == []
    assert (Step.JOURNEY_STARTED, Outcome.OK) not in world.steps()


def test_unverified_address_with_consent_gets_double_opt_in_and_a_recheck_not_a_journey(world):
    result = world.join(unverified(joined(ADA, consent=True)))

    assert result["result"] == "awaiting_opt_in"
    assert world.status() == "pending"
    assert world.mailing_list.journeys == []
    assert world.due(OPT_IN, NOW + OPT_IN_FIRST_CHECK) == [ada_id()]
    assert world.due(DRIP, NOW + 30 * DAY) == []


def test_compliance_state_address_falls_back_to_double_opt_in_when_direct_subscribe_is_refused(world):
    world.mailing_list.compliance_state.add(ADA)

    result = world.join(joined(ADA, consent=True))

    assert result["result"] == "awaiting_opt_in"
    assert world.status() == "pending"
    assert world.mailing_list.calls[:2] == ["upsert", "upsert"]
    assert world.mailing_list.journeys == []
    assert world.due(OPT_IN, NOW + OPT_IN_FIRST_CHECK) == [ada_id()]
    upserts = [outcome for step, outcome in world.steps() if step is Step.MAILCHIMP_UPSERT]
    assert upserts == [Outcome.REFUSED, Outcome.OK]


def test_forgotten_address_is_refused_for_good_without_tags_or_journey(world):
    world.mailing_list.failures.append(
        ForgottenAddress("Forgotten Email Not Subscribed", "a***@e***.org was permanently deleted", 400)
    )

    result = world.join(joined(ADA, consent=True))

    assert result == {"result": "refused", "reason": "Forgotten Email Not Subscribed"}
    assert world.tags() == [] and world.mailing_list.journeys == []
    assert world.members.get(ada_id()).mailchimp_status == "refused: Forgotten Email Not Subscribed"
    assert (Step.MAILCHIMP_UPSERT, Outcome.REFUSED) in world.steps()


@pytest.mark.parametrize("status", ["unsubscribed", "cleaned"])
def test_member_who_opted_out_before_and_joins_without_consent_keeps_their_status_and_gets_no_journey(world, status):
    world.mailing_list.members[ADA] = status

    result = world.join(joined(ADA, consent=False))

    assert result == {"result": "kept_opted_out", "status": status}
    assert world.status() == status and "set_status" not in world.mailing_list.calls
    assert world.mailing_list.journeys == [] and world.tags() == []
    assert world.due(DRIP, NOW + 30 * DAY) == []
    assert world.members.get(ada_id()).opted_out_before


def test_an_unsubscribed_member_who_consents_on_joining_is_asked_to_confirm_again_never_subscribed(world):
    """Consent from a member who opted out before leads to double opt-in: `status: pending` on the existing member
    (Mailchimp's re-opt-in email), since `status_if_new` changes nothing for them; no journey before they confirm."""
    world.mailing_list.members[ADA] = "unsubscribed"

    result = world.join(joined(ADA, consent=True))

    assert result == {"result": "awaiting_opt_in", "status": "pending"}
    assert world.status() == "pending"
    assert world.mailing_list.calls[:2] == ["upsert", "set_status"]
    assert world.mailing_list.journeys == [] and world.due(DRIP, NOW + 30 * DAY) == []
    assert world.due(OPT_IN, NOW + OPT_IN_FIRST_CHECK) == [ada_id()]
    assert world.members.get(ada_id()).opted_out_before  # never a direct subscribe for them again


def test_a_cleaned_member_who_consents_on_joining_is_never_re_added(world):
    world.mailing_list.members[ADA] = "cleaned"

    result = world.join(joined(ADA, consent=True))

    assert result == {"result": "kept_opted_out", "status": "cleaned"}
    assert "set_status" not in world.mailing_list.calls and world.mailing_list.journeys == []


def test_consent_given_later_on_a_second_platform_upgrades_transactional_to_subscribed_and_welcomes_once(world):
    first = world.join(joined(ADA, consent=False, platform=Platform.SLACK))
    second = world.join(joined(ADA, consent=True, platform=Platform.DISCOURSE))
    third = world.join(joined(ADA, consent=True, platform=Platform.DISCORD))

    assert first["status"] == "transactional"
    assert second["result"] == "onboarded" and second["journey"] == "started"
    assert third["journey"] == "already_started"
    assert world.status() == "subscribed"
    assert world.mailing_list.journeys == [ADA]
    assert "set_status" in world.mailing_list.calls
    member = world.members.get(ada_id())
    assert member.platforms == ["discord", "discourse", "slack"]
    assert member.joined_at == JOINED
    assert world.due(DRIP, NOW + DAY) == [ada_id()]


def test_duplicate_join_never_starts_a_second_journey_or_a_second_drip(world):
    queued = joined(ADA, consent=True, user_id="u-dup", key="slack:w1:join:u-dup")

    world.join(queued)
    again = world.join(queued)

    assert again["journey"] == "already_started"
    assert world.mailing_list.journeys == [ADA]
    assert world.due(DRIP, NOW + DAY) == [ada_id()]
    assert (Step.JOURNEY_STARTED, Outcome.SKIPPED) in world.steps()


# -- activity ----------------------------------------------------------------------------------------------------


def test_activity_seen_before_the_join_counts_as_active_so_the_member_never_enters_the_drip(world):
    queued = joined(ADA, consent=True, user_id="u-early")

    noted = world.activity(active(queued.event.identity))
    result = world.join(queued)

    assert noted == {"result": "activity_noted_for_unknown_member"}
    assert result["result"] == "onboarded"
    assert world.members.get(ada_id()).activated_at is not None
    assert world.due(DRIP, NOW + 30 * DAY) == []
    world.run(NOW + 8 * DAY)
    assert world.drip_tags() == []


def test_first_activity_after_the_join_activates_the_member(world):
    queued = joined(ADA, consent=True, user_id="u-later")
    world.join(queued)

    assert world.activity(active(queued.event.identity)) == {"result": "activated"}
    assert world.activity(active(queued.event.identity, "reaction")) == {"result": "activity_recorded"}
    assert (Step.ACTIVATED, Outcome.OK) in world.steps()


# -- the drip ----------------------------------------------------------------------------------------------------


def test_drip_sends_day_1_then_day_3_and_nothing_before_a_step_is_due(world):
    world.join(joined(ADA, consent=True))

    assert world.run(NOW + DAY - timedelta(minutes=1)).sent == 0
    first = world.run(NOW + DAY)
    early = world.run(NOW + 2 * DAY)
    second = world.run(NOW + 3 * DAY)

    assert first.tags == {drip_tag(1): 1}
    assert early.sent == 0
    assert second.tags == {drip_tag(3): 1}
    assert world.drip_tags() == ["onboarding-day-1", "onboarding-day-3"]
    assert [o for s, o in world.steps() if s is Step.DRIP_STEP] == [Outcome.OK, Outcome.OK]


def test_drip_completes_after_its_last_step_and_sends_nothing_more(world):
    world.join(joined(ADA, consent=True))

    reports = [world.run(NOW + days * DAY) for days in (1, 3, 7, 14)]

    assert world.drip_tags() == ["onboarding-day-1", "onboarding-day-3", "onboarding-day-7"]
    assert reports[2].completed == 1
    assert reports[3].sent == 0
    assert world.due(DRIP, NOW + 60 * DAY) == []


def test_drip_never_reaches_a_member_who_became_active(world):
    queued = joined(ADA, consent=True, user_id="u-drip")
    world.join(queued)
    world.run(NOW + DAY)

    world.activity(active(queued.event.identity))
    later = world.run(NOW + 3 * DAY)
    world.run(NOW + 7 * DAY)

    assert later.sent == 0
    assert world.drip_tags() == ["onboarding-day-1"]
    assert world.due(DRIP, NOW + 60 * DAY) == []


def test_drip_reaches_inactive_members_and_skips_active_ones_in_the_same_run(world):
    bob = "bob@example.org"
    ada = joined(ADA, consent=True, user_id="u-ada")
    world.join(ada)
    world.join(joined(bob, consent=True, user_id="u-bob"))
    world.activity(active(ada.event.identity))

    report = world.run(NOW + DAY)

    assert report.sent == 1
    assert world.drip_tags(bob) == ["onboarding-day-1"]
    assert world.drip_tags(ADA) == []


# -- double opt-in -----------------------------------------------------------------------------------------------


def test_opt_in_confirmed_later_is_welcomed_by_the_scheduled_run_and_enters_the_drip(world):
    world.join(unverified(joined(ADA, consent=True)))
    world.mailing_list.members[ADA] = "subscribed"  # the member clicked Mailchimp's confirmation link
    check = NOW + OPT_IN_FIRST_CHECK

    report = world.run(check)
    again = world.run(check + timedelta(hours=1))

    assert report.opt_ins_confirmed == 1 and again.opt_ins_confirmed == 0
    assert world.mailing_list.journeys == [ADA]
    assert world.members.get(ada_id()).mailchimp_status == "subscribed"
    assert world.due(OPT_IN, check + 30 * DAY) == []
    assert world.due(DRIP, check + DAY) == [ada_id()]
    world.run(check + DAY)
    assert world.drip_tags() == ["onboarding-day-1"]


def test_a_repeated_join_does_not_restart_the_opt_in_wait(world):
    world.join(unverified(joined(ADA, consent=True)))
    [first] = [w for (q, _), w in world.due_work.items.items() if q == "opt-in"]
    world.join(unverified(joined(ADA, consent=True)))
    [again] = [w for (q, _), w in world.due_work.items.items() if q == "opt-in"]
    assert again == first


def test_a_refused_welcome_journey_for_a_confirmed_opt_in_does_not_stop_the_run_for_everyone(world):
    world.join(unverified(joined(ADA, consent=True)))
    world.join(joined("bob@example.org", consent=True))
    world.mailing_list.members[ADA] = "subscribed"

    def refuse(journey_id: str, step_id: str, email: str) -> None:
        raise PermanentRefusal("Invalid Resource", "the journey refused the contact", 400)

    world.mailing_list.trigger_journey = refuse

    world.run(NOW + DAY)

    assert world.drip_tags("bob@example.org") == ["onboarding-day-1"]


class JourneysAnswer404(FakeMailingList):
    """Mailchimp's journey trigger: one 404 for a journey or step it does not know and for a contact not in the
    audience. `gone` is what an admin did to the member between the upsert and the trigger."""

    def __init__(self, *, journey_exists: bool = True, gone: str | None = None) -> None:
        super().__init__()
        self.journey_exists = journey_exists
        self.gone = gone

    def trigger_journey(self, journey_id: str, step_id: str, email: str) -> None:
        key = email.lower()
        if self.gone == "deleted":
            self.members.pop(key, None)
        elif self.gone == "archived":
            self.members[key] = "archived"
        if not self.journey_exists or self.members.get(key) in (None, "archived"):
            self.calls.append("journey")
            raise NotFound("Mailchimp 404 Resource Not Found: The requested resource could not be found.", 404)
        super().trigger_journey(journey_id, step_id, email)


# (id, the fake's answer to the trigger, the error the join ends with, parked as)
JOURNEY_404S = [
    ("member-deleted-since-the-upsert", {"gone": "deleted"}, ResourceGone, "refused"),
    ("member-archived-since-the-upsert", {"gone": "archived"}, ResourceGone, "refused"),
    ("journey-or-step-missing", {"journey_exists": False}, NotFound, None),
]


@pytest.mark.parametrize(
    ("mailchimp", "expected", "parked"), [c[1:] for c in JOURNEY_404S], ids=[c[0] for c in JOURNEY_404S]
)
def test_a_journey_404_is_the_members_refusal_only_when_the_member_left_the_audience(
    world, mailchimp, expected, parked
):
    world.mailing_list = world.deps.mailing_list = JourneysAnswer404(**mailchimp)

    with pytest.raises(expected) as raised:
        world.join(joined(ADA, consent=True))

    assert type(raised.value) is expected
    assert world.mailing_list.calls[-2:] == ["journey", "status"]  # whose 404: read from the member's record
    assert world.members.get(ada_id()).journey_started_at is None  # the claim is released
    # A member's refusal is parked at once with its reason and never backs the consumer off; a missing journey is
    # the account's: deferred with everyone else's work until an operator fixes it.
    assert is_service_failure(raised.value) is (parked is None)
    decision = decide(raised.value, Delivery(receive_count=1), RetryPolicy(), service_failing=True)
    assert (decision.kind if isinstance(decision, Park) else None) == parked


def test_a_confirmed_opt_in_who_left_the_audience_is_refused_and_the_run_goes_on(world):
    mailchimp = world.mailing_list = world.drip_deps.mailing_list = world.deps.mailing_list = JourneysAnswer404()
    world.join(unverified(joined(ADA, consent=True)))
    world.join(joined("bob@example.org", consent=True))
    mailchimp.members[ADA] = "subscribed"  # Ada confirms, then an admin deletes her before the run welcomes her
    mailchimp.gone = "deleted"

    report = world.run(NOW + DAY)

    assert report.refused == 1 and not report.deferred
    assert world.due(OPT_IN, NOW + 30 * DAY) == []
    assert world.drip_tags("bob@example.org") == ["onboarding-day-1"]


def test_unconfirmed_opt_in_is_rechecked_later_without_a_journey(world):
    world.join(unverified(joined(ADA, consent=True)))
    check = NOW + OPT_IN_FIRST_CHECK

    report = world.run(check)

    assert report.opt_ins_confirmed == 0 and report.opt_ins_given_up == 0
    assert world.mailing_list.journeys == []
    assert world.due(OPT_IN, check) == []
    assert world.due(OPT_IN, check + timedelta(hours=1)) == [ada_id()]


# -- Mailchimp failing during the scheduled run ------------------------------------------------------------------


def test_transient_mailchimp_failure_defers_the_drip_run_and_leaves_the_step_due(world):
    world.join(joined(ADA, consent=True))
    world.mailing_list.failures.append(unavailable())

    deferred = world.run(NOW + DAY)

    assert deferred.deferred and deferred.sent == 0
    assert world.drip_tags() == []
    assert world.due(DRIP, NOW + DAY) == [ada_id()]
    assert world.members.get(ada_id()).drip_steps_sent == 0

    retried = world.run(NOW + DAY + timedelta(hours=1))
    assert not retried.deferred
    assert world.drip_tags() == ["onboarding-day-1"]


def test_transient_failure_while_checking_an_opt_in_defers_the_run_and_keeps_the_check_due(world):
    world.join(unverified(joined(ADA, consent=True)))
    world.mailing_list.members[ADA] = "subscribed"
    world.mailing_list.failures.append(unavailable())
    check = NOW + OPT_IN_FIRST_CHECK

    report = world.run(check)

    assert report.deferred and report.opt_ins_confirmed == 0
    assert world.mailing_list.journeys == []
    assert world.due(OPT_IN, check) == [ada_id()]


def test_activity_racing_a_join_that_links_the_identity_meanwhile_still_counts(world):
    ada = joined(ADA, consent=True)
    world.join(ada)
    members = world.members
    real_link = members.link
    # The activity read the link before the join saved it; the join has saved it by the time activity is noted.
    members.link = lambda key: None  # type: ignore[method-assign]
    try:
        assert world.activity(active(ada.event.identity))["result"] == "activated"
    finally:
        members.link = real_link  # type: ignore[method-assign]
    assert members.get(member_id_for(ada.event.identity, ADA)).activated_at is not None


# -- Discord: membership screening and /newsletter ---------------------------------------------------------------

GUILD = "g1"


def discord_join(
    email: str | None,
    *,
    user_id: str = "u-discord",
    consent: bool = False,
    screening: bool = False,
    verified: bool = True,
    key: str = "join",
    at=JOINED,
) -> QueuedEvent:
    """What intake makes of the relay's GUILD_MEMBER_ADD (verified=False: a NEWSLETTER_SIGNUP)."""
    identity = MemberIdentity(platform=Platform.DISCORD, workspace=GUILD, user_id=user_id)
    event = MemberJoined(
        identity=identity,
        email=email,
        username="ada",
        joined_at=at,
        marketing_consent=consent,
        email_verified=verified,
        screening_pending=screening,
    )
    return QueuedEvent(
        idempotency_key=f"discord:{GUILD}:{key}", correlation_id=f"c-{key}", source="discord", event=event
    )


def signup(
    email: str = ADA, *, user_id: str = "u-discord", screening: bool = False, key: str = "signup"
) -> QueuedEvent:
    return discord_join(email, user_id=user_id, consent=True, screening=screening, verified=False, key=key)


def screening_passed(user_id: str = "u-discord", *, joined_at=JOINED, key: str = "passed") -> QueuedEvent:
    identity = MemberIdentity(platform=Platform.DISCORD, workspace=GUILD, user_id=user_id)
    event = MemberScreeningPassed(identity=identity, joined_at=joined_at, passed_at=joined_at + timedelta(minutes=3))
    return QueuedEvent(
        idempotency_key=f"discord:{GUILD}:{key}", correlation_id=f"c-{key}", source="discord", event=event
    )


def pass_screening(world: World, queued: QueuedEvent) -> dict[str, str]:
    return complete_screening(queued, world.deps)


def discord_identity(user_id: str = "u-discord") -> str:
    return MemberIdentity(platform=Platform.DISCORD, workspace=GUILD, user_id=user_id).key


def test_member_in_screening_is_stored_but_not_onboarded_until_they_pass_it(world):
    held = world.join(discord_join(ADA, consent=True, screening=True))

    assert held == {"result": "awaiting_screening"}
    assert world.mailing_list.calls == [] and world.status() is None
    assert world.members.get(ada_id_for_discord()).email == ADA  # stored
    assert (Step.SKIPPED, Outcome.SKIPPED) in world.steps()

    passed = pass_screening(world, screening_passed())

    # The address came from the member, not from Discord: consent leads to double opt-in, never a direct subscribe.
    assert passed == {"result": "awaiting_opt_in", "status": "pending"}
    assert world.status() == "pending" and world.mailing_list.journeys == []
    assert (Step.SCREENING_PASSED, Outcome.OK) in world.steps()
    assert world.due(OPT_IN, NOW + OPT_IN_FIRST_CHECK) == [ada_id_for_discord()]


def test_a_pass_handled_before_its_join_lets_the_join_onboard_at_once(world):
    early = pass_screening(world, screening_passed())
    joined_later = world.join(signup(screening=True))

    assert early == {"result": "screening_noted_for_unknown_member"}
    assert joined_later == {"result": "awaiting_opt_in", "status": "pending"}


def test_a_pass_for_a_member_never_held_changes_nothing(world):
    world.join(discord_join(ADA, consent=False))
    calls = list(world.mailing_list.calls)

    assert pass_screening(world, screening_passed()) == {"result": "not_in_screening"}
    assert world.mailing_list.calls == calls


def test_a_member_who_joins_again_is_held_again_until_the_new_join_passes(world):
    later = JOINED + 5 * DAY
    world.join(discord_join(None, screening=True))
    pass_screening(world, screening_passed())
    world.join(discord_join(None, screening=True, at=later, key="join-again"))

    assert world.join(signup()) == {"result": "awaiting_screening"}
    assert pass_screening(world, screening_passed(key="old-pass-again")) == {"result": "awaiting_screening"}
    assert pass_screening(world, screening_passed(joined_at=later, key="new-pass"))["status"] == "pending"


def test_newsletter_signup_of_a_discord_member_without_email_gets_double_opt_in_for_the_same_identity(world):
    world.join(discord_join(None))
    result = world.join(signup())

    assert result == {"result": "awaiting_opt_in", "status": "pending"}
    assert world.status() == "pending" and world.mailing_list.journeys == []
    # The Discord identity now names the member with the address: activity and later joins find them.
    assert world.members.link(discord_identity()).member_id == ada_id_for_discord()
    member = world.members.get(ada_id_for_discord())
    assert member.identities == [discord_identity()] and member.marketing_consent
    world.mailing_list.members[ADA] = "subscribed"  # the member confirmed the opt-in email
    assert world.run(NOW + OPT_IN_FIRST_CHECK).opt_ins_confirmed == 1
    assert world.mailing_list.journeys == [ADA]


def test_a_signup_while_the_member_is_in_screening_waits_for_the_pass(world):
    world.join(discord_join(None, screening=True))

    assert world.join(signup()) == {"result": "awaiting_screening"}
    assert world.status() is None
    assert pass_screening(world, screening_passed()) == {"result": "awaiting_opt_in", "status": "pending"}


def test_consent_held_in_screening_is_dated_by_the_held_join_not_by_the_members_first_join(world):
    world.join(joined(ADA, consent=False, platform=Platform.SLACK))  # their first join anywhere: transactional
    later = JOINED + 60 * DAY
    world.join(discord_join(ADA, consent=True, screening=True, verified=False, at=later))

    assert pass_screening(world, screening_passed(joined_at=later)) == {
        "result": "awaiting_opt_in",
        "status": "pending",
    }
    entries = world.ledger.entries(ada_id())
    assert [(entry.change.value, entry.status, entry.at) for entry in entries] == [
        ("not_given", "transactional", JOINED),
        ("upgraded", "pending", later),
    ]


def test_activity_before_the_signup_counts_so_the_confirmed_member_skips_the_drip(world):
    world.join(discord_join(None))
    identity = MemberIdentity(platform=Platform.DISCORD, workspace=GUILD, user_id="u-discord")
    assert world.activity(active(identity)) == {"result": "activated"}

    world.join(signup())
    world.mailing_list.members[ADA] = "subscribed"
    world.run(NOW + OPT_IN_FIRST_CHECK)

    assert world.members.get(ada_id_for_discord()).activated_at is not None
    assert world.mailing_list.journeys == [ADA]
    assert world.due(DRIP, NOW + 30 * DAY) == []


def test_a_join_without_email_after_the_signup_stays_with_the_member_who_gave_an_address(world):
    world.join(signup())
    world.join(discord_join(None, key="redelivered-join"))

    assert world.members.link(discord_identity()).member_id == ada_id_for_discord()


def ada_id_for_discord() -> str:
    return member_id_for(MemberIdentity(platform=Platform.DISCORD, workspace=GUILD, user_id="u-discord"), ADA)


def test_a_join_reads_the_identity_link_and_the_consent_ledger_once_each():
    from dataclasses import replace

    world = World()
    reads: list[str] = []
    counted = {"members": CountingReads(world.members, reads), "ledger": CountingReads(world.ledger, reads)}
    world.deps = replace(world.deps, **counted)
    queued = joined(ADA, consent=True)
    assert world.join(queued)["result"] == "onboarded"
    assert reads.count("link") == 1  # saving the link answers with the link as stored, noted activity included
    assert reads.count("entries") == 1  # the upsert's consent fields and the ledger entry share one read
    entries = world.ledger.entries(member_id_for(queued.event.identity, ADA))
    assert [(entry.change.value, entry.status) for entry in entries] == [("given", "subscribed")]
