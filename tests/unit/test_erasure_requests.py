"""Erasure requests at intake: Discourse's `user_destroyed` (as Discourse's emitter builds it) and our signed generic
`member_erased` become a `member_erased` event on the member-events queue; system, bot and staged accounts are
acknowledged and ignored; a request that names nobody is a 400 naming the field."""

from __future__ import annotations

import pytest
from test_intake_sources import DISCOURSE, Intake, sample, without

from memberflow.events import CATALOG, MEMBER_EVENTS, MemberErased
from memberflow.models import MemberIdentity, Platform
from memberflow.trace import ERASURE_REQUESTS, email_subject


@pytest.fixture
def intake() -> Intake:
    return Intake()


def test_erasures_go_to_the_onboarding_consumer_on_the_member_events_queue():
    event_type = CATALOG.get("member_erased")
    assert (event_type.model, event_type.destination, event_type.consumer) == (
        MemberErased,
        MEMBER_EVENTS,
        "onboarding",
    )


def test_discourse_user_destroyed_becomes_member_erased(intake: Intake) -> None:
    answer = intake.deliver_sample("discourse_user_destroyed")

    assert answer.status == 200 and answer.body["status"] == "queued"
    assert answer.body["idempotency_key"] == f"discourse:{DISCOURSE}:user_destroyed:17"
    event = intake.queued_event()
    assert isinstance(event, MemberErased)
    assert event.email == "jane.doe@example.com"
    assert event.identity == MemberIdentity(platform=Platform.DISCOURSE, workspace=DISCOURSE, user_id="17")


def test_the_request_is_traced_apart_from_the_member_it_erases(intake: Intake) -> None:
    intake.deliver_sample("discourse_user_destroyed")

    assert [r.subject for r in intake.trace.records] == [ERASURE_REQUESTS]
    assert intake.trace.query(email_subject("jane.doe@example.com")) == []
    assert "jane.doe@example.com" not in repr(intake.trace.records)


@pytest.mark.parametrize(("change", "reason"), [({"id": -1}, "system"), ({"staged": True}, "staged")])
def test_system_and_staged_accounts_are_not_members_to_erase(intake: Intake, change: dict, reason: str) -> None:
    body = sample("discourse_user_destroyed")["body"]
    body["user"].update(change)

    answer = intake.deliver_sample("discourse_user_destroyed", body=body)

    assert answer.body["status"] == "ignored" and reason in answer.body["reason"]
    assert intake.queue.sent == []


def test_a_discourse_user_destroyed_without_an_id_is_a_400_naming_it(intake: Intake) -> None:
    body = without(sample("discourse_user_destroyed")["body"], "user.id")

    answer = intake.deliver_sample("discourse_user_destroyed", body=body)

    assert answer.status == 400 and {"field": "user.id", "problem": "Field required"} in answer.body["problems"]


def test_a_discourse_user_destroyed_without_email_still_erases_by_identity(intake: Intake) -> None:
    body = without(sample("discourse_user_destroyed")["body"], "user.email")

    assert intake.deliver_sample("discourse_user_destroyed", body=body).body["status"] == "queued"
    event = intake.queued_event()
    assert isinstance(event, MemberErased) and event.email is None and event.identity is not None


def test_generic_member_erased(intake: Intake) -> None:
    answer = intake.deliver_sample("generic_member_erased")

    assert answer.body == {**answer.body, "status": "queued", "idempotency_key": "generic:erasure-2024-11-21-000123"}
    event = intake.queued_event()
    assert isinstance(event, MemberErased)
    assert event.email == "jane.doe@example.com" and event.identity.key == "generic:meetup-amsterdam:form-000123"
    assert event.requested_at is not None


@pytest.mark.parametrize(
    ("path", "field"), [("member.id", "member.id"), ("occurred_at", "occurred_at"), ("event_id", "event_id")]
)
def test_generic_member_erased_without_a_required_field_is_a_400_naming_it(
    intake: Intake, path: str, field: str
) -> None:
    body = without(sample("generic_member_erased")["body"], path)

    answer = intake.deliver_sample("generic_member_erased", body=body)

    assert answer.status == 400 and field in [problem["field"] for problem in answer.body["problems"]]
    assert intake.queue.sent == []


def test_generic_member_erased_with_an_address_that_is_not_one_is_a_400(intake: Intake) -> None:
    body = sample("generic_member_erased")["body"]
    body["member"]["email"] = "not-an-address"

    answer = intake.deliver_sample("generic_member_erased", body=body)

    assert answer.status == 400 and answer.body["problems"][0]["field"] == "member.email"
