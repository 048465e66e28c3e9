"""Intake without AWS: every sample delivery normalises to the member event we expect, bad payloads are
refused with the field named, and deliveries that are not member events are acknowledged but never queued."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from pydantic import ValidationError

from memberflow.config import IntakeSettings
from memberflow.events import ConsentGiven, MemberActive, MemberJoined, MemberScreeningPassed, MemberVerified
from memberflow.intake.registry import build_registry
from memberflow.intake.service import IntakeResponse, accept_webhook
from memberflow.models import MemberIdentity, Platform
from memberflow.pipeline.envelope import QueuedEvent
from memberflow.trace import Outcome, Step, email_subject, identity_subject, rejections_subject
from support.fakes import MemoryDeliveryLog
from support.intake import NOW, Intake, MemoryQueue, sample, signed

DISCOURSE = "https://forum.example.com"
INTAKE_ENV = {
    "TRACE_TABLE_NAME": "trace",
    "EVENT_DESTINATIONS": "{}",
    "WEBHOOK_SECRETS_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:hooks",
    "IDEMPOTENCY_TABLE_NAME": "idempotency",
}
GUILD = "1098765432109876543"


class BrokenTrace:
    def record(self, record: object) -> None:
        raise RuntimeError("trace table is gone")


@pytest.fixture
def intake() -> Intake:
    return Intake()


# ---------------------------------------------------------------- samples become member events


def test_slack_team_join_becomes_member_joined_without_consent(intake: Intake) -> None:
    answer = intake.deliver_sample("slack_team_join")

    assert answer.status == 200
    assert answer.body == {
        "status": "queued",
        "idempotency_key": "slack:T0001ABCDE:Ev06TEAMJOIN1",
        "correlation_id": "req-1",
    }
    assert intake.queued_event() == MemberJoined(
        identity=MemberIdentity(platform=Platform.SLACK, workspace="T0001ABCDE", user_id="U06JANEDOE"),
        email="jane.doe@example.com",
        name="Jane Doe",
        username="jane.doe",
        joined_at=datetime.fromtimestamp(1700000000, UTC),
        marketing_consent=False,
    )
    assert intake.queue.sent[0].source == "slack"
    assert intake.queue.sent[0].correlation_id == "req-1"


def test_slack_message_becomes_member_active(intake: Intake) -> None:
    assert intake.deliver_sample("slack_message").status == 200
    assert intake.queued_event() == MemberActive(
        identity=MemberIdentity(platform=Platform.SLACK, workspace="T0001ABCDE", user_id="U06JANEDOE"),
        activity="message",
        active_at=datetime.fromtimestamp(1700000100, UTC),
        channel="C0INTRODUCE",
        thread="1700000100.000300",
        item="1700000100.000300",
        opens_thread=True,
    )


@pytest.mark.parametrize("subtype", [[], {"name": "thread_broadcast"}, 7])
def test_slack_message_whose_subtype_is_not_text_is_refused_naming_the_field(intake: Intake, subtype: Any) -> None:
    body = sample("slack_message")["body"]
    body["event"]["subtype"] = subtype

    answer = intake.deliver("slack", body, sample("slack_message")["headers"])

    assert answer.status == 400, answer.body
    assert answer.body["error"] == "invalid_payload"
    assert [problem["field"] for problem in answer.body["problems"]] == ["event.subtype"]
    assert intake.queue.sent == []


def test_slack_reaction_becomes_member_active(intake: Intake) -> None:
    answer = intake.deliver_sample("slack_reaction_added")

    assert answer.body["idempotency_key"] == "slack:T0001ABCDE:Ev06REACTION1"
    event = intake.queued_event()
    assert isinstance(event, MemberActive) and event.activity == "reaction"
    assert event.identity.user_id == "U06JANEDOE"


def test_slack_url_verification_answers_the_challenge(intake: Intake) -> None:
    answer = intake.deliver_sample("slack_url_verification")

    assert (answer.status, answer.body) == (
        200,
        {"challenge": sample("slack_url_verification")["body"]["challenge"]},
    )
    assert intake.queue.sent == []


def test_discourse_user_created_becomes_member_joined(intake: Intake) -> None:
    answer = intake.deliver_sample("discourse_user_created")

    assert answer.body["idempotency_key"] == f"discourse:{DISCOURSE}:user_created:17"
    assert intake.queued_event() == MemberJoined(
        identity=MemberIdentity(platform=Platform.DISCOURSE, workspace=DISCOURSE, user_id="17"),
        email="jane.doe@example.com",
        name="Jane Doe",
        username="jane",
        joined_at=datetime(2024, 11, 14, 22, 13, 20, 123000, tzinfo=UTC),
        marketing_consent=False,
        email_verified=False,  # user_created comes before the address is confirmed
    )


def test_discourse_consent_comes_from_the_configured_user_field() -> None:
    intake = Intake(registry=build_registry(discourse_consent_user_field="1"))

    intake.deliver_sample("discourse_user_created")

    event = intake.queued_event()
    assert isinstance(event, MemberJoined) and event.marketing_consent is True


@pytest.mark.parametrize("value", ["false", "", None, "0"])
def test_discourse_consent_field_not_true_means_no_consent(value: Any) -> None:
    intake = Intake(registry=build_registry(discourse_consent_user_field="1"))
    body = sample("discourse_user_created")["body"]
    body["user"]["user_fields"]["1"] = value

    intake.deliver_sample("discourse_user_created", body=body)

    event = intake.queued_event()
    assert isinstance(event, MemberJoined) and event.marketing_consent is False


def test_discourse_post_created_becomes_member_active(intake: Intake) -> None:
    answer = intake.deliver_sample("discourse_post_created")

    assert answer.body["idempotency_key"] == f"discourse:{DISCOURSE}:post_created:1234"
    assert intake.queued_event() == MemberActive(
        identity=MemberIdentity(platform=Platform.DISCOURSE, workspace=DISCOURSE, user_id="17"),
        activity="post",
        active_at=datetime(2024, 11, 14, 22, 30, 5, 456000, tzinfo=UTC),
        thread="56",
        item="3",
        is_reply=True,
    )


def test_discourse_post_without_user_id_falls_back_to_username(intake: Intake) -> None:
    body = sample("discourse_post_created")["body"]
    del body["post"]["user_id"]

    intake.deliver_sample("discourse_post_created", body=body)

    assert intake.queued_event().identity.user_id == "jane"


def test_discourse_retry_with_a_new_event_id_keeps_the_idempotency_key(intake: Intake) -> None:
    delivery = sample("discourse_post_created")
    first = intake.deliver("discourse", delivery["body"], delivery["headers"])
    retry = intake.deliver("discourse", delivery["body"], {**delivery["headers"], "X-Discourse-Event-Id": "999"})

    assert first.body["idempotency_key"] == retry.body["idempotency_key"]


def test_discourse_ping_is_answered(intake: Intake) -> None:
    answer = intake.deliver_sample("discourse_ping")

    assert answer.status == 200
    assert intake.queue.sent == []


def test_discord_member_add_becomes_member_joined_with_relay_consent(intake: Intake) -> None:
    answer = intake.deliver_sample("discord_member_add")

    assert answer.body["idempotency_key"] == f"discord:{GUILD}:ec854ac9014628c502d0401e2004ba7a"
    assert intake.queued_event() == MemberJoined(
        identity=MemberIdentity(platform=Platform.DISCORD, workspace=GUILD, user_id="843210987654321098"),
        email="jane.doe@example.com",
        name="Jane Doe",
        username="janedoe",
        joined_at=datetime(2024, 11, 14, 22, 13, 20, 861000, tzinfo=UTC),
        marketing_consent=True,
        consented_at=datetime(2024, 11, 14, 22, 13, 21, 4000, tzinfo=UTC),  # when the relay saw it: occurred_at
        # Typed by the member in the server's onboarding step: Discord verified nothing, so double opt-in.
        email_verified=False,
    )


def test_discord_member_without_email_or_consent_is_still_queued(intake: Intake) -> None:
    body = sample("discord_member_add")["body"]
    del body["member"]["email"], body["member"]["marketing_consent"]

    intake.deliver_sample("discord_member_add", body=body)

    event = intake.queued_event()
    assert isinstance(event, MemberJoined) and event.email is None and event.marketing_consent is False


def test_discord_message_create_becomes_member_active(intake: Intake) -> None:
    intake.deliver_sample("discord_message_create")

    assert intake.queued_event() == MemberActive(
        identity=MemberIdentity(platform=Platform.DISCORD, workspace=GUILD, user_id="843210987654321098"),
        activity="message",
        active_at=datetime(2024, 11, 14, 22, 30, 5, 402000, tzinfo=UTC),
        channel="1098765432109876550",
        item="1306712399912345600",
    )


def test_discord_member_add_in_membership_screening_is_a_join_held_for_screening(intake: Intake) -> None:
    body = sample("discord_member_add")["body"]
    body["member"]["pending"] = True

    intake.deliver_sample("discord_member_add", body=body)

    event = intake.queued_event()
    assert isinstance(event, MemberJoined) and event.screening_pending is True


def test_discord_member_add_without_pending_is_not_held(intake: Intake) -> None:
    intake.deliver_sample("discord_member_add")

    event = intake.queued_event()
    assert isinstance(event, MemberJoined) and event.screening_pending is False


def test_discord_member_update_after_screening_becomes_member_screening_passed(intake: Intake) -> None:
    answer = intake.deliver_sample("discord_member_update")

    assert answer.body["idempotency_key"] == f"discord:{GUILD}:d1a1a4cdd5479bd7cc2625e4b03ec202"
    assert intake.queued_event() == MemberScreeningPassed(
        identity=MemberIdentity(platform=Platform.DISCORD, workspace=GUILD, user_id="843210987654321098"),
        joined_at=datetime(2024, 11, 14, 22, 13, 20, 861000, tzinfo=UTC),
        passed_at=datetime(2024, 11, 14, 22, 16, 2, 118000, tzinfo=UTC),
    )


def test_discord_newsletter_signup_is_an_unverified_join_with_consent_for_the_same_identity(intake: Intake) -> None:
    answer = intake.deliver_sample("discord_newsletter_signup")

    assert answer.body["idempotency_key"] == f"discord:{GUILD}:1306713011234567890"
    assert intake.queued_event() == MemberJoined(
        identity=MemberIdentity(platform=Platform.DISCORD, workspace=GUILD, user_id="843210987654321098"),
        email="jane.doe@example.com",
        name="Jane Doe",
        username="janedoe",
        joined_at=datetime(2024, 11, 14, 22, 13, 20, 861000, tzinfo=UTC),
        marketing_consent=True,
        # The consent is the sign-up's (occurred_at), twenty minutes after the member joined the server.
        consented_at=datetime(2024, 11, 14, 22, 33, 12, 907000, tzinfo=UTC),
        email_verified=False,
    )


def test_discord_newsletter_signup_without_consent_is_ignored_and_the_address_not_queued(intake: Intake) -> None:
    body = sample("discord_newsletter_signup")["body"]
    body["member"]["marketing_consent"] = False

    answer = intake.deliver_sample("discord_newsletter_signup", body=body)

    assert answer.body["status"] == "ignored"
    assert intake.queue.sent == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda member: member.update(email="not an address"), "member.email"),
        (lambda member: member.update(marketing_consent="yes"), "member.marketing_consent"),
        (lambda member: member.update(pending="no"), "member.pending"),
    ],
)
def test_discord_newsletter_signup_with_a_bad_field_is_a_400_naming_it(intake: Intake, change: Any, field: str) -> None:
    body = sample("discord_newsletter_signup")["body"]
    change(body["member"])

    answer = intake.deliver_sample("discord_newsletter_signup", body=body)

    assert answer.status == 400
    assert field in [problem["field"] for problem in answer.body["problems"]]
    assert intake.queue.sent == []


def test_discord_reaction_add_becomes_member_active(intake: Intake) -> None:
    answer = intake.deliver_sample("discord_reaction_add")

    assert answer.body["idempotency_key"] == f"discord:{GUILD}:c647b593621d62274cda2125db432c1c"
    assert intake.queued_event() == MemberActive(
        identity=MemberIdentity(platform=Platform.DISCORD, workspace=GUILD, user_id="843210987654321098"),
        activity="reaction",
        active_at=datetime(2024, 11, 14, 22, 31, 40, 250000, tzinfo=UTC),
        channel="1098765432109876550",
        item="1306712399912345600",
    )


def test_discord_relay_ping_is_answered_with_pong(intake: Intake) -> None:
    answer = intake.deliver("discord", {"version": 1, "id": "p-1", "type": "PING"})

    assert (answer.status, answer.body) == (200, {"type": "PONG"})
    assert intake.queue.sent == []


def test_generic_member_joined(intake: Intake) -> None:
    answer = intake.deliver_sample("generic_member_joined")

    assert answer.body["idempotency_key"] == "generic:signup-2024-11-14-000123"
    assert intake.queued_event() == MemberJoined(
        identity=MemberIdentity(platform=Platform.GENERIC, workspace="meetup-amsterdam", user_id="form-000123"),
        email="jane.doe@example.com",
        name="Jane Doe",
        username="jane",
        joined_at=datetime(2024, 11, 14, 22, 13, 20, tzinfo=UTC),
        marketing_consent=True,
    )


def test_generic_member_active_defaults_the_workspace(intake: Intake) -> None:
    intake.deliver(
        "generic",
        {
            "event_id": "e-2",
            "type": "member_active",
            "occurred_at": "2024-11-14T22:13:20Z",
            "member": {"id": "m-1"},
            "activity": "post",
        },
    )

    event = intake.queued_event()
    assert isinstance(event, MemberActive) and event.activity == "post"
    assert event.identity.workspace == "default"


# ---------------------------------------------------------------- invalid payloads name the field


def without(body: dict[str, Any], path: str) -> dict[str, Any]:
    *parents, leaf = path.split(".")
    node = body
    for key in parents:
        node = node[key]
    del node[leaf]
    return body


@pytest.mark.parametrize(
    ("sample_name", "field"),
    [
        ("slack_team_join", "event.user.id"),
        ("slack_team_join", "team_id"),
        ("slack_team_join", "event_id"),
        ("slack_message", "event.user"),
        ("slack_message", "event.channel"),
        ("slack_reaction_added", "event.reaction"),
        ("slack_url_verification", "challenge"),
        ("discourse_user_created", "user.created_at"),
        ("discourse_user_created", "user.id"),
        ("discourse_post_created", "post.id"),
        ("discord_member_add", "member.user.id"),
        ("discord_member_add", "guild_id"),
        ("discord_message_create", "message.author"),
        ("discord_member_update", "member.joined_at"),
        ("discord_reaction_add", "reaction.user"),
        ("discord_newsletter_signup", "member.email"),
        ("discord_newsletter_signup", "member.marketing_consent"),
        ("generic_member_joined", "member.id"),
        ("generic_member_joined", "occurred_at"),
    ],
)
def test_missing_required_field_is_a_400_naming_it(intake: Intake, sample_name: str, field: str) -> None:
    answer = intake.deliver_sample(sample_name, body=without(sample(sample_name)["body"], field))

    assert answer.status == 400
    assert answer.body["error"] == "invalid_payload"
    assert {"field": field, "problem": "Field required"} in answer.body["problems"]
    assert field in answer.body["detail"]
    assert intake.queue.sent == []


def test_discourse_post_without_any_author_is_a_400(intake: Intake) -> None:
    body = without(without(sample("discourse_post_created")["body"], "post.user_id"), "post.username")

    answer = intake.deliver_sample("discourse_post_created", body=body)

    assert answer.status == 400
    assert answer.body["problems"] == [{"field": "post.user_id", "problem": "Field required"}]


def test_an_email_that_is_not_an_address_is_a_400_naming_the_platform_field(intake: Intake) -> None:
    body = sample("slack_team_join")["body"]
    body["event"]["user"]["profile"]["email"] = "not-an-address"

    answer = intake.deliver_sample("slack_team_join", body=body)

    assert answer.status == 400
    assert answer.body["problems"][0]["field"] == "event.user.profile.email"


def test_generic_member_active_without_activity_is_a_400(intake: Intake) -> None:
    answer = intake.deliver(
        "generic",
        {
            "event_id": "e-3",
            "type": "member_active",
            "occurred_at": "2024-11-14T22:13:20Z",
            "member": {"id": "m-1"},
        },
    )

    assert answer.body["problems"] == [{"field": "activity", "problem": "Field required"}]


def test_generic_unknown_type_is_a_400_naming_type(intake: Intake) -> None:
    answer = intake.deliver(
        "generic",
        {
            "event_id": "e-4",
            "type": "member_left",
            "occurred_at": "2024-11-14T22:13:20Z",
            "member": {"id": "m-1"},
        },
    )

    assert answer.status == 400
    assert [problem["field"] for problem in answer.body["problems"]] == ["type"]


def test_generic_timestamp_without_timezone_is_a_400(intake: Intake) -> None:
    body = sample("generic_member_joined")["body"]
    body["occurred_at"] = "2024-11-14T22:13:20"

    answer = intake.deliver("generic", body)

    assert answer.body["problems"][0]["field"] == "occurred_at"


def test_discourse_without_instance_header_is_a_400(intake: Intake) -> None:
    delivery = sample("discourse_user_created")
    headers = {k: v for k, v in delivery["headers"].items() if k != "X-Discourse-Instance"}

    answer = intake.deliver("discourse", delivery["body"], headers)

    assert answer.status == 400
    assert answer.body["problems"][0]["field"] == "headers.X-Discourse-Instance"


def test_a_body_that_is_not_an_object_is_a_400(intake: Intake) -> None:
    answer = intake.deliver("slack", [1, 2, 3])

    assert answer.status == 400
    assert answer.body["problems"] == [{"field": "body", "problem": "Input should be a JSON object"}]


def test_malformed_json_is_a_400_invalid_json(intake: Intake) -> None:
    answer = intake.deliver("generic", b'{"event_id": ')

    assert (answer.status, answer.body["error"]) == (400, "invalid_json")


def test_discourse_set_to_form_urlencoded_posts_raw_json_and_it_is_read_as_json(intake: Intake) -> None:
    # What Discourse's emitter really sends for a webhook whose content type is "application/x-www-form-urlencoded":
    # the same JSON body, only the header differs.
    delivery = sample("discourse_user_created")
    headers = {**delivery["headers"], "Content-Type": "application/x-www-form-urlencoded"}

    answer = intake.deliver("discourse", delivery["body"], headers)

    assert (answer.status, answer.body["status"]) == (200, "queued")
    assert intake.queued_event().email == delivery["body"]["user"]["email"]


@pytest.mark.parametrize("content_type", ["text/plain", "", "application/octet-stream"])
def test_discourse_json_is_read_whatever_the_content_type(intake: Intake, content_type: str) -> None:
    delivery = sample("discourse_post_created")
    headers = {**delivery["headers"], "Content-Type": content_type}

    assert intake.deliver("discourse", delivery["body"], headers).status == 200


def test_a_form_encoded_discourse_delivery_is_read_from_its_payload_field(intake: Intake) -> None:
    delivery = sample("discourse_user_created")
    form = urlencode({"payload": json.dumps(delivery["body"])}).encode()
    headers = {**delivery["headers"], "Content-Type": "application/x-www-form-urlencoded"}

    answer = intake.deliver("discourse", form, headers)

    assert answer.status == 200
    assert intake.queued_event().email == delivery["body"]["user"]["email"]


def test_a_form_encoded_body_without_payload_is_a_400_naming_it(intake: Intake) -> None:
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Discourse-Event": "user_created"}
    answer = intake.deliver("discourse", b"user=1", headers)

    assert answer.status == 400 and answer.body["problems"] == [{"field": "payload", "problem": "Field required"}]


def test_a_form_encoded_body_where_json_is_expected_is_a_415(intake: Intake) -> None:
    answer = intake.deliver("slack", b"payload=%7B%7D", {"Content-Type": "application/x-www-form-urlencoded"})

    assert (answer.status, answer.body["error"]) == (415, "unsupported_media_type")


# ---------------------------------------------------------------- acknowledged, never queued


@pytest.mark.parametrize(
    ("name", "change"),
    [
        ("slack_message_bot", lambda body: body),
        ("slack_message", lambda body: body["event"].update(bot_id="B0123")),
        ("slack_message", lambda body: body["event"].update(subtype="message_changed")),
        ("slack_message", lambda body: body["event"].update(subtype="channel_join")),
        ("slack_team_join", lambda body: body["event"]["user"].update(is_bot=True)),
        ("slack_team_join", lambda body: body["event"].update(type="user_change")),
        ("slack_message", lambda body: body.update(type="app_rate_limited")),
        ("discord_member_add", lambda body: body["member"]["user"].update(bot=True)),
        ("discord_message_create", lambda body: body["message"]["author"].update(bot=True)),
        ("discord_member_update", lambda body: body["member"]["user"].update(bot=True)),
        ("discord_member_update", lambda body: body["member"].update(pending=True)),
        ("discord_reaction_add", lambda body: body["reaction"]["user"].update(bot=True)),
        ("discord_newsletter_signup", lambda body: body["member"]["user"].update(bot=True)),
        ("discourse_user_created", lambda body: body["user"].update(id=-2)),
        ("discourse_post_created", lambda body: body["post"].update(post_type=3)),
    ],
)
def test_non_member_events_are_ignored_and_not_queued(intake: Intake, name: str, change: Any) -> None:
    body = sample(name)["body"]
    change(body)

    answer = intake.deliver_sample(name, body=body)

    assert answer.status == 200
    assert answer.body["status"] == "ignored"
    assert answer.body["reason"]
    assert intake.queue.sent == []


def test_slack_thread_broadcast_counts_as_activity(intake: Intake) -> None:
    body = sample("slack_message")["body"]
    body["event"].update(subtype="thread_broadcast", thread_ts="1700000000.000100")

    assert intake.deliver_sample("slack_message", body=body).body["status"] == "queued"


def test_unused_discourse_events_are_ignored(intake: Intake) -> None:
    delivery = sample("discourse_post_created")
    headers = {**delivery["headers"], "X-Discourse-Event": "post_edited"}

    answer = intake.deliver("discourse", delivery["body"], headers)

    assert answer.body["status"] == "ignored"
    assert intake.queue.sent == []


# ---------------------------------------------------------------- the service around the sources


def test_unknown_source_is_a_404(intake: Intake) -> None:
    answer = accept_webhook("meetup", b"{}", {}, intake.deps)

    assert (answer.status, answer.body["error"], answer.source) == (404, "unknown_source", "unknown")


def test_oversize_body_is_a_413_before_any_verification(intake: Intake) -> None:
    small = Intake(max_body_bytes=100)

    answer = accept_webhook("slack", b"x" * 101, {}, small.deps)

    assert (answer.status, answer.body["error"]) == (413, "payload_too_large")


def test_forged_request_is_a_401_traced_with_the_day_but_never_under_the_email_it_claims(intake: Intake) -> None:
    delivery = sample("slack_team_join")
    raw = json.dumps(delivery["body"]).encode()
    headers = signed("slack", raw, delivery["headers"])
    headers["x-slack-signature"] = "v0=" + "0" * 64

    answer = accept_webhook("slack", raw, headers, intake.deps, correlation_id="req-9")

    assert answer.status == 401
    assert answer.body == {
        "error": "invalid_signature",
        "detail": "X-Slack-Signature does not match the body",
    }
    assert intake.queue.sent == []
    rejected = (Step.REQUEST_REJECTED, Outcome.REFUSED)
    assert intake.trace.steps(rejections_subject("2024-11-14")) == [rejected]
    # Anyone can send an unsigned body naming anyone: it must not write into that member's trace.
    assert intake.trace.steps(email_subject("jane.doe@example.com")) == []
    assert intake.trace.records[0].detail == "401 invalid_signature: X-Slack-Signature does not match the body"


def test_signed_but_invalid_request_is_traced_under_the_member_it_names(intake: Intake) -> None:
    body = sample("generic_member_joined")["body"]
    body = {**body, "member": {**body["member"], "id": ""}}

    answer = intake.deliver("generic", body)

    assert answer.status == 400
    assert intake.trace.steps(email_subject(body["member"]["email"])) == [(Step.REQUEST_REJECTED, Outcome.REFUSED)]


def test_ids_too_long_to_key_the_event_are_a_400_not_a_500(intake: Intake) -> None:
    body = {**sample("generic_member_joined")["body"], "event_id": "e" * 600}

    answer = intake.deliver("generic", body)

    assert (answer.status, answer.body["error"]) == (400, "invalid_payload")
    assert intake.queue.sent == []


def test_discourse_account_not_yet_activated_is_marked_unverified(intake: Intake) -> None:
    body = sample("discourse_user_created")["body"]
    intake.deliver_sample("discourse_user_created", body={"user": {**body["user"], "active": False}})

    assert intake.queued_event().email_verified is False


def test_stale_request_is_a_401(intake: Intake) -> None:
    delivery = sample("generic_member_joined")
    raw = json.dumps(delivery["body"]).encode()
    headers = signed("generic", raw, delivery["headers"], ts=int(NOW.timestamp()) - 301)

    answer = accept_webhook("generic", raw, headers, intake.deps)

    assert (answer.status, answer.body["error"]) == (401, "stale_timestamp")


def test_queued_event_is_traced_under_the_member_email(intake: Intake) -> None:
    intake.deliver_sample("slack_team_join")

    assert intake.trace.steps(email_subject("jane.doe@example.com")) == [(Step.EVENT_RECEIVED, Outcome.OK)]


def test_queued_event_without_email_is_traced_under_the_identity(intake: Intake) -> None:
    intake.deliver_sample("slack_message")

    subject = identity_subject("slack:T0001ABCDE:U06JANEDOE")
    assert intake.trace.steps(subject) == [(Step.EVENT_RECEIVED, Outcome.OK)]


def test_a_trace_failure_never_fails_the_delivery() -> None:
    intake = Intake(trace=BrokenTrace())

    assert intake.deliver_sample("slack_team_join").status == 200
    assert intake.deliver("slack", b"{}").status == 400


def test_queue_failure_is_a_503_so_the_platform_retries() -> None:
    intake = Intake(queue=MemoryQueue(fail=True))

    answer = intake.deliver_sample("slack_team_join")

    assert (answer.status, answer.body["error"], answer.outcome) == (503, "queue_unavailable", "failed")


@pytest.mark.parametrize(
    "secrets",
    [{}, {"discord_relay_public_key": "replace-me"}],
    ids=["missing", "placeholder"],
)
def test_unusable_relay_key_is_a_503_so_the_relay_retries_once_it_is_fixed(secrets: dict) -> None:
    intake = Intake(secrets=lambda: secrets)
    delivery = sample("discord_member_add")

    answer = intake.deliver("discord", delivery["body"], delivery["headers"])

    assert (answer.status, answer.body["error"]) == (503, "intake_misconfigured")
    assert intake.queue.sent == []


@pytest.mark.parametrize("value", ["yes", 1, "true", "on"])
def test_only_a_json_true_counts_as_consent(intake: Intake, value: Any) -> None:
    body = sample("generic_member_joined")["body"]
    answer = intake.deliver("generic", {**body, "member": {**body["member"], "marketing_consent": value}})

    assert answer.status == 400
    assert answer.body["problems"][0]["field"] == "member.marketing_consent"


# ---------------------------------------------------------------- Discourse as its webhook emitter sends it

DISCOURSE_EXCLUDED_USER_FIELDS = {
    # WebHookUserSerializer switches these off, and no user serializer has `active`.
    "active",
    "unconfirmed_emails",
    "can_edit",
    "can_send_private_messages",
    "can_send_private_message_to_user",
    "can_ignore_user",
    "can_mute_user",
    "ignored",
    "uploaded_avatar_id",
    "has_title_badges",
    "bio_cooked",
    "custom_fields",
    "use_logo_small_as_avatar",
    "pending_posts_count",
}


@pytest.mark.parametrize(
    "name",
    ["discourse_user_created", "discourse_user_confirmed_email", "discourse_user_updated", "discourse_user_approved"],
)
def test_discourse_user_samples_have_the_serializers_shape_and_say_where_it_comes_from(name: str) -> None:
    delivery = sample(name)

    assert "web_hook_user_serializer.rb" in delivery["_source"]
    assert not DISCOURSE_EXCLUDED_USER_FIELDS & set(delivery["body"]["user"])
    assert delivery["headers"]["X-Discourse-Event"] == name.removeprefix("discourse_")
    assert delivery["headers"]["X-Discourse-Event-Type"] == "user"


def test_discourse_signup_is_unverified_whatever_the_payload_says(intake: Intake) -> None:
    body = sample("discourse_user_created")["body"]

    intake.deliver_sample("discourse_user_created", body={"user": {**body["user"], "active": True}})

    assert intake.queued_event().email_verified is False


def test_discourse_user_confirmed_email_becomes_member_verified() -> None:
    intake = Intake(registry=build_registry(discourse_consent_user_field="1"))

    answer = intake.deliver_sample("discourse_user_confirmed_email")

    assert answer.body["idempotency_key"] == f"discourse:{DISCOURSE}:user_confirmed_email:17"
    assert intake.queued_event() == MemberVerified(
        identity=MemberIdentity(platform=Platform.DISCOURSE, workspace=DISCOURSE, user_id="17"),
        email="jane.doe@example.com",
        name="Jane Doe",
        username="jane",
        joined_at=datetime(2024, 11, 14, 22, 13, 20, 123000, tzinfo=UTC),
        marketing_consent=True,
    )


def test_discourse_confirmation_without_an_email_is_a_400_naming_it(intake: Intake) -> None:
    body = without(sample("discourse_user_confirmed_email")["body"], "user.email")

    answer = intake.deliver_sample("discourse_user_confirmed_email", body=body)

    assert answer.status == 400
    assert answer.body["problems"] == [{"field": "user.email", "problem": "Field required"}]


def test_discourse_consent_ticked_later_becomes_consent_given() -> None:
    intake = Intake(registry=build_registry(discourse_consent_user_field="1"))

    answer = intake.deliver_sample("discourse_user_updated")

    assert answer.body["idempotency_key"] == f"discourse:{DISCOURSE}:user_updated:18:consent"
    assert intake.queued_event() == ConsentGiven(
        identity=MemberIdentity(platform=Platform.DISCOURSE, workspace=DISCOURSE, user_id="18"),
        email="ken.thompson@example.com",
        name="Ken Thompson",
        username="ken",
        joined_at=datetime(2024, 11, 12, 8, 2, 11, 540000, tzinfo=UTC),
    )


@pytest.mark.parametrize("consent_field", ["1", None])
def test_discourse_profile_update_without_consent_is_ignored(consent_field: str | None) -> None:
    intake = Intake(registry=build_registry(discourse_consent_user_field=consent_field))
    body = sample("discourse_user_updated")["body"]
    body["user"]["user_fields"]["1"] = None

    answer = intake.deliver_sample("discourse_user_updated", body=body)

    assert answer.body["status"] == "ignored" and intake.queue.sent == []


def test_discourse_approval_is_ignored_where_the_forum_does_not_approve_members(intake: Intake) -> None:
    answer = intake.deliver_sample("discourse_user_approved")

    assert answer.body["status"] == "ignored" and intake.queue.sent == []


def test_where_the_forum_approves_members_signup_waits_and_approval_joins() -> None:
    intake = Intake(registry=build_registry(discourse_consent_user_field="1", discourse_require_approval=True))

    intake.deliver_sample("discourse_user_created")
    approved = intake.deliver_sample("discourse_user_approved")

    signup, approval = (queued.event for queued in intake.queue.sent)
    assert isinstance(signup, MemberJoined) and signup.awaiting_approval is True
    assert isinstance(approval, MemberJoined) and approval.awaiting_approval is False
    assert approval.marketing_consent is True and approval.email_verified is False
    assert approved.body["idempotency_key"] == f"discourse:{DISCOURSE}:user_approved:17"


@pytest.mark.parametrize("configured", ["user_field_1", "USER_FIELD_1", " 1 "])
def test_the_consent_field_may_be_given_by_its_internal_name(configured: str) -> None:
    intake = Intake(registry=build_registry(discourse_consent_user_field=configured))

    intake.deliver_sample("discourse_user_created")

    assert intake.queued_event().marketing_consent is True


@pytest.mark.parametrize(("configured", "normalised"), [("user_field_3", "3"), ("3", "3"), ("", "")])
def test_intake_settings_normalise_the_consent_field(configured: str, normalised: str) -> None:
    settings = IntakeSettings.model_validate(
        {**INTAKE_ENV, "DISCOURSE_CONSENT_USER_FIELD": configured, "DISCOURSE_REQUIRE_APPROVAL": "true"}
    )

    assert settings.discourse_consent_user_field == normalised
    assert settings.discourse_require_approval is True


def test_intake_settings_refuse_a_consent_field_that_is_no_field_id() -> None:
    with pytest.raises(ValidationError, match="user_field_1"):
        IntakeSettings.model_validate({**INTAKE_ENV, "DISCOURSE_CONSENT_USER_FIELD": "newsletter"})


def test_a_consent_field_deliveries_never_carry_is_reported_once_without_personal_data(
    caplog: pytest.LogCaptureFixture,
) -> None:
    intake = Intake(registry=build_registry(discourse_consent_user_field="7"))
    caplog.set_level(logging.WARNING, logger="memberflow")

    intake.deliver_sample("discourse_user_created")
    intake.deliver_sample("discourse_user_confirmed_email")

    [warning] = [r for r in caplog.records if "consent field" in r.getMessage()]
    assert warning.levelno == logging.WARNING
    assert (warning.consent_user_field, warning.user_field_ids) == ("7", ["1", "2"])
    assert "jane" not in str(vars(warning)).lower()
    assert all(queued.event.marketing_consent is False for queued in intake.queue.sent)


# ---------------------------------------------------------------- Slack as it really delivers


def slack_refusals(intake: Intake) -> list[IntakeResponse]:
    team_join = sample("slack_team_join")
    raw = json.dumps(team_join["body"]).encode()
    forged = {**signed("slack", raw, team_join["headers"]), "x-slack-signature": "v0=" + "0" * 64}
    return [
        intake.deliver("slack", without(sample("slack_team_join")["body"], "event.user.id")),  # 400
        intake.deliver("slack", b'{"type": '),  # 400 invalid_json
        accept_webhook("slack", raw, forged, intake.deps),  # 401
        intake.deliver("slack", b"payload=%7B%7D", {"Content-Type": "application/x-www-form-urlencoded"}),  # 415
        accept_webhook("slack", b"x" * 101, {}, Intake(max_body_bytes=100).deps),  # 413
    ]


def test_every_refusal_tells_slack_not_to_retry(intake: Intake) -> None:
    answers = slack_refusals(intake)

    assert [answer.status for answer in answers] == [400, 400, 401, 415, 413]
    assert all(answer.headers == {"X-Slack-No-Retry": "1"} for answer in answers)


def test_only_slack_is_told_not_to_retry(intake: Intake) -> None:
    answer = intake.deliver("discourse", b'{"user": ', sample("discourse_user_created")["headers"])

    assert answer.status == 400 and answer.headers == {}


def test_accepted_slack_deliveries_carry_no_retry_header(intake: Intake) -> None:
    assert intake.deliver_sample("slack_team_join").headers == {}


# Where each message is, for the health report's thread figures: a /me message opens a thread, a broadcast reply is a
# reply in its thread.
WHERE = {
    "slack_message_me": {
        "channel": "C0INTRODUCE",
        "thread": "1700000300.000600",
        "item": "1700000300.000600",
        "opens_thread": True,
    },
    "slack_message_thread_broadcast": {
        "channel": "C0INTRODUCE",
        "thread": "1700000050.000100",
        "item": "1700000400.000700",
        "is_reply": True,
    },
}


@pytest.mark.parametrize("name", ["slack_message_me", "slack_message_thread_broadcast"])
def test_me_messages_and_thread_broadcasts_are_activity(intake: Intake, name: str) -> None:
    answer = intake.deliver_sample(name)

    assert answer.body["status"] == "queued"
    assert intake.queued_event() == MemberActive(
        identity=MemberIdentity(platform=Platform.SLACK, workspace="T0001ABCDE", user_id="U06JANEDOE"),
        activity="message",
        active_at=datetime.fromtimestamp(sample(name)["body"]["event_time"], UTC),
        **WHERE[name],
    )


def test_a_slack_connect_message_from_another_organisation_is_not_our_members_activity(intake: Intake) -> None:
    answer = intake.deliver_sample("slack_message_shared_channel")

    assert answer.body["status"] == "ignored" and "another organisation" in answer.body["reason"]
    assert intake.queue.sent == []


def test_our_members_message_in_a_shared_channel_is_credited_to_our_workspace(intake: Intake) -> None:
    body = sample("slack_message_shared_channel")["body"]
    body["event"].update(user="U06JANEDOE", team="T0001ABCDE", user_team="T0001ABCDE", source_team="T0001ABCDE")

    answer = intake.deliver_sample("slack_message_shared_channel", body=body)

    assert answer.body["idempotency_key"] == "slack:T0001ABCDE:Ev06SHARED01"
    assert intake.queued_event().identity.key == "slack:T0001ABCDE:U06JANEDOE"


def test_a_reaction_by_someone_of_another_organisation_is_ignored(intake: Intake) -> None:
    body = sample("slack_reaction_added")["body"]
    body["event"]["user_team"] = "T0PARTNER99"

    assert intake.deliver_sample("slack_reaction_added", body=body).body["status"] == "ignored"


def retry_headers(attempt: int = 1, reason: str = "http_timeout") -> dict[str, str]:
    return {**sample("slack_team_join")["headers"], "X-Slack-Retry-Num": str(attempt), "X-Slack-Retry-Reason": reason}


def test_a_retry_of_a_queued_slack_delivery_is_answered_without_a_second_queue_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    intake = Intake(deliveries=MemoryDeliveryLog())
    body = sample("slack_team_join")["body"]
    caplog.set_level(logging.INFO, logger="memberflow")

    first = intake.deliver_sample("slack_team_join")
    retries = [
        accept_webhook(
            "slack",
            json.dumps(body).encode(),
            signed("slack", json.dumps(body).encode(), retry_headers(n)),
            intake.deps,
        )
        for n in (1, 2, 3)
    ]

    assert len(intake.queue.sent) == 1
    for retry in retries:
        assert (retry.status, retry.headers) == (200, {})
        assert retry.body == {
            "status": "already_queued",
            "idempotency_key": first.body["idempotency_key"],
            "correlation_id": "req-1",
        }
    logged = [r for r in caplog.records if r.getMessage() == "webhook redelivered"]
    assert [(r.retry_num, r.retry_reason) for r in logged] == [
        (1, "http_timeout"),
        (2, "http_timeout"),
        (3, "http_timeout"),
    ]


def test_a_retry_of_a_delivery_that_was_not_queued_is_queued() -> None:
    intake = Intake(queue=MemoryQueue(fail=True), deliveries=MemoryDeliveryLog())
    body = sample("slack_team_join")["body"]
    assert intake.deliver_sample("slack_team_join").status == 503

    intake.queue.fail = False
    retry = intake.deliver("slack", body, retry_headers(1, "http_error"))

    assert retry.body["status"] == "queued" and len(intake.queue.sent) == 1


def test_a_retry_is_queued_again_when_the_delivery_log_cannot_be_read() -> None:
    log = MemoryDeliveryLog()
    intake = Intake(deliveries=log)
    intake.deliver_sample("slack_team_join")
    log.broken = True

    retry = intake.deliver("slack", sample("slack_team_join")["body"], retry_headers())

    # A duplicate the consumer's idempotency absorbs, rather than an event that may be lost.
    assert retry.body["status"] == "queued" and len(intake.queue.sent) == 2


def test_a_retry_after_the_record_expired_is_queued_again() -> None:
    log = MemoryDeliveryLog(remembered_for=timedelta(seconds=0))
    intake = Intake(deliveries=log)
    intake.deliver_sample("slack_team_join")

    assert intake.deliver("slack", sample("slack_team_join")["body"], retry_headers()).body["status"] == "queued"


def test_only_platforms_that_retry_are_remembered() -> None:
    log = MemoryDeliveryLog()
    intake = Intake(deliveries=log)

    intake.deliver_sample("discourse_post_created")
    intake.deliver_sample("generic_member_joined")
    intake.deliver_sample("slack_message")

    assert list(log.items) == ["slack:T0001ABCDE:Ev06MESSAGE01"]


def test_broken_json_labelled_form_urlencoded_is_reported_as_invalid_json(intake: Intake) -> None:
    headers = {**sample("discourse_user_created")["headers"]}

    answer = intake.deliver("discourse", b'{"user": {"id": 1', headers)

    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert (answer.status, answer.body["error"]) == (400, "invalid_json")


def test_a_join_message_carries_a_consent_time_only_when_it_has_one_and_messages_without_it_still_read() -> None:
    """Backward compatible both ways: a message queued before joins carried `consented_at` reads as a join without
    it, and a join without one is written as before (a consumer not yet deployed with the field reads it)."""
    signup = MemberJoined(
        identity=MemberIdentity(platform=Platform.DISCORD, workspace=GUILD, user_id="843210987654321098"),
        email="jane.doe@example.com",
        joined_at=datetime(2024, 11, 14, 22, 13, 20, 861000, tzinfo=UTC),
        marketing_consent=True,
        email_verified=False,
        consented_at=datetime(2024, 11, 14, 22, 33, 12, 907000, tzinfo=UTC),
    )
    plain = signup.model_copy(update={"consented_at": None})
    queued = QueuedEvent(idempotency_key="k", correlation_id="c", source="discord", event=plain)

    assert "consented_at" not in json.loads(queued.model_dump_json())["event"]
    assert QueuedEvent.from_json(queued.model_dump_json()).event == plain
    dated = queued.model_copy(update={"event": signup})
    assert QueuedEvent.from_json(dated.model_dump_json()).event.consented_at == signup.consented_at
