"""Slack Events API deliveries: URL verification, and the events that tell us about members (team_join,
message, reaction_added). Everything else Slack sends is acknowledged and ignored.

Slack delivers again (with `X-Slack-Retry-Num` and `X-Slack-Retry-Reason`) whatever is not answered 2xx within 3 s,
unless the answer says `X-Slack-No-Retry: 1`. In a channel shared with another organisation (Slack Connect) Slack
also sends that organisation's members' messages; the workspace the app is installed in is
`authorizations[0].team_id` (the outer `team_id` can be the other organisation's), the author's is the event's
`user_team` (or `source_team`, `team`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import Field

from memberflow import signatures
from memberflow.events import MemberActive, MemberJoined
from memberflow.intake.errors import build, invalid_payload, validate
from memberflow.intake.source import (
    Accepted,
    Ignored,
    Interpretation,
    Redelivery,
    Reply,
    WebhookRequest,
    dig,
    email_or_none,
)
from memberflow.models import Platform
from memberflow.schema import Model

# Message subtypes that are a member writing something (a reply also sent to the channel, a /me message, a file
# with a comment); the rest are edits, deletions, joins, topic changes...
ACTIVITY_SUBTYPES = frozenset({"thread_broadcast", "me_message", "file_share"})
RETRY_NUM_HEADER = "x-slack-retry-num"
RETRY_REASON_HEADER = "x-slack-retry-reason"
SLACKBOT_USER_ID = "USLACKBOT"
MAX_UNIX_SECONDS = 253402300799  # 9999-12-31: anything later cannot be a datetime


class SlackUrlVerification(Model):
    type: Literal["url_verification"]
    challenge: str = Field(min_length=1)


class SlackEventHeader(Model):
    type: str = Field(min_length=1)
    user_team: str | None = None
    """The author's team, in a channel shared with other teams."""
    source_team: str | None = None
    team: str | None = None


class SlackAuthorization(Model):
    team_id: str | None = None


class SlackEventCallback(Model):
    type: Literal["event_callback"]
    team_id: str = Field(min_length=1)
    event_id: str = Field(min_length=1)
    event_time: int = Field(ge=0, le=MAX_UNIX_SECONDS)
    event: SlackEventHeader
    authorizations: list[SlackAuthorization] | None = None

    @property
    def workspace(self) -> str:
        """The team the app is installed in: our community (for shared channels, `authorizations[0]`)."""
        if self.authorizations and self.authorizations[0].team_id:
            return self.authorizations[0].team_id
        return self.team_id

    @property
    def workspace_field(self) -> str:
        """Where `workspace` came from in the delivery, so a refusal names the field the sender wrote."""
        return "authorizations.0.team_id" if self.authorizations and self.authorizations[0].team_id else "team_id"

    def author_team(self) -> str | None:
        return self.event.user_team or self.event.source_team or self.event.team


class SlackProfile(Model):
    email: str | None = None
    real_name: str | None = None
    display_name: str | None = None


class SlackUser(Model):
    id: str = Field(min_length=1)
    name: str | None = None
    real_name: str | None = None
    profile: SlackProfile = Field(default_factory=SlackProfile)
    is_bot: bool = False


class SlackTeamJoin(SlackEventHeader):
    type: Literal["team_join"]
    user: SlackUser


class SlackMessage(SlackEventHeader):
    type: Literal["message"]
    user: str = Field(min_length=1)
    channel: str = Field(min_length=1)
    ts: str = Field(min_length=1)
    text: str | None = None
    thread_ts: str | None = None
    subtype: str | None = None


class SlackReactionAdded(SlackEventHeader):
    type: Literal["reaction_added"]
    user: str = Field(min_length=1)
    reaction: str = Field(min_length=1)
    item: dict[str, Any] = Field(default_factory=dict)


class SlackTeamJoinCallback(SlackEventCallback):
    event: SlackTeamJoin


class SlackMessageCallback(SlackEventCallback):
    event: SlackMessage


class SlackReactionCallback(SlackEventCallback):
    event: SlackReactionAdded


