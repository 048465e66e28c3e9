"""Erasure reaches Zendesk: the onboarding erasure hands the person's addresses and identities to the other
automations that keep something about them, before it deletes what would tell who they were; the escalation
consumer then deletes the Zendesk user for good and purges the thread -> ticket links."""

from dataclasses import replace

import pytest
from test_erasure import ERASED_AT, erasure
from test_escalation import deps as escalation_deps
from test_escalation import escalation
from test_onboarding_domain import ADA, World

from memberflow.errors import Transient
from memberflow.escalation.service import escalate, forget_requester
from memberflow.events import RequesterErased
from memberflow.models import MemberIdentity, Platform
from memberflow.onboarding.erasure import erase_member
from memberflow.pipeline.envelope import QueuedEvent
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
    assert d.desk.forgotten == [(("ada@example.org",), ("slack:T1:U1",))]
    assert set(d.links.links) == {"slack:T1:C1:3"}
    assert "ada@example.org" not in repr(result)
