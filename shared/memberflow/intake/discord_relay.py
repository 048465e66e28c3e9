"""Deliveries from our Discord relay bot (format in docs/discord-relay.md, the bot in relays/discord): member joins,
screening passes, messages and reactions, which Discord only publishes on the Gateway, and /newsletter sign-ups,
forwarded as Ed25519-signed JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, Field, StrictBool

from memberflow import signatures
from memberflow.events import MemberActive, MemberJoined, MemberScreeningPassed
from memberflow.intake.errors import build, validate
from memberflow.intake.source import Accepted, Ignored, Interpretation, Reply, WebhookRequest, dig, email_or_none
from memberflow.models import Platform
from memberflow.schema import Model

Snowflake = str


class RelayHeader(Model):
    version: Literal[1]
    id: str = Field(min_length=1)
    type: str = Field(min_length=1)


class RelayEvent(RelayHeader):
    guild_id: Snowflake = Field(min_length=1)
    occurred_at: AwareDatetime


class DiscordUser(Model):
    id: Snowflake = Field(min_length=1)
    username: str = Field(min_length=1)
    global_name: str | None = None
    bot: bool = False


class DiscordMember(Model):
    user: DiscordUser
    joined_at: AwareDatetime
    email: str | None = None
    """Only when the relay learnt it elsewhere (e.g. an onboarding form): Discord never gives bots emails."""
    marketing_consent: StrictBool | None = None
    """Only a JSON true is consent; "yes" or 1 are refused with a 400 rather than read as consent."""
    pending: StrictBool = False
    """Discord's membership screening: true until the member accepted the server's rules."""


class DiscordAuthor(Model):
    id: Snowflake = Field(min_length=1)
    username: str = Field(min_length=1)
    bot: bool = False


class DiscordMessage(Model):
    id: Snowflake = Field(min_length=1)
    channel_id: Snowflake = Field(min_length=1)
    author: DiscordAuthor
    timestamp: AwareDatetime


class RelayMemberAdd(RelayEvent):
    type: Literal["GUILD_MEMBER_ADD"]
    member: DiscordMember


class RelayMessageCreate(RelayEvent):
    type: Literal["MESSAGE_CREATE"]
    message: DiscordMessage


class RelayMemberUpdate(RelayEvent):
    """Sent by the relay when a member passes membership screening (`pending` turned false)."""

    type: Literal["GUILD_MEMBER_UPDATE"]
    member: DiscordMember


class DiscordReaction(Model):
    message_id: Snowflake = Field(min_length=1)
    channel_id: Snowflake = Field(min_length=1)
    user: DiscordAuthor


class RelayReactionAdd(RelayEvent):
    type: Literal["MESSAGE_REACTION_ADD"]
    reaction: DiscordReaction


class SignupMember(DiscordMember):
    email: str = Field(min_length=1)
    """What the member typed into the /newsletter form: unverified until they confirm Mailchimp's opt-in email."""
    marketing_consent: StrictBool
    """The form's consent box: only true signs the member up."""


class RelayNewsletterSignup(RelayEvent):
    type: Literal["NEWSLETTER_SIGNUP"]
    member: SignupMember


class DiscordRelaySource:
    name = "discord"
    secret_key = "discord_relay_public_key"
    form_payload_field: str | None = None

    def verify(self, secret: str, request: WebhookRequest, *, now: float, window: int) -> None:
        signatures.verify_discord_relay(secret, request.body, request.headers, now=now, window=window)

    def claimed_email(self, payload: Any) -> str | None:
        return email_or_none(dig(payload, "member", "email"))

    def interpret(self, payload: Any, headers: Mapping[str, str]) -> Interpretation:
        kind = dig(payload, "type")
        if kind == "GUILD_MEMBER_ADD":
            return _member_add(validate(RelayMemberAdd, payload))
        if kind == "MESSAGE_CREATE":
            return _message_create(validate(RelayMessageCreate, payload))
        if kind == "GUILD_MEMBER_UPDATE":
            return _member_update(validate(RelayMemberUpdate, payload))
        if kind == "MESSAGE_REACTION_ADD":
            return _reaction_add(validate(RelayReactionAdd, payload))
        if kind == "NEWSLETTER_SIGNUP":
            return _newsletter_signup(validate(RelayNewsletterSignup, payload))
        header = validate(RelayHeader, payload)
        if header.type == "PING":
            return Reply({"type": "PONG"})
        # A newer relay may forward more event types than this intake understands.
        return Ignored(f"relay event type {header.type} is not used")


