"""Erasure reaches Zendesk: the onboarding erasure hands the person's addresses and identities to the other
automations that keep something about them, before it deletes what would tell who they were; the escalation
consumer then deletes the Zendesk user for good and purges the thread -> ticket links."""

from dataclasses import replace
from datetime import timedelta

import pytest
from test_erasure import ERASED_AT, erasure
from test_escalation import deps as escalation_deps
from test_escalation import escalation
from test_onboarding_domain import ADA, World

from memberflow.errors import Transient
from memberflow.escalation.service import escalate, escalate_in_bulk, external_id, forget_requester
from memberflow.events import RequesterErased
from memberflow.models import MemberIdentity, Platform
from memberflow.onboarding.erasure import erase_member
from memberflow.pipeline.envelope import QueuedEvent
from memberflow.privacy import email_suppression_name, identity_suppression_name
from memberflow.trace import Outcome, Step, erased_subject
from support.fakes import MemorySuppressions
from support.queue import joined


class RecordingParticipant:
    def __init__(self, fail: Exception | None = None) -> None:
        self.calls: list[tuple] = []
        self.fail = fail

    def forget(self, emails, identities, erasure_key, correlation_id):
        if self.fail:
            raise self.fail
        self.calls.append((emails, identities, erasure_key, correlation_id))
        return "Zendesk: handed on"


def test_the_onboarding_erasure_hands_every_address_and_identity_to_the_other_automations():
    world = World()
    identity = MemberIdentity(platform=Platform.SLACK, workspace="w1", user_id="U1")
    world.join(joined(ADA, platform=Platform.SLACK, user_id="U1", consent=True))
    participant = RecordingParticipant()
    world.deps = replace(world.deps, erasure_participants=(participant,), clock=lambda: ERASED_AT)
    erase_member(erasure(ADA), world.deps)
    [(emails, identities, key, correlation)] = participant.calls
    assert emails == [ADA] and identities == [identity.key]
    assert (key, correlation) == ("discourse:erase:1", "corr-erase")
    assert any("Zendesk: handed on" in r.detail for r in world.trace.records)


def test_a_participant_failing_leaves_the_member_for_the_erasures_retry():
    world = World()
    world.join(joined(ADA, consent=True))
    world.deps = replace(world.deps, erasure_participants=(RecordingParticipant(Transient("SQS 500")),))
    with pytest.raises(Transient):
        erase_member(erasure(ADA), world.deps)
    assert world.members.profiles  # nothing deleted yet: the retry still knows the member


def test_the_escalation_consumer_deletes_the_zendesk_user_and_purges_the_links():
    d = escalation_deps()
    escalate(d, escalation("k1", thread="slack:T1:C1:1", email="ada@example.org"))
    escalate(d, escalation("k2", thread="slack:T1:C1:2", email=None))
    other = escalation("k3", thread="slack:T1:C1:3", email="bob@example.org")
    escalate(d, other)
    queued = QueuedEvent(
        idempotency_key="erase:1:zendesk",
        correlation_id="c",
        source="erasure",
        event=RequesterErased(emails=["ada@example.org"], identities=["slack:T1:U1"]),
    )
    result = forget_requester(d, queued)
    assert result["links"] == 2
    # Her threads' tickets too (by external id): Zendesk finds their requesters at once, where search lags.
    tickets = tuple(sorted(external_id(thread) for thread in ("slack:T1:C1:1", "slack:T1:C1:2")))
    assert d.desk.forgotten == [(("ada@example.org",), ("slack:T1:U1",), tickets)]
    assert set(d.links.links) == {"slack:T1:C1:3"}
    assert "ada@example.org" not in repr(result)


def test_a_failed_zendesk_erasure_keeps_the_links_its_retry_finds_the_tickets_by():
    d = escalation_deps()
    escalate_in_bulk(d, [escalation("k1", thread="slack:T1:C1:1")])
    queued = QueuedEvent(
        idempotency_key="erase:1:zendesk",
        correlation_id="c",
        source="erasure",
        event=RequesterErased(emails=["ada@example.org"], identities=["slack:T1:U1"]),
    )
    d.desk.fail.append(Transient("Zendesk 503"))
    with pytest.raises(Transient):
        forget_requester(d, queued)
    assert set(d.links.links) == {"slack:T1:C1:1"}

    assert forget_requester(d, queued)["links"] == 1

    assert d.desk.forgotten == [(("ada@example.org",), ("slack:T1:U1",), (external_id("slack:T1:C1:1"),))]


# ---------------------------------------------------------------- escalations on their way when the erasure ran

AUTHOR = "slack:T1:U1"
"""The author of `test_escalation.escalation()`: Ada (ada@example.org) on Slack."""


def erased(name: str) -> MemorySuppressions:
    suppressions = MemorySuppressions()
    suppressions.add(name, ERASED_AT, "discourse")
    return suppressions


def received(queued: QueuedEvent, at) -> QueuedEvent:
    return queued.model_copy(update={"received_at": at})


