"""What can never be processed is refused at intake, with a 400 naming the sender's field, for every source:
text that is not valid Unicode or that no store or queue takes, moments no consumer can handle, ids longer than a
key can hold, and addresses mail systems refuse. What is accepted at the limits fits the stores."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from memberflow.adapters.due_work import member_pk
from memberflow.adapters.member_profiles import identity_pk
from memberflow.models import (
    DYNAMODB_PARTITION_KEY_BYTES,
    DYNAMODB_SORT_KEY_BYTES,
    KEY_PREFIX_BYTES,
    MAX_IDENTITY_KEY_BYTES,
    MAX_USER_ID_BYTES,
    MAX_WORKSPACE_BYTES,
    MemberIdentity,
    Platform,
    check_email,
)
from memberflow.trace import email_subject, identity_subject, rejections_subject
from support.intake import Intake, sample

LONG_ID = "x" * 100_000


def changed(name: str, path: str, value: Any) -> dict[str, Any]:
    """The sample's body with the value at `path` (dotted) replaced."""
    body = sample(name)["body"]
    *parents, leaf = path.split(".")
    node = body
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    node[int(leaf) if isinstance(node, list) else leaf] = value
    return body


def refused(answer: Any, field: str) -> None:
    assert answer.status == 400, answer.body
    assert answer.body["error"] == "invalid_payload"
    assert field in [problem["field"] for problem in answer.body["problems"]], answer.body
    json.dumps(answer.body)  # what the handler sends: it must be JSON whatever the delivery held


@pytest.fixture
def intake() -> Intake:
    return Intake()


# ---------------------------------------------------------------- 7: the lone surrogate found by fuzzing


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("member.name", "\udc00"),
        ("member.email", "\udc00"),
        ("member.email", "jane\udc00@example.org"),
        ("member.username", "jane\ud800"),
        ("member.id", "m-\udfff"),
    ],
)
def test_a_lone_surrogate_in_a_signed_generic_delivery_is_a_400_not_a_500(intake: Intake, field: str, value: str):
    body = changed("generic_member_joined", field, value)
    raw = json.dumps(body).encode()  # "\udc00" as an escape: valid JSON syntax, yet no text
    assert b"\\udc00" in raw or b"\\ud800" in raw or b"\\udfff" in raw

    answer = intake.deliver("generic", raw)

    refused(answer, field)
    assert intake.queue.sent == []


def test_a_surrogate_address_never_reaches_the_trace_keys(intake: Intake):
    intake.deliver("generic", changed("generic_member_joined", "member.email", "jane\udc00@example.org"))

    assert {record.subject for record in intake.trace.records} == {rejections_subject("2024-11-14")}


# ---------------------------------------------------------------- 8: refused at intake, for every source

MOMENTS_NO_CONSUMER_HANDLES = ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "1969-12-31T23:59:59Z"]


@pytest.mark.parametrize("moment", MOMENTS_NO_CONSUMER_HANDLES)
@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("generic_member_joined", "occurred_at"),
        ("discord_member_add", "member.joined_at"),
        ("discord_message_create", "message.timestamp"),
        ("discord_member_update", "member.joined_at"),
        ("discord_member_update", "occurred_at"),
        ("discord_reaction_add", "occurred_at"),
        ("discord_newsletter_signup", "member.joined_at"),
        ("discourse_user_created", "user.created_at"),
        ("discourse_post_created", "post.created_at"),
    ],
)
def test_moments_no_consumer_can_handle_are_a_400_naming_the_field(intake: Intake, name: str, path: str, moment: str):
    answer = intake.deliver_sample(name, body=changed(name, path, moment))

    refused(answer, path)
    assert intake.queue.sent == []


def test_a_slack_event_time_no_consumer_can_handle_is_a_400(intake: Intake):
    answer = intake.deliver_sample("slack_team_join", body=changed("slack_team_join", "event_time", 253402300799))

    refused(answer, "event_time")