class SlackSource:
    name = "slack"
    secret_key = "slack_signing_secret"
    form_payload_field: str | None = None
    refusal_headers: Mapping[str, str] = {"X-Slack-No-Retry": "1"}

    def redelivery(self, headers: Mapping[str, str]) -> Redelivery | None:
        attempt = headers.get(RETRY_NUM_HEADER, "").strip()
        if not attempt:
            return None
        number = int(attempt) if attempt.isdecimal() and len(attempt) < 4 else 1
        return Redelivery(number, headers.get(RETRY_REASON_HEADER, "unknown").strip()[:64] or "unknown")

    def verify(self, secret: str, request: WebhookRequest, *, now: float, window: int) -> None:
        signatures.verify_slack(secret, request.body, request.headers, now=now, window=window)

    def claimed_email(self, payload: Any) -> str | None:
        return email_or_none(dig(payload, "event", "user", "profile", "email"))

    def interpret(self, payload: Any, headers: Mapping[str, str]) -> Interpretation:
        kind = dig(payload, "type")
        if kind == "url_verification":
            return Reply({"challenge": validate(SlackUrlVerification, payload).challenge})
        if isinstance(kind, str) and kind and kind != "event_callback":
            return Ignored(f"Slack {kind} deliveries carry no member event")
        callback = validate(SlackEventCallback, payload)
        event_type = callback.event.type
        if event_type == "team_join":
            return _team_join(validate(SlackTeamJoinCallback, payload))
        if event_type == "message":
            return _message(payload)
        if event_type == "reaction_added":
            return _reaction(validate(SlackReactionCallback, payload))
        return Ignored(f"Slack event type {event_type} is not used")


def _team_join(callback: SlackTeamJoinCallback) -> Interpretation:
    user = callback.event.user
    if user.is_bot:
        return Ignored("bot users are not members")
    joined = build(
        MemberJoined,
        {
            "email": "event.user.profile.email",
            "identity": "event.user.id",
            "identity.workspace": callback.workspace_field,
            "name": "event.user.real_name",
            "username": "event.user.name",
            "joined_at": "event_time",
        },
        identity=_identity(callback.workspace, user.id),
        email=user.profile.email,
        name=user.real_name or user.profile.real_name or None,
        username=user.name,
        joined_at=_event_time(callback),
        # Slack has no consent signal: joining a workspace is not agreeing to marketing email.
        marketing_consent=False,
    )
    return Accepted(joined, _idempotency_key(callback))


def _message(payload: dict[str, Any]) -> Interpretation:
    # Decided before full validation: bot posts and edits/deletions have other shapes (often no `user`).
    subtype = dig(payload, "event", "subtype")
    is_bot = dig(payload, "event", "bot_id") or dig(payload, "event", "user") == SLACKBOT_USER_ID
    if subtype is not None and not isinstance(subtype, str):
        raise invalid_payload([{"field": "event.subtype", "problem": "Input should be a valid string"}])
    if is_bot or subtype == "bot_message":
        return Ignored("bot messages are not member activity")
    if subtype is not None and subtype not in ACTIVITY_SUBTYPES:
        return Ignored(f"message subtype {subtype} is not member activity")
    callback = validate(SlackMessageCallback, payload)
    message = callback.event
    is_reply = message.thread_ts is not None and message.thread_ts != message.ts
    return _activity(
        callback,
        message.user,
        "message",
        channel=message.channel,
        thread=message.thread_ts or message.ts,
        item=message.ts,
        is_reply=is_reply,
        opens_thread=not is_reply,
        question=not is_reply and "?" in (message.text or ""),
    )


def _reaction(callback: SlackReactionCallback) -> Interpretation:
    item = callback.event.item
    channel, ts = item.get("channel"), item.get("ts")
    return _activity(
        callback,
        callback.event.user,
        "reaction",
        channel=channel if isinstance(channel, str) else None,
        item=ts if isinstance(ts, str) else None,
    )


def _activity(callback: SlackEventCallback, user_id: str, activity: str, **where: Any) -> Interpretation:
    author_team = callback.author_team()
    if author_team and author_team != callback.workspace:
        return Ignored("the author belongs to another organisation (a Slack Connect channel): not our member")
    active = build(
        MemberActive,
        {"identity": "event.user", "identity.workspace": callback.workspace_field, "active_at": "event_time"},
        identity=_identity(callback.workspace, user_id),
        activity=activity,
        active_at=_event_time(callback),
        **where,
    )
    return Accepted(active, _idempotency_key(callback))


def _identity(team_id: str, user_id: str) -> dict[str, str]:
    return {"platform": Platform.SLACK, "workspace": team_id, "user_id": user_id}


def _event_time(callback: SlackEventCallback) -> datetime:
    return datetime.fromtimestamp(callback.event_time, UTC)


def _idempotency_key(callback: SlackEventCallback) -> str:
    # Slack's retries (X-Slack-Retry-Num) carry the same event_id, so they map to the same key.
    return f"slack:{callback.workspace}:{callback.event_id}"
