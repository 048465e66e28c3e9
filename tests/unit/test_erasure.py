"""Erasure on the in-memory fakes: a member who asks to be forgotten is removed from Mailchimp, the member store,
the identity links, the due work and the trace; only a keyed hash is kept, so events that were already on their way
are dropped and a re-join gets double opt-in at most."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta

import pytest
from test_onboarding_domain import ADA, NOW, World, discord_join, screening_passed

from memberflow.errors import PermanentRefusal
from memberflow.events import MemberErased
from memberflow.models import MemberIdentity, Platform
from memberflow.onboarding import consent
from memberflow.onboarding.erasure import erase_member
from memberflow.onboarding.join import OPT_IN, complete_screening
from memberflow.pipeline.envelope import QueuedEvent
from memberflow.privacy import email_key, email_suppression_name, identity_suppression_name, keyed_hash, subscriber_hash
from memberflow.trace import ERASURE_REQUESTS, Outcome, Step, email_subject, erased_subject, identity_subject
from memberflow.trace_report import collect, render
from support.fakes import unavailable
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
