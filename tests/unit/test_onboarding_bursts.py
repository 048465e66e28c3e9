"""Waves of joins on the fakes: a batch's fresh joins go to Mailchimp in one batch subscribe and one call per tag,
each event is then handled as before (consent, erasure gate, journey guard), compliance refusals fall back to
double opt-in through the single calls, and nothing happens twice."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from memberflow.members import member_id_for
from memberflow.onboarding.bursts import BurstMailingList
from memberflow.onboarding.join import OnboardingDeps, onboard_member
from memberflow.onboarding.rules import OnboardingRules, WelcomeJourney
from memberflow.privacy import email_suppression_name
from support.fakes import (
    CountingReads,
    FakeBulkMailingList,
    MemoryDueWork,
    MemoryLedger,
    MemoryMembers,
    MemorySuppressions,
    MemoryTrace,
)
from support.queue import JOINED, joined

LIST_ID = "list1"
NOW = JOINED + timedelta(minutes=1)


class World:
    def __init__(self, journey_tag: str = "") -> None:
        self.audience = FakeBulkMailingList()
        self.burst = BurstMailingList(self.audience, LIST_ID, journey_tag=journey_tag)
        self.members = MemoryMembers()
        self.deps = OnboardingDeps(
            mailing_list=self.burst,
            members=self.members,
            due_work=MemoryDueWork(self.members),
            trace=MemoryTrace(),
            rules=OnboardingRules(list_id=LIST_ID, welcome_journey=WelcomeJourney("j1", "s1")),
            suppressions=MemorySuppressions(),
            ledger=MemoryLedger(self.members),
            clock=lambda: NOW,
        )

    def batch(self, events):
        report = self.burst.prepare(events, self.deps)
        return report, [onboard_member(queued, self.deps) for queued in events]


def wave(n: int, consenting_every: int = 10, consenting: int = 7):
    return [joined(f"w{i}@example.org", consent=i % consenting_every < consenting, user_id=f"u{i}") for i in range(n)]


def test_a_wave_costs_one_batch_subscribe_and_one_call_per_tag_with_the_tag_trigger():
    world = World(journey_tag="welcome")
    events = wave(100)
    report, results = world.batch(events)

    assert report.joins == report.created == 100
    calls = world.audience.calls
    assert calls.count("subscribe_many") == 1
    assert calls.count("tag_many") == 3  # platform, cohort, welcome
    assert len(calls) == 4  # 0.04 Mailchimp calls per member: nothing one by one
    consenting = {f"w{i}@example.org" for i in range(100) if i % 10 < 7}
    assert world.audience.tagged("welcome") == consenting and world.audience.journeys == []
    assert sum(r["result"] == "onboarded" for r in results) == 70
    assert sum(r["result"] == "onboarded_without_marketing" for r in results) == 30
    assert all(
        world.audience.members[f"w{i}@example.org"] == ("subscribed" if i % 10 < 7 else "transactional")
        for i in range(100)
    )
    assert all(
        world.members.get(member_id_for(e.event.identity, e.event.email)).journey_started_at
        for e in events
        if e.event.marketing_consent
    )


def test_with_the_api_trigger_only_the_journeys_are_single_calls():
    world = World()
    world.batch(wave(20))
    assert world.audience.calls.count("subscribe_many") == 1 and world.audience.calls.count("tag_many") == 2
    assert world.audience.calls.count("journey") == 14 and len(world.audience.journeys) == 14
    assert "upsert" not in world.audience.calls and "tags" not in world.audience.calls


def test_a_redelivered_wave_starts_no_second_journey_and_tags_nobody_twice():
    world = World(journey_tag="welcome")
    events = wave(30)
    world.batch(events)
    tags_before = {email: set(tags) for email, tags in world.audience.tags.items()}
    report, results = world.batch(events)  # the same events again (no idempotency record: the worst case)
    assert report.joins == 0  # onboarded already: nothing in bulk
    assert {email: set(tags) for email, tags in world.audience.tags.items()} == tags_before  # (tags are sets)
    assert world.audience.journeys == []
    assert {r.get("journey") for r in results if r["result"] == "onboarded"} == {"already_started"}


def test_compliance_refusals_fall_back_to_double_opt_in_through_single_calls():
    world = World()
    world.audience.compliance_state.add("w1@example.org")
    world.audience.forgotten.add("w2@example.org")
    _, results = world.batch(wave(5, consenting_every=1, consenting=1))
    assert world.audience.members["w1@example.org"] == "pending"
    assert results[1]["result"] == "awaiting_opt_in"
    assert results[2] == {"result": "refused", "reason": "Forgotten Email Not Subscribed"}
    assert world.audience.calls.count("upsert") == 2  # the compliance member's refused subscribe, then pending


def test_erased_held_and_known_members_are_left_to_the_single_calls():
    world = World()
    world.audience.members["w3@example.org"] = "unsubscribed"
    world.deps.suppressions.add(email_suppression_name("w0@example.org"), JOINED - timedelta(days=1), "operator")
    events = wave(4, consenting_every=1, consenting=1)
    report, results = world.batch(events)
    assert report.joins == 3  # the erased member is not sent in bulk
    assert results[0]["result"] in {"awaiting_opt_in", "onboarded"}  # a re-join after an erasure: opt-in at most
    assert world.audience.members["w0@example.org"] == "pending"
    # Existing and unsubscribed: never bulk-updated; their consent on joining asks for the re-opt-in (single call).
    assert world.audience.members["w3@example.org"] == "pending"
    assert results[3]["result"] == "awaiting_opt_in"


def test_a_lone_join_goes_through_the_single_calls_as_before():
    world = World()
    report, results = world.batch(wave(1))
    assert report.joins == 0
    assert world.audience.calls == ["upsert", "tags", "journey"]
    assert results[0]["result"] == "onboarded"


def test_a_failing_bulk_call_leaves_every_member_to_the_single_calls():
    from support.fakes import unavailable

    world = World()
    world.audience.failures.append(unavailable())
    report, results = world.batch(wave(3, consenting_every=1, consenting=1))
    assert report.failed == ["subscribe_many: Transient"]
    assert [r["result"] for r in results] == ["onboarded"] * 3
    assert world.audience.calls.count("upsert") == 3


def test_a_bulk_call_naming_a_failing_address_fails_as_a_whole_in_the_sandbox():
    from memberflow.privacy import subscriber_hash
    from memberflow_sandboxes.mailchimp.api import subject_hashes

    batch = {"members": [{"email_address": "a@example.org"}, {"email_address": "bounce@example.org"}]}
    segment = {"members_to_add": ["bounce@example.org"], "members_to_remove": []}
    assert subscriber_hash("bounce@example.org") in subject_hashes({}, batch)
    assert subject_hashes({}, segment) == {subscriber_hash("bounce@example.org")}


def test_with_the_tag_trigger_a_confirmed_opt_in_is_welcomed_by_the_tag_not_the_api_trigger():
    from memberflow.onboarding.drip import DripDeps, send_due_drip_steps
    from memberflow.onboarding.join import OPT_IN_FIRST_CHECK

    world = World(journey_tag="welcome")
    queued = joined("late@example.org", consent=True, user_id="late")
    queued = queued.model_copy(update={"event": queued.event.model_copy(update={"email_verified": False})})
    assert onboard_member(queued, world.deps)["result"] == "awaiting_opt_in"
    world.audience.members["late@example.org"] = "subscribed"  # the member confirmed Mailchimp's email
    drip = DripDeps(
        mailing_list=world.burst,  # what the container gives the drip when WelcomeJourneyTrigger=tag
        members=world.members,
        due_work=world.deps.due_work,
        trace=world.deps.trace,
        list_id=LIST_ID,
        step_days=(1, 3, 7),
        welcome_journey=WelcomeJourney("j1", "s1"),
        ledger=world.deps.ledger,
    )
    report = send_due_drip_steps(NOW + OPT_IN_FIRST_CHECK, "run-1", drip)
    again = send_due_drip_steps(NOW + OPT_IN_FIRST_CHECK + timedelta(hours=2), "run-2", drip)
    assert report.opt_ins_confirmed == 1 and again.opt_ins_confirmed == 0
    assert world.audience.tagged("welcome") == {"late@example.org"} and world.audience.journeys == []
    assert world.audience.calls.count("tag_many") == 1


@pytest.mark.parametrize(("trigger", "bursting"), [("tag", True), ("api", False)])
def test_the_drip_starts_the_welcome_journey_as_the_template_parameter_says(monkeypatch, trigger, bursting):
    from memberflow.runtime.container import container, reset

    environment = {
        "TRACE_TABLE_NAME": "t",
        "MEMBERS_TABLE_NAME": "m",
        "MAILCHIMP_SECRET_ARN": "arn:secret",
        "MAILCHIMP_LIST_ID": LIST_ID,
        "MAILCHIMP_WELCOME_JOURNEY_ID": "j1",
        "MAILCHIMP_WELCOME_JOURNEY_STEP_ID": "s1",
        "WELCOME_JOURNEY_TRIGGER": trigger,
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    reset()
    try:
        drip_list = container().drip.mailing_list
        assert isinstance(drip_list, BurstMailingList) is bursting
        if bursting:
            assert drip_list.journey_tag == "welcome"
    finally:
        reset()


def test_a_wave_carries_the_consent_ledgers_signup_and_opt_in_times_as_single_upserts_do():
    world = World()
    world.batch(wave(20))
    consenting = {f"w{i}@example.org" for i in range(20) if i % 10 < 7}
    for email, member in world.audience.sent.items():
        if email in consenting:  # consent given at the join, subscribed at once (verified)
            assert member.timestamp_signup == member.timestamp_opt == JOINED
        else:
            assert member.timestamp_signup is None and member.timestamp_opt is None
    # And the ledger says why each one is subscribed.
    for email in consenting:
        member_id = next(m for m in world.members.profiles.values() if m.email == email).member_id
        assert [entry.change.value for entry in world.deps.ledger.entries(member_id)] == ["given"]


def test_with_marketing_permissions_configured_the_single_calls_send_them():
    from memberflow.onboarding.consent_ledger import ConsentRules

    world = World()
    world.deps = replace(world.deps, consent_rules=ConsentRules(marketing_permission_ids=("perm1",)))
    report, results = world.batch(wave(10))
    assert report.joins == 0 and "subscribe_many" not in world.audience.calls
    assert sum(r["result"] == "onboarded" for r in results) == 7


def test_a_batch_with_one_join_looks_nothing_up_before_its_single_calls():
    world = World()
    reads: list[str] = []
    deps = replace(
        world.deps,
        members=CountingReads(world.members, reads),
        suppressions=CountingReads(world.deps.suppressions, reads),
    )
    report = world.burst.prepare([*wave(1), joined("w0@example.org", consent=True, user_id="u0")], deps)
    assert report.joins == 0
    assert reads == []  # the erasure gate and the member reads are the single path's, made once there


def test_a_wave_of_newsletter_sign_ups_sends_each_sign_ups_own_time_not_the_server_join():
    from memberflow.events import MemberJoined
    from memberflow.models import MemberIdentity, Platform
    from memberflow.pipeline.envelope import QueuedEvent

    world = World()
    server_join = JOINED - timedelta(days=200)
    signed = [JOINED + timedelta(minutes=i) for i in range(3)]
    events = [
        QueuedEvent(
            idempotency_key=f"discord:g1:signup-{i}",
            correlation_id=f"c{i}",
            source="discord",
            event=MemberJoined(
                identity=MemberIdentity(platform=Platform.DISCORD, workspace="g1", user_id=str(i)),
                email=f"n{i}@example.org",
                joined_at=server_join,
                marketing_consent=True,
                email_verified=False,
                consented_at=signed[i],
            ),
        )
        for i in range(3)
    ]
    report, results = world.batch(events)

    assert report.created == 3 and {r["result"] for r in results} == {"awaiting_opt_in"}
    assert [world.audience.sent[f"n{i}@example.org"].timestamp_signup for i in range(3)] == signed
