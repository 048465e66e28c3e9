"""A platform that proves a member's address later (Discourse `user_confirmed_email`), consent given after joining
(Discourse `user_updated`) and forums that approve their members: on the in-memory fakes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from test_onboarding_domain import ADA, DAY, NOW, World

from memberflow.members import member_id_for
from memberflow.onboarding.join import OPT_IN, OPT_IN_FIRST_CHECK, give_consent, onboard_member, verify_member
from memberflow.onboarding.welcome import DRIP
from memberflow.pipeline.envelope import QueuedEvent
from memberflow.trace import Outcome, Step
from support.queue import consent_given, joined, verified


@pytest.fixture
def world() -> World:
    return World()


def signup(consent: bool, *, awaiting_approval: bool = False, user_id: str = "17") -> QueuedEvent:
    """A Discourse user_created: before the address is confirmed."""
    queued = joined(ADA, consent=consent, user_id=user_id, key=f"discourse:w1:user_created:{user_id}")
    event = queued.event.model_copy(update={"email_verified": False, "awaiting_approval": awaiting_approval})
    return queued.model_copy(update={"event": event})


def approval(consent: bool, user_id: str = "17") -> QueuedEvent:
    """A Discourse user_approved, where the forum approves its members: the join that onboards."""
    queued = joined(ADA, consent=consent, user_id=user_id, key=f"discourse:w1:user_approved:{user_id}")
    return queued.model_copy(update={"event": queued.event.model_copy(update={"email_verified": False})})


def verify(world: World, queued: QueuedEvent, consent: bool) -> dict[str, str]:
    return verify_member(verified(queued.event.identity, ADA, consent=consent), world.deps)


def consent_later(world: World, queued: QueuedEvent) -> dict[str, str]:
    return give_consent(consent_given(queued.event.identity, ADA), world.deps)


def ada() -> str:
    return member_id_for(signup(True).event.identity, ADA)


# -- user_created then user_confirmed_email ----------------------------------------------------------------------


def test_signup_with_consent_is_double_opt_in_and_the_confirmed_address_keeps_it_pending(world):
    join = signup(consent=True)

    assert world.join(join)["result"] == "awaiting_opt_in"
    assert world.status() == "pending"
    result = verify(world, join, consent=True)

    # Mailchimp's own confirmation email is out: memberflow never subscribes the member behind it.
    assert result["result"] == "awaiting_opt_in"
    assert world.status() == "pending"
    assert "set_status" not in world.mailing_list.calls
    assert world.mailing_list.journeys == []
    assert world.due(DRIP, NOW + 30 * DAY) == []
    assert world.due(OPT_IN, NOW + OPT_IN_FIRST_CHECK) == [ada()]

    world.mailing_list.members[ADA] = "subscribed"  # the member clicks the link in Mailchimp's email
    assert world.run(NOW + OPT_IN_FIRST_CHECK).opt_ins_confirmed == 1
    assert world.mailing_list.journeys == [ADA]


def test_confirmed_address_without_consent_stays_transactional(world):
    join = signup(consent=False)
    world.join(join)

    assert verify(world, join, consent=False)["result"] == "onboarded_without_marketing"
    assert world.status() == "transactional" and world.mailing_list.journeys == []
    assert world.members.get(ada()).verified_identities == [join.event.identity.key]


def test_confirmation_processed_before_the_signup_makes_the_signup_count_as_verified(world):
    join = signup(consent=True)

    assert verify(world, join, consent=True)["result"] == "verification_noted"
    assert world.status() is None and world.mailing_list.calls == []
    result = world.join(join)

    assert result["result"] == "onboarded" and world.status() == "subscribed"
    assert world.mailing_list.journeys == [ADA]


def test_a_member_who_opted_out_is_never_resubscribed_or_asked_again_by_a_confirmation(world):
    world.mailing_list.members[ADA] = "unsubscribed"
    join = signup(consent=False)
    world.join(join)

    # A confirmed address is no new request for marketing email, whatever the account says.
    assert verify(world, join, consent=True)["result"] == "kept_opted_out"
    assert world.status() == "unsubscribed" and world.mailing_list.journeys == []
    assert "set_status" not in world.mailing_list.calls


def test_a_member_who_opted_out_and_signs_up_with_consent_stays_pending_through_the_confirmation(world):
    world.mailing_list.members[ADA] = "unsubscribed"
    join = signup(consent=True)
    world.join(join)  # the sign-up's consent box: Mailchimp's re-opt-in

    assert verify(world, join, consent=True)["result"] == "awaiting_opt_in"
    assert world.status() == "pending" and world.mailing_list.journeys == []
    assert world.mailing_list.calls.count("set_status") == 1


# -- consent given later (user_updated) ---------------------------------------------------------------------------


def test_consent_ticked_later_by_a_confirmed_member_subscribes_and_welcomes_once(world):
    join = signup(consent=False)
    world.join(join)
    verify(world, join, consent=False)

    result = consent_later(world, join)
    again = consent_later(world, join)

    assert result["result"] == "onboarded" and result["journey"] == "started"
    assert again["journey"] == "already_started"
    assert world.status() == "subscribed"
    assert world.mailing_list.journeys == [ADA]
    assert world.due(DRIP, NOW + DAY) == [ada()]
    assert world.members.get(ada()).marketing_consent is True
    assert world.tags().count(f"platform:{join.event.identity.platform}") == 1  # not tagged as a new join


def test_consent_ticked_later_before_the_address_is_confirmed_asks_for_double_opt_in(world):
    join = signup(consent=False)
    world.join(join)

    result = consent_later(world, join)

    assert result["result"] == "awaiting_opt_in"
    assert world.status() == "pending" and world.mailing_list.journeys == []


def test_consent_ticked_later_by_an_opted_out_member_asks_for_the_re_opt_in_never_a_resubscribe(world):
    world.mailing_list.members[ADA] = "unsubscribed"
    join = signup(consent=False)
    world.join(join)
    verify(world, join, consent=False)

    ticked = consent_given(join.event.identity, ADA).model_copy(update={"received_at": NOW + DAY})
    assert give_consent(ticked, world.deps)["result"] == "awaiting_opt_in"
    assert world.status() == "pending" and world.mailing_list.calls.count("set_status") == 1
    assert world.mailing_list.journeys == []


def test_consent_from_a_member_never_seen_joining_onboards_them_with_double_opt_in(world):
    result = consent_later(world, signup(consent=False))

    assert result["result"] == "awaiting_opt_in"
    assert world.status() == "pending"
    assert "platform:discourse" in world.tags()


# -- forums that approve their members ----------------------------------------------------------------------------


def test_signup_awaiting_approval_is_stored_without_onboarding(world):
    result = world.join(signup(consent=True, awaiting_approval=True))

    assert result == {"result": "awaiting_approval"}
    assert world.mailing_list.calls == []
    assert world.members.get(ada()).email == ADA
    assert (Step.SKIPPED, Outcome.SKIPPED) in world.steps()


def test_confirmation_and_consent_before_approval_are_noted_and_approval_onboards(world):
    join = signup(consent=False, awaiting_approval=True)
    world.join(join)

    assert verify(world, join, consent=False)["result"] == "verification_noted"
    assert consent_later(world, join)["result"] == "consent_noted"
    assert world.mailing_list.calls == []
    result = onboard_member(approval(consent=True), world.deps)

    # Approved, with consent, from an address Discourse proved: no Mailchimp record stands in the way.
    assert result["result"] == "onboarded" and world.status() == "subscribed"
    assert world.mailing_list.journeys == [ADA]


def test_approval_before_the_address_is_confirmed_asks_for_double_opt_in(world):
    world.join(signup(consent=True, awaiting_approval=True))

    result = onboard_member(approval(consent=True), world.deps)

    assert result["result"] == "awaiting_opt_in" and world.status() == "pending"


def test_a_signup_processed_after_its_approval_changes_nothing(world):
    onboard_member(approval(consent=True), world.deps)
    calls = list(world.mailing_list.calls)

    assert world.join(signup(consent=True, awaiting_approval=True)) == {"result": "awaiting_approval"}
    assert world.mailing_list.calls == calls and world.status() == "pending"


def test_the_join_that_awaits_approval_keeps_the_opt_in_clock_untouched(world):
    world.join(signup(consent=True, awaiting_approval=True))

    assert world.due(OPT_IN, NOW + 30 * DAY) == [] and world.due(DRIP, NOW + 30 * DAY) == []
    assert world.run(NOW + timedelta(days=2)).sent == 0
