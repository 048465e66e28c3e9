"""Erasure on the in-memory fakes: a member who asks to be forgotten is removed from Mailchimp, the member store,
the identity links, the due work and the trace; only a keyed hash is kept, so events that were already on their way
are dropped and a re-join gets double opt-in at most."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from test_onboarding_domain import ADA, NOW, World, discord_identity, discord_join, screening_passed

from memberflow.errors import PermanentRefusal, RateLimited
from memberflow.events import MemberErased
from memberflow.models import MemberIdentity, Platform
from memberflow.onboarding import consent
from memberflow.onboarding.erasure import erase_member
from memberflow.onboarding.join import OPT_IN, complete_screening
from memberflow.pipeline.envelope import QueuedEvent
from memberflow.privacy import email_key, email_suppression_name, identity_suppression_name, keyed_hash, subscriber_hash
from memberflow.trace import ERASURE_REQUESTS, Outcome, Step, email_subject, erased_subject, identity_subject
from memberflow.trace_report import collect, render
from support.fakes import MemoryMembers, unavailable
from support.queue import active, joined

ERASED_AT = NOW + timedelta(hours=1)


@pytest.fixture
def world() -> World:
    return World()


def at(queued: QueuedEvent, received: datetime) -> QueuedEvent:
    return queued.model_copy(update={"received_at": received})


def erasure(email: str | None = ADA, identity: MemberIdentity | None = None, source: str = "discourse") -> QueuedEvent:
    return QueuedEvent(
        idempotency_key=f"{source}:erase:1",
        correlation_id="corr-erase",
        source=source,
        received_at=ERASED_AT,
        event=MemberErased(email=email, identity=identity),
    )


def erase(world: World, queued: QueuedEvent) -> dict:
    world.deps.clock = lambda: ERASED_AT
    return erase_member(queued, world.deps)


def everything_stored(world: World) -> str:
    """Every value the fakes hold, as text: nothing of an erased member may remain in it."""
    stored = [
        world.mailing_list.members,
        world.mailing_list.tags,
        world.members.profiles,
        world.members.links,
        world.due_work.items,
        [(r.subject, r.detail, r.extra) for r in world.trace.records],
    ]
    return repr(stored)


def test_erasure_removes_the_member_everywhere_and_keeps_only_a_keyed_hash(world):
    join = at(joined(ADA, consent=True, user_id="7"), NOW)
    world.join(join)
    assert world.status() == "subscribed" and world.due_work.items  # welcomed, in the drip
    world.activity(at(active(join.event.identity), NOW))  # activity noted on the profile

    result = erase(world, erasure(identity=join.event.identity))

    assert result["result"] == "erased" and result["mailchimp"] == "deleted"
    assert ADA not in world.mailing_list.members and ADA in world.mailing_list.forgotten
    assert world.members.profiles == {} and world.members.links == {} and world.due_work.items == {}
    assert world.trace.query(email_subject(ADA)) == []
    assert world.trace.query(identity_subject(join.event.identity.key)) == []
    stored = everything_stored(world)
    for trace_of_ada in (ADA, email_key(ADA), subscriber_hash(ADA), hashlib.sha256(ADA.encode()).hexdigest()):
        assert trace_of_ada not in stored
    # What is left: the suppression (keyed hashes of the address and the identity) and the erasure's record.
    kept = world.suppressions.find(email_suppression_name(ADA))
    assert kept is not None and kept.erased_at == ERASED_AT and kept.requested_by == "discourse"
    assert kept.key == keyed_hash(b"test-suppression-key", email_suppression_name(ADA))
    assert kept.key != hashlib.sha256(email_suppression_name(ADA).encode()).hexdigest()
    assert world.suppressions.find(identity_suppression_name(join.event.identity.key)) is not None
    [record] = world.trace.query(erased_subject(kept.key))
    assert (record.step, record.outcome) == (Step.ERASED, Outcome.OK)
    assert "permanently deleted" in record.detail and "1 member record(s)" in record.detail


def test_a_member_on_double_opt_in_loses_the_opt_in_wait_too(world):
    world.join(at(joined(ADA, consent=True, user_id="7"), NOW).model_copy(update={"event": _unverified()}))
    assert world.status() == "pending" and (OPT_IN, email_key(ADA)) in world.due_work.items

    erase(world, erasure())

    assert world.due_work.items == {} and world.members.profiles == {}
    assert world.run(NOW + timedelta(days=2)).opt_ins_confirmed == 0  # nothing left for the scheduled run


def test_an_erasure_naming_only_the_platform_identity_finds_the_member_and_their_address(world):
    join = at(joined(ADA, consent=False, user_id="7"), NOW)
    world.join(join)

    erase(world, erasure(email=None, identity=join.event.identity))

    assert world.members.profiles == {} and ADA in world.mailing_list.forgotten
    assert world.suppressions.find(email_suppression_name(ADA)) is not None


def test_a_member_who_changed_address_is_erased_under_both(world):
    first = at(joined(ADA, consent=True, user_id="7"), NOW)
    world.join(first)
    world.join(at(joined("ada@lovelace.example", consent=True, user_id="8"), NOW))

    erase(world, erasure(email="ada@lovelace.example", identity=first.event.identity))

    assert world.members.profiles == {}
    assert {ADA, "ada@lovelace.example"} <= world.mailing_list.forgotten


def discord_member_who_later_gave_an_address(world: World) -> None:
    """A Discord member joins without an address (their record is keyed by the platform identity), takes part, and
    later gives an address through /newsletter: a second record, under the address, to which the link moves."""
    world.join(at(discord_join(None, user_id="42", key="join:42"), NOW))
    world.activity(at(active(MemberIdentity(platform=Platform.DISCORD, workspace="g1", user_id="42")), NOW))
    world.join(at(discord_join(ADA, user_id="42", consent=True, verified=False, key="newsletter:42"), NOW))
    assert set(world.members.profiles) == {discord_identity("42"), email_key(ADA)}
    assert world.members.links[discord_identity("42")].member_id == email_key(ADA)


@pytest.mark.parametrize("named", ["address", "identity", "both"])
def test_an_erasure_reaches_the_record_of_a_member_who_joined_before_giving_an_address(world, named):
    discord_member_who_later_gave_an_address(world)
    identity = MemberIdentity(platform=Platform.DISCORD, workspace="g1", user_id="42")

    result = erase(
        world,
        erasure(email=None if named == "identity" else ADA, identity=None if named == "address" else identity),
    )

    assert result["member_records"] == 2
    assert world.members.profiles == {} and world.members.links == {}
    assert world.due_work.items == {} and world.ledger.items == {}
    assert ADA in world.mailing_list.forgotten
    assert world.suppressions.find(identity_suppression_name(identity.key)) is not None
    assert world.suppressions.find(email_suppression_name(ADA)) is not None
    assert world.trace.query(identity_subject(identity.key)) == []
    assert identity.key not in everything_stored(world) and email_key(ADA) not in everything_stored(world)


class FailingOnce:
    """The member store of `world`, failing once (throttled, or the function's time running out) at its `at`-th
    delete: before the delete, or after it (the answer lost). An item deleted part of the way through a member's
    partition is modelled by the store itself (its other items go before the profile)."""

    def __init__(self, members: MemoryMembers, at: int, after: bool) -> None:
        self._members = members
        self._at = at
        self._after = after
        self.deletes = 0

    def __getattr__(self, name: str):
        return getattr(self._members, name)

    def erase(self, member_id: str) -> int:
        return self._delete(self._members.erase, member_id)

    def delete_link(self, identity_key: str) -> bool:
        return self._delete(self._members.delete_link, identity_key)

    def _delete(self, delete, key):
        self.deletes += 1
        failing = self.deletes == self._at
        if failing and not self._after:
            raise RateLimited("DynamoDB throttled")
        done = delete(key)
        if failing:
            raise RateLimited("the answer was lost")
        return done


def slack_member_named_by_identity(world: World) -> QueuedEvent:
    join = at(joined(ADA, consent=True, user_id="7"), NOW)
    world.join(join)
    return erasure(email=None, identity=join.event.identity)


def discord_member_named_by_address(world: World) -> QueuedEvent:
    discord_member_who_later_gave_an_address(world)
    return erasure(email=ADA)


def discord_member_named_by_identity(world: World) -> QueuedEvent:
    discord_member_who_later_gave_an_address(world)
    return erasure(email=None, identity=MemberIdentity(platform=Platform.DISCORD, workspace="g1", user_id="42"))


SCENARIOS = {
    "slack member, by identity": slack_member_named_by_identity,
    "discord member, by address": discord_member_named_by_address,
    "discord member, by identity": discord_member_named_by_identity,
}


def deletes_of_a_clean_erasure(scenario) -> int:
    world = World()
    request = scenario(world)
    counting = FailingOnce(world.members, at=0, after=False)
    world.deps = replace(world.deps, members=counting)
    erase(world, request)
    return counting.deletes


@pytest.mark.parametrize(
    ("scenario", "at_delete", "after"),
    [
        (name, n, after)
        for name, scenario in SCENARIOS.items()
        for n in range(1, deletes_of_a_clean_erasure(scenario) + 1)
        for after in (False, True)
    ],
)
def test_an_erasure_that_fails_at_any_delete_leaves_nothing_once_it_is_retried(scenario, at_delete, after):
    world = World()
    request = SCENARIOS[scenario](world)
    world.deps = replace(world.deps, members=FailingOnce(world.members, at_delete, after))

    with pytest.raises(RateLimited):
        erase(world, request)
    erase(world, request)  # the worker's retry of the same event

    assert world.members.profiles == {} and world.members.links == {}
    assert world.due_work.items == {} and world.ledger.items == {}
    assert ADA in world.mailing_list.forgotten


def test_a_member_whose_partition_was_erased_part_of_the_way_is_found_again_by_the_retry(world):
    """The store deletes the member's other items first and the profile last: a failure in between leaves the
    profile, through which the retry (named by the identity alone) finds the member and the rest of their items."""
    request = slack_member_named_by_identity(world)
    assert world.ledger.items and world.due_work.items

    def throttled(member_id: str) -> int:
        if member_id == email_key(ADA):
            raise RateLimited("DynamoDB throttled")
        return 0

    world.members.on_erase.append(throttled)  # after the due work and the ledger went
    with pytest.raises(RateLimited):
        erase(world, request)
    assert world.members.get(email_key(ADA)) is not None and world.due_work.items == {}
    assert world.members.links  # the link that names the member outlives the member

    world.members.on_erase.remove(throttled)
    erase(world, request)

    assert world.members.profiles == {} and world.members.links == {} and world.ledger.items == {}


def test_erasing_someone_we_never_stored_still_suppresses_them(world):
    result = erase(world, erasure(email="never@example.org"))

    assert result == {
        "result": "erased",
        "mailchimp": "not_in_audience",
        "member_records": 0,
        "identity_links": 0,
        "trace_records": 0,
    }
    assert world.suppressions.find(email_suppression_name("Never@Example.org")) is not None


def test_a_join_received_before_the_erasure_is_dropped_when_it_arrives_after_it(world):
    world.join(at(joined(ADA, consent=True, user_id="7"), NOW))
    late = at(joined(ADA, consent=True, user_id="7", key="discourse:w1:join:7:retry"), NOW + timedelta(minutes=30))
    erase(world, erasure())
    calls = len(world.mailing_list.calls)

    assert world.join(late) == {"result": "dropped_after_erasure"}

    assert len(world.mailing_list.calls) == calls and world.members.profiles == {}
    kept = world.suppressions.find(email_suppression_name(ADA))
    assert (Step.SKIPPED, Outcome.SKIPPED) in world.trace.steps(erased_subject(kept.key))


def test_a_re_join_after_the_erasure_is_refused_by_mailchimp_and_recorded_not_retried(world):
    world.join(at(joined(ADA, consent=True, user_id="7"), NOW))
    erase(world, erasure())

    result = world.join(at(joined(ADA, consent=True, user_id="99"), ERASED_AT + timedelta(days=3)))

    assert result == {"result": "refused", "reason": "Forgotten Email Not Subscribed"}
    assert ADA not in world.mailing_list.members and world.mailing_list.journeys == [ADA]  # the first join's only
    [refused] = [r for r in world.trace.query(email_subject(ADA)) if r.outcome is Outcome.REFUSED]
    assert "fresh opt-in" in refused.detail


def test_a_re_join_after_the_erasure_gets_double_opt_in_at_most(world):
    world.join(at(joined(ADA, consent=True, user_id="7"), NOW))
    erase(world, erasure())
    world.mailing_list.forgotten.clear()  # an audience that would take the address back

    world.join(at(joined(ADA, consent=True, user_id="99"), ERASED_AT + timedelta(days=3)))

    assert world.status() == "pending"  # never a direct subscribe, though the source says consent and verified
    assert world.mailing_list.journeys == [ADA]  # no second welcome until they confirm


def test_activity_of_an_erased_identity_is_not_noted_again(world):
    join = at(joined(ADA, consent=False, user_id="7"), NOW)
    world.join(join)
    erase(world, erasure(identity=join.event.identity))

    later = at(active(join.event.identity), ERASED_AT + timedelta(days=1))
    assert world.activity(later) == {"result": "activity_dropped_after_erasure"}
    assert world.members.links == {}


def test_a_membership_screening_pass_received_before_the_erasure_onboards_nobody_and_stores_nothing(world):
    held = at(discord_join(ADA, consent=True, screening=True), NOW)
    assert world.join(held) == {"result": "awaiting_screening"}
    late_pass = at(screening_passed(), NOW + timedelta(minutes=30))  # queued before the erasure, handled after it
    erase(world, erasure())
    calls = len(world.mailing_list.calls)

    assert complete_screening(late_pass, world.deps) == {"result": "dropped_after_erasure"}

    assert len(world.mailing_list.calls) == calls and ADA not in world.mailing_list.members
    assert world.members.profiles == {} and world.members.links == {}  # no screening state written back either
    kept = world.suppressions.find(identity_suppression_name(held.event.identity.key))
    assert (Step.SKIPPED, Outcome.SKIPPED) in world.trace.steps(erased_subject(kept.key))


def test_mailchimp_failing_leaves_everything_for_the_retry(world):
    world.join(at(joined(ADA, consent=True, user_id="7"), NOW))
    world.mailing_list.failures.append(unavailable())

    with pytest.raises(Exception, match="500"):
        erase(world, erasure())
    assert world.members.get(email_key(ADA)) is not None  # the address is still known for the retry

    erase(world, erasure())
    assert world.members.profiles == {} and ADA in world.mailing_list.forgotten


def test_a_permanent_refusal_by_mailchimp_is_recorded_and_our_side_is_still_erased(world):
    world.join(at(joined(ADA, consent=True, user_id="7"), NOW))
    world.mailing_list.failures.append(PermanentRefusal("Invalid Resource", "nope", 400))

    result = erase(world, erasure())

    assert result["mailchimp"] == "refused"
    assert world.members.profiles == {}
    [record] = world.trace.query(erased_subject(world.suppressions.find(email_suppression_name(ADA)).key))
    assert "delete the contact by hand" in record.detail


def test_no_handler_result_carries_the_address(world):
    """Powertools stores each handler's result in the idempotency table: an erasure leaves those records alone
    because none of them can hold an address."""
    results = [
        world.join(at(joined(ADA, consent=True, user_id="7"), NOW)),
        world.join(at(joined("bob@example.org", consent=False, user_id="8"), NOW)),
        world.join(at(joined(None, consent=False, user_id="9"), NOW)),
        world.activity(at(active(MemberIdentity(platform=Platform.DISCOURSE, workspace="w1", user_id="7")), NOW)),
        erase(world, erasure()),
        world.join(at(joined(ADA, consent=True, user_id="99"), ERASED_AT + timedelta(days=1))),
    ]
    for result in results:
        text = json.dumps(result)
        assert "@" not in text and email_key(ADA) not in text and subscriber_hash(ADA) not in text


def test_the_trace_answers_erased_on_the_date(world):
    world.join(at(joined(ADA, consent=True, user_id="7"), NOW))
    erase(world, erasure())

    report = collect(ADA, world.trace, world.members, world.suppressions)

    assert report.erasure is not None and report.verdict.welcomed is False
    assert f"erased on {ERASED_AT:%Y-%m-%d}" in report.verdict.reason
    printed = "\n".join(render(report))
    assert f"erased on {ERASED_AT:%Y-%m-%d %H:%M:%S} UTC" in printed and ADA not in printed

    world.join(at(joined(ADA, consent=True, user_id="99"), ERASED_AT + timedelta(days=1)))
    again = collect(ADA, world.trace, world.members, world.suppressions)
    assert "Forgotten Email Not Subscribed" in again.verdict.reason  # what happened since: the re-join


def test_the_erasure_request_is_filed_under_neither_the_address_nor_the_identity():
    identity = MemberIdentity(platform=Platform.DISCOURSE, workspace="w1", user_id="7")
    event = MemberErased(email=ADA, identity=identity)

    assert event.trace_subject() == ERASURE_REQUESTS
    assert event.log_fields()["member_email"] != ADA
    with pytest.raises(ValueError, match="by email or by platform identity"):
        MemberErased()


@pytest.mark.parametrize("verified", [True, False])
def test_consent_after_an_erasure_means_double_opt_in(verified):
    event = _unverified().model_copy(update={"email_verified": verified})

    assert consent.status_for_new_member(event, forgotten_before=True) == consent.PENDING
    assert consent.upgrade_for_consent(consent.TRANSACTIONAL, event, forgotten_before=True) == consent.PENDING
    assert consent.status_for_new_member(
        event.model_copy(update={"marketing_consent": False}), forgotten_before=True
    ) == (consent.TRANSACTIONAL)


def _unverified():
    event = joined(ADA, consent=True, user_id="7").event
    return event.model_copy(update={"email_verified": False})
