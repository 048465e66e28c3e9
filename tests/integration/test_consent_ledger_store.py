"""The consent ledger and Mailchimp's signals on moto (tables from template.yaml) through the onboarding function:
entries are conditional puts never overwritten, a redelivery appends nothing, an address change moves the member with
every item stored under them, and an erasure takes the ledger with the member."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from memberflow.adapters.consent_ledger import DynamoConsentLedger
from memberflow.adapters.member_profiles import DynamoMemberRepository
from memberflow.events import MailchimpEmailChanged, MemberErased
from memberflow.ledger import Change, ConsentEntry
from memberflow.pipeline.envelope import QueuedEvent
from memberflow.privacy import email_key
from support.queue import empty_queues, joined, run_onboarding

ADA, NEW = "ada.ledger@example.com", "ada.moved@example.com"


@pytest.fixture(autouse=True)
def clean_state(local_stack):
    local_stack.mailchimp.reset()
    empty_queues(local_stack)
    yield


def ledger(local_stack) -> DynamoConsentLedger:
    return DynamoConsentLedger(local_stack.table_name("MembersTable"))


def test_an_entry_is_never_overwritten(local_stack):
    store = ledger(local_stack)
    at = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
    first = ConsentEntry("m-ledger", Change.GIVEN, "discourse", "member_joined", "k1", at, "subscribed", "first")
    assert store.append(first) is True
    assert (
        store.append(ConsentEntry("m-ledger", Change.GIVEN, "discourse", "member_joined", "k1", at, "pending")) is False
    )
    assert [(entry.status, entry.detail) for entry in store.entries("m-ledger")] == [("subscribed", "first")]


def test_a_join_redelivered_appends_once_and_an_address_change_moves_everything(local_stack):
    join = joined(ADA, consent=True, user_id="ledger-1")
    run_onboarding(local_stack, join)
    run_onboarding(local_stack, join.model_copy(update={"correlation_id": "again"}))  # a redelivery
    assert [entry.change for entry in ledger(local_stack).entries(email_key(ADA))] == [Change.GIVEN]

    moved = QueuedEvent(
        idempotency_key="mailchimp:upemail:ledger-1",
        correlation_id="corr-move",
        source="mailchimp",
        event=MailchimpEmailChanged(list_id="list123", email=ADA, new_email=NEW, fired_at=datetime.now(UTC)),
    )
    run_onboarding(local_stack, moved)

    members = DynamoMemberRepository(local_stack.table_name("MembersTable"))
    assert members.get(email_key(ADA)) is None
    member = members.get(email_key(NEW))
    assert member is not None and member.email == NEW and member.drip_due_at is not None
    assert members.link(join.event.identity.key).member_id == email_key(NEW)
    assert [entry.member_id for entry in ledger(local_stack).entries(email_key(NEW))] == [email_key(NEW)]
    assert ledger(local_stack).entries(email_key(ADA)) == []

    erased = QueuedEvent(
        idempotency_key="operator:forget:ledger-1", correlation_id="c", source="operator", event=MemberErased(email=NEW)
    )
    run_onboarding(local_stack, erased)
    assert ledger(local_stack).entries(email_key(NEW)) == []


def test_saving_a_link_answers_with_the_link_as_stored_activity_noted_before_included(local_stack):
    members = DynamoMemberRepository(local_stack.table_name("MembersTable"))
    active_at = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    assert members.note_unlinked_activity("slack:T1:U-link-answer", active_at) is None
    link = members.save_link("slack:T1:U-link-answer", "m-link-answer")
    assert (link.member_id, link.last_active_at) == ("m-link-answer", active_at)
    assert members.link("slack:T1:U-link-answer") == link
    fresh = members.save_link("slack:T1:U-link-new", "m-link-new")
    assert (fresh.identity_key, fresh.member_id, fresh.last_active_at) == ("slack:T1:U-link-new", "m-link-new", None)