@pytest.mark.parametrize(
    ("erased_name", "email"),
    [
        (email_suppression_name(ADA), ADA),
        (identity_suppression_name(AUTHOR), ADA),  # the platform account was erased, the address not named
        (identity_suppression_name(AUTHOR), None),
    ],
    ids=["address", "identity", "identity, no address"],
)
@pytest.mark.parametrize("rule", ["billing", "safety"])
def test_an_escalation_received_before_its_authors_erasure_is_dropped(erased_name, email, rule):
    """Queued when the erasure ran (Zendesk backing off, a retry, a redrive from the dead-letter queue): no
    requester, ticket, link or moderators' notice; recorded under the erasure's keyed hash, without personal data."""
    suppressions = erased(erased_name)
    d = escalation_deps(suppressions=suppressions)
    queued = received(escalation("k1", rule=rule, email=email), ERASED_AT - timedelta(minutes=10))

    assert escalate(d, queued) == {"result": "dropped_after_erasure"}

    assert d.desk.calls == [] and d.desk.tickets == {}
    assert d.links.links == {} and d.links.alerted == set() and d.messenger.moderators == []
    [record] = d.trace.records
    [kept] = suppressions.entries.values()
    assert record.subject == erased_subject(kept.key) and (record.step, record.outcome) == (
        Step.SKIPPED,
        Outcome.SKIPPED,
    )
    recorded = repr((record.subject, record.detail, record.extra))
    for personal in ("ada", "Ada", "U1", "charged twice", "C1", "1700000000"):
        assert personal not in recorded


def test_a_retried_escalation_is_dropped_once_its_author_is_erased():
    """The first attempt failed (Zendesk down) before the erasure; the retry comes after it."""
    d = escalation_deps(suppressions=MemorySuppressions())
    queued = received(escalation("k1"), ERASED_AT - timedelta(minutes=10))
    d.desk.fail.append(Transient("Zendesk 503"))
    with pytest.raises(Transient):
        escalate(d, queued)
    claimed = set(d.links.links)

    d.suppressions.add(email_suppression_name(ADA), ERASED_AT, "discourse")
    assert escalate(d, queued) == {"result": "dropped_after_erasure"}

    assert d.desk.tickets == {} and set(d.links.links) == claimed  # the claim the erasure's purge takes


def test_an_escalation_received_after_the_erasure_is_a_new_request():
    d = escalation_deps(suppressions=erased(email_suppression_name(ADA)))

    result = escalate(d, received(escalation("k1"), ERASED_AT + timedelta(days=2)))

    assert result == {"result": "ticket_created", "ticket_id": 1}


def test_the_bulk_path_leaves_an_escalation_of_an_erased_author_to_be_dropped():
    d = escalation_deps(suppressions=erased(email_suppression_name(ADA)))
    before = [
        received(escalation(f"k{n}", thread=f"slack:T1:C1:{n}"), ERASED_AT - timedelta(minutes=n)) for n in (1, 2)
    ]
    other = received(
        escalation("k3", thread="slack:T1:C1:3", email="bob@example.org"), ERASED_AT - timedelta(minutes=3)
    )

    assert escalate_in_bulk(d, [*before, other]) == 1

    assert set(d.links.links) == {"slack:T1:C1:3"}
    assert [ticket["ticket"].requester.email for ticket in d.desk.tickets.values()] == ["bob@example.org"]
    assert [escalate(d, queued) for queued in before] == [{"result": "dropped_after_erasure"}] * 2


def test_the_bulk_pass_and_the_one_by_one_turn_read_the_suppression_list_once_per_escalation():
    suppressions = erased(email_suppression_name("someone.else@example.org"))
    looked_up: list[str] = []
    find = suppressions.find
    suppressions.find = lambda name: looked_up.append(name) or find(name)  # type: ignore[method-assign]
    d = escalation_deps(suppressions=suppressions)
    queued = received(escalation("k1"), ERASED_AT)

    escalate_in_bulk(d, [queued])
    assert escalate(d, queued) == {"result": "ticket_created", "ticket_id": 1}

    assert len(looked_up) == 2  # the address and the platform identity, once each
    assert d.not_erased == set()
    escalate(d, queued)  # a later attempt (a retry) asks again
    assert len(looked_up) == 4


def test_the_onboarding_erasure_suppresses_the_person_before_the_escalation_hears_of_it():
    """The escalation consumer may handle the Zendesk part of the erasure, then an escalation queued behind it: the
    suppression must already be there when the erasure is handed on."""
    world = World()
    world.join(joined(ADA, platform=Platform.SLACK, user_id="U1", consent=True))
    seen: list[bool] = []

    class Escalation(RecordingParticipant):
        def forget(self, emails, identities, erasure_key, correlation_id):
            seen.append(world.suppressions.find(email_suppression_name(ADA)) is not None)
            return super().forget(emails, identities, erasure_key, correlation_id)

    world.deps = replace(world.deps, erasure_participants=(Escalation(),), clock=lambda: ERASED_AT)
    erase_member(erasure(ADA), world.deps)
    assert seen == [True]

    d = escalation_deps(suppressions=world.suppressions)  # the same suppression list, as in the stack
    late = received(escalation("k1"), ERASED_AT - timedelta(minutes=5))
    assert escalate(d, late) == {"result": "dropped_after_erasure"} and d.desk.tickets == {}


def escalation_environment(monkeypatch, **extra: str) -> None:
    """EscalationFunction's environment from template.yaml (parameters at their defaults), plus `extra`."""
    from test_template import FUNCTIONS, TEMPLATE, resolve_defaults

    environment = {
        **TEMPLATE["Globals"]["Function"]["Environment"]["Variables"],
        **FUNCTIONS["EscalationFunction"]["Properties"]["Environment"]["Variables"],
    }
    for name, value in {**resolve_defaults(environment), **extra}.items():
        monkeypatch.setenv(name, str(value) if isinstance(value, str | int | float) else f"local-{name.lower()}")


def test_the_escalation_consumer_is_given_the_suppression_list(monkeypatch):
    from memberflow.runtime import escalation
    from memberflow.runtime.container import container, reset

    escalation_environment(monkeypatch, MEMBERS_TABLE_NAME="members", SUPPRESSION_KEY_SECRET_ARN="suppression-key")
    reset()
    try:
        assert escalation.deps().suppressions is container().suppressions
    finally:
        reset()