@pytest.mark.parametrize(
    ("name", "path", "value"),
    [
        ("generic_member_joined", "member.id", LONG_ID),
        ("generic_member_joined", "workspace", "w" * (MAX_WORKSPACE_BYTES + 1)),
        ("generic_member_joined", "member.id", "é" * (MAX_USER_ID_BYTES // 2 + 1)),  # bytes count, not characters
        ("generic_member_joined", "member.id", "m-\x00"),
        ("generic_member_joined", "member.id", "m\u202e1"),
        ("generic_member_joined", "event_id", "e" * 600),
        ("generic_member_joined", "event_id", "e\x01"),
        ("slack_team_join", "event.user.id", LONG_ID),
        ("slack_team_join", "authorizations.0.team_id", "T" * (MAX_WORKSPACE_BYTES + 1)),
        ("slack_message", "event.user", LONG_ID),
        ("discord_member_add", "member.user.id", LONG_ID),
        ("discord_member_add", "guild_id", "1" * (MAX_WORKSPACE_BYTES + 1)),
        ("discord_message_create", "message.author.id", LONG_ID),
        ("discord_member_update", "member.user.id", LONG_ID),
        ("discord_member_update", "guild_id", "1" * (MAX_WORKSPACE_BYTES + 1)),
        ("discord_reaction_add", "reaction.user.id", LONG_ID),
        ("discord_reaction_add", "guild_id", "1" * (MAX_WORKSPACE_BYTES + 1)),
        ("discord_newsletter_signup", "member.user.id", LONG_ID),
        ("discourse_post_created", "post.username", LONG_ID),
    ],
)
def test_ids_beyond_what_the_stores_accept_are_a_400_naming_the_field(intake: Intake, name: str, path: str, value: str):
    body = changed(name, path, value)
    if name == "discourse_post_created":
        del body["post"]["user_id"]  # the username then names the author

    answer = intake.deliver_sample(name, body=body)

    refused(answer, "id" if path == "event_id" else path)
    assert intake.queue.sent == []


def test_a_discourse_instance_longer_than_a_key_can_hold_is_a_400_naming_the_header(intake: Intake):
    delivery = sample("discourse_user_created")
    headers = {**delivery["headers"], "X-Discourse-Instance": "https://" + "f" * MAX_WORKSPACE_BYTES + ".example"}

    refused(intake.deliver("discourse", delivery["body"], headers), "headers.X-Discourse-Instance")


@pytest.mark.parametrize(
    ("name", "path", "value"),
    [
        ("generic_member_joined", "member.name", "Jane\x00Doe"),
        ("generic_member_joined", "member.name", "J" * 513),
        ("generic_member_joined", "member.username", "jane\uffff"),
        ("slack_team_join", "event.user.real_name", "Jane\udc00"),
        ("slack_team_join", "event.user.name", "jane\x1b[31m"),
        ("discord_member_add", "member.user.global_name", "Jane\ud800"),
        ("discord_newsletter_signup", "member.user.global_name", "Jane\udc00"),
        ("discord_newsletter_signup", "member.user.username", "jane\x1b[31m"),
        ("discourse_user_created", "user.name", "Jane\udc00"),
        ("discourse_user_created", "user.username", "jane\x07"),
    ],
)
def test_text_no_store_or_queue_can_take_is_a_400_naming_the_field(intake: Intake, name: str, path: str, value: str):
    answer = intake.deliver_sample(name, body=changed(name, path, value))

    refused(answer, path)
    assert intake.queue.sent == []


ADDRESSES_MAIL_SYSTEMS_REFUSE = [
    "a@example.org\x00",
    "jane\u202e@example.org",
    "jane@exa\u200bmple.org",
    "<script>@example.org",
    "jane doe@example.org",
    '"jane"@example.org',
    "jane..doe@example.org",
    "a" * 300 + "@example.org",
    "a" * 65 + "@example.org",
    "jane@" + ".".join(["d" * 62] * 4) + ".org",  # 260 octets in all
    "jane@example",
    "jane@-example.org",
    "jane@127.0.0.1",
    "jane@[127.0.0.1]",
]


@pytest.mark.parametrize("email", ADDRESSES_MAIL_SYSTEMS_REFUSE)
@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("generic_member_joined", "member.email"),
        ("slack_team_join", "event.user.profile.email"),
        ("discord_member_add", "member.email"),
        ("discord_newsletter_signup", "member.email"),
        ("discourse_user_created", "user.email"),
    ],
)
def test_addresses_mail_systems_refuse_are_a_400_naming_the_field(intake: Intake, name: str, path: str, email: str):
    answer = intake.deliver_sample(name, body=changed(name, path, email))

    refused(answer, path)
    assert intake.queue.sent == []