def _member_add(delivery: RelayMemberAdd) -> Interpretation:
    if delivery.member.user.bot:
        return Ignored("bot users are not members")
    # Discord never gives a bot a member's address: one in a join was typed into the server's own onboarding step,
    # so, as for a newsletter sign-up, it is unverified and consent to it means double opt-in.
    return _join(delivery, marketing_consent=bool(delivery.member.marketing_consent), email_verified=False)


def _newsletter_signup(delivery: RelayNewsletterSignup) -> Interpretation:
    """A member asked for the newsletter: a join with the address they typed, consent and an unverified address,
    so they get Mailchimp's double opt-in and no marketing mail before they confirm it."""
    if delivery.member.user.bot:
        return Ignored("bot users are not members")
    if not delivery.member.marketing_consent:
        return Ignored("newsletter sign-up without consent: nothing to do")
    return _join(delivery, marketing_consent=True, email_verified=False)


def _join(
    delivery: RelayMemberAdd | RelayNewsletterSignup, *, marketing_consent: bool, email_verified: bool
) -> Accepted:
    member = delivery.member
    joined = build(
        MemberJoined,
        {
            "email": "member.email",
            "identity": "member.user.id",
            "identity.workspace": "guild_id",
            "name": "member.user.global_name",
            "username": "member.user.username",
            "joined_at": "member.joined_at",
            "consented_at": "occurred_at",
        },
        identity=_identity(delivery.guild_id, member.user.id),
        email=member.email,
        name=member.user.global_name or None,
        username=member.user.username,
        joined_at=member.joined_at,
        screening_pending=member.pending,
        marketing_consent=marketing_consent,
        # The consent came with this delivery (the /newsletter form, or the server's own onboarding step before the
        # join was relayed), not when the member joined the server, which may be months earlier: when the relay saw it.
        consented_at=delivery.occurred_at if marketing_consent else None,
        email_verified=email_verified,
    )
    return Accepted(joined, _idempotency_key(delivery))


def _member_update(delivery: RelayMemberUpdate) -> Interpretation:
    member = delivery.member
    if member.user.bot:
        return Ignored("bot users are not members")
    if member.pending:
        return Ignored("the member is still in membership screening")
    passed = build(
        MemberScreeningPassed,
        {
            "identity": "member.user.id",
            "identity.workspace": "guild_id",
            "joined_at": "member.joined_at",
            "passed_at": "occurred_at",
        },
        identity=_identity(delivery.guild_id, member.user.id),
        joined_at=member.joined_at,
        passed_at=delivery.occurred_at,
    )
    return Accepted(passed, _idempotency_key(delivery))


def _message_create(delivery: RelayMessageCreate) -> Interpretation:
    message = delivery.message
    return _activity(
        delivery,
        message.author,
        "message",
        message.timestamp,
        fields=("message.author.id", "message.timestamp"),
        channel=message.channel_id,
        item=message.id,
    )


def _reaction_add(delivery: RelayReactionAdd) -> Interpretation:
    # Discord gives reactions no time of their own: when the relay saw it.
    reaction = delivery.reaction
    return _activity(
        delivery,
        reaction.user,
        "reaction",
        delivery.occurred_at,
        fields=("reaction.user.id", "occurred_at"),
        channel=reaction.channel_id,
        item=reaction.message_id,
    )


def _activity(
    delivery: RelayEvent,
    author: DiscordAuthor,
    activity: Literal["message", "reaction"],
    at: datetime,
    *,
    fields: tuple[str, str],
    channel: str,
    item: str,
) -> Interpretation:
    """Activity by `author` at `at` in a channel (the message, or the message reacted to); `fields` name where the
    author's id and the time came from in the delivery."""
    if author.bot:
        return Ignored(f"bot {activity}s are not member activity")
    active = build(
        MemberActive,
        {"identity": fields[0], "identity.workspace": "guild_id", "active_at": fields[1]},
        identity=_identity(delivery.guild_id, author.id),
        activity=activity,
        active_at=at,
        channel=channel,
        item=item,
    )
    return Accepted(active, _idempotency_key(delivery))


def _identity(guild_id: str, user_id: str) -> dict[str, str]:
    return {"platform": Platform.DISCORD, "workspace": guild_id, "user_id": user_id}


def _idempotency_key(delivery: RelayEvent) -> str:
    return f"discord:{delivery.guild_id}:{delivery.id}"
