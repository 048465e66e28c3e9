"""discord.py objects -> relay deliveries (docs/discord-relay.md). Pure functions: they read only the attributes
named here, so the tests and the demo build deliveries from plain stand-ins without a Discord connection.

Each delivery's `id` is stable for the same Discord event (a Gateway event dispatched again after a reconnect gets
the same id), so memberflow acts once per event. The relay sends metadata only, never message text.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any, Protocol

VERSION = 1


class User(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str:
        """The username."""

    @property
    def global_name(self) -> str | None: ...
    @property
    def bot(self) -> bool: ...


class Snowflake(Protocol):
    @property
    def id(self) -> int: ...


class Member(User, Protocol):
    @property
    def guild(self) -> Snowflake: ...
    @property
    def joined_at(self) -> datetime | None: ...
    @property
    def pending(self) -> bool: ...


class Message(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def guild(self) -> Snowflake | None: ...
    @property
    def channel(self) -> Snowflake: ...
    @property
    def author(self) -> User: ...
    @property
    def created_at(self) -> datetime: ...


class Reaction(Protocol):
    """discord.RawReactionActionEvent."""

    @property
    def message_id(self) -> int: ...
    @property
    def channel_id(self) -> int: ...
    @property
    def guild_id(self) -> int | None: ...
    @property
    def user_id(self) -> int: ...
    @property
    def member(self) -> Member | None: ...
    @property
    def emoji(self) -> Any: ...


def member_add(member: Member, *, now: datetime) -> dict[str, Any]:
    """GUILD_MEMBER_ADD: someone joined (in membership screening when `pending`)."""
    joined_at = _joined_at(member, now)
    return _event(
        _digest("GUILD_MEMBER_ADD", member.guild.id, member.id, joined_at),
        "GUILD_MEMBER_ADD",
        member.guild.id,
        now,
        member=_member(member, joined_at),
    )


def member_screening_passed(member: Member, *, now: datetime) -> dict[str, Any]:
    """GUILD_MEMBER_UPDATE, sent when a member passes membership screening (`pending` turned false)."""
    joined_at = _joined_at(member, now)
    return _event(
        _digest("GUILD_MEMBER_UPDATE:screening", member.guild.id, member.id, joined_at),
        "GUILD_MEMBER_UPDATE",
        member.guild.id,
        now,
        member=_member(member, joined_at),
    )


def message_create(message: Message, *, now: datetime) -> dict[str, Any]:
    assert message.guild is not None, "only guild messages are relayed"
    return _event(
        str(message.id),
        "MESSAGE_CREATE",
        message.guild.id,
        now,
        message={
            "id": str(message.id),
            "channel_id": str(message.channel.id),
            "author": _author(message.author),
            "timestamp": _iso(message.created_at),
        },
    )


def reaction_add(reaction: Reaction, *, now: datetime) -> dict[str, Any]:
    assert reaction.guild_id is not None and reaction.member is not None, "only guild reactions are relayed"
    emoji = str(getattr(reaction.emoji, "id", None) or reaction.emoji)
    return _event(
        _digest("MESSAGE_REACTION_ADD", reaction.guild_id, reaction.message_id, reaction.user_id, emoji),
        "MESSAGE_REACTION_ADD",
        reaction.guild_id,
        now,
        reaction={
            "message_id": str(reaction.message_id),
            "channel_id": str(reaction.channel_id),
            "user": _author(reaction.member),
        },
    )


def newsletter_signup(interaction_id: int, member: Member, email: str, *, now: datetime) -> dict[str, Any]:
    """NEWSLETTER_SIGNUP: the member typed `email` into /newsletter and ticked the consent box. Its id is the
    interaction's: each submitted form is one sign-up."""
    joined_at = _joined_at(member, now)
    signed_up = _member(member, joined_at) | {"email": email, "marketing_consent": True}
    return _event(str(interaction_id), "NEWSLETTER_SIGNUP", member.guild.id, now, member=signed_up)


def ping(*, now: datetime) -> dict[str, Any]:
    """A health check: memberflow answers `{"type": "PONG"}` when the URL, the key and the clock are right."""
    return {"version": VERSION, "id": f"ping-{int(now.timestamp())}", "type": "PING"}


def _event(event_id: str, kind: str, guild_id: int, now: datetime, **content: Any) -> dict[str, Any]:
    header = {"version": VERSION, "id": event_id, "type": kind, "guild_id": str(guild_id), "occurred_at": _iso(now)}
    return header | content


def _member(member: Member, joined_at: datetime) -> dict[str, Any]:
    return {
        "user": {
            "id": str(member.id),
            "username": member.name,
            "global_name": member.global_name,
            "bot": bool(member.bot),
        },
        "joined_at": _iso(joined_at),
        "pending": bool(member.pending),
    }


def _author(user: User) -> dict[str, Any]:
    return {"id": str(user.id), "username": user.name, "bot": bool(user.bot)}


def _joined_at(member: Member, now: datetime) -> datetime:
    # discord.py leaves joined_at empty only for members it did not receive in full; a join is then "now".
    return member.joined_at or now


def joined_at(member: Member, *, now: datetime) -> str:
    """The member's join as the deliveries name it: a held join and its pass are matched by it."""
    return _iso(_joined_at(member, now))


def _iso(moment: datetime) -> str:
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


def _digest(*parts: Any) -> str:
    joined = "\x1f".join(_iso(part) if isinstance(part, datetime) else str(part) for part in parts)
    return hashlib.sha256(joined.encode()).hexdigest()[:32]