@pytest.mark.parametrize(
    "email",
    [
        "a" * 64 + "@example.org",
        "j@" + ".".join(["d" * 63] * 3) + "." + "g" * 56 + ".org",  # 254 octets
        "o'brien+news@mail.example.co.uk",
        "jöhn@bücher.example",  # RFC 6531: mail systems deliver it, whatever one audience accepts
        "  jane@example.org\n",  # surrounding white space is trimmed
    ],
)
def test_addresses_at_the_limits_are_accepted(intake: Intake, email: str):
    assert len(email.strip().encode()) <= 254

    body = changed("generic_member_joined", "member.email", email)

    answer = intake.deliver_sample("generic_member_joined", body=body)

    assert answer.body["status"] == "queued"
    assert intake.queued_event().email == email.strip()


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        ("1970-01-01T00:00:00Z", datetime(1970, 1, 1, tzinfo=UTC)),
        ("9998-12-31T23:59:59Z", datetime(9998, 12, 31, 23, 59, 59, tzinfo=UTC)),
    ],
)
def test_moments_at_the_limits_are_accepted(intake: Intake, moment: str, expected: datetime):
    intake.deliver_sample("generic_member_joined", body=changed("generic_member_joined", "occurred_at", moment))

    assert intake.queued_event().joined_at == expected


def test_ids_at_the_limits_are_accepted_and_their_keys_fit_dynamodb(intake: Intake):
    workspace, user_id = "w" * MAX_WORKSPACE_BYTES, "\U0001f600" * (MAX_USER_ID_BYTES // 4)
    body = changed("generic_member_joined", "workspace", workspace)
    body["member"].update(id=user_id, email=None)

    assert intake.deliver("generic", body).body["status"] == "queued"
    identity = intake.queued_event().identity
    assert (identity.workspace, identity.user_id) == (workspace, user_id)
    for key in (identity_pk(identity.key), member_pk(identity.key), identity_subject(identity.key)):
        assert len(key.encode()) <= DYNAMODB_SORT_KEY_BYTES <= DYNAMODB_PARTITION_KEY_BYTES


def test_the_longest_identity_key_fits_a_dynamodb_sort_key_with_any_prefix():
    longest = max(len(platform.value) for platform in Platform)
    assert longest + 1 + MAX_WORKSPACE_BYTES + 1 + MAX_USER_ID_BYTES <= MAX_IDENTITY_KEY_BYTES
    assert MAX_IDENTITY_KEY_BYTES + KEY_PREFIX_BYTES <= DYNAMODB_SORT_KEY_BYTES
    assert max(len(identity_pk("")), len(member_pk("")), len(identity_subject(""))) <= KEY_PREFIX_BYTES


def test_the_rules_belong_to_the_shared_models_not_to_one_source():
    with pytest.raises(ValueError, match="not a valid email address"):
        check_email("<script>@example.org")
    with pytest.raises(ValueError, match="bytes"):
        MemberIdentity(platform=Platform.GENERIC, workspace="w", user_id=LONG_ID)
    assert email_subject("jane@example.org").startswith("email#")
