"""The normalised member events every source is turned into, and the queue envelope that carries them."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class Platform(StrEnum):
    SLACK = "slack"
    DISCORD = "discord"
    DISCOURSE = "discourse"
    GENERIC = "generic"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MemberIdentity(_Frozen):
    """Who the member is on one platform: a Slack user in a workspace, a Discord user in a guild, ..."""

    platform: Platform
    workspace: str = Field(min_length=1, description="Slack team id, Discord guild id, Discourse instance URL")
    user_id: str = Field(min_length=1)

    @property
    def key(self) -> str:
        return f"{self.platform.value}:{self.workspace}:{self.user_id}"


def _check_email(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    value = value.strip()
    if not _EMAIL.match(value):
        raise ValueError("not a valid email address")
    return value


class MemberJoined(_Frozen):
    type: Literal["member_joined"] = "member_joined"
    identity: MemberIdentity
    email: str | None = None
    name: str | None = None
    username: str | None = None
    joined_at: datetime
    marketing_consent: bool = False
    """True only when the source says the member agreed to marketing email."""
    email_verified: bool = True
    """False when the platform has not confirmed the address yet (a Discourse account not yet activated):
    consent then leads to double opt-in, never to a direct subscribe."""

    @field_validator("email")
    @classmethod
    def _valid_email(cls, value: str | None) -> str | None:
        return _check_email(value)


class MemberActive(_Frozen):
    type: Literal["member_active"] = "member_active"
    identity: MemberIdentity
    activity: Literal["message", "post", "reaction"]
    active_at: datetime
    email: str | None = None

    @field_validator("email")
    @classmethod
    def _valid_email(cls, value: str | None) -> str | None:
        return _check_email(value)


MemberEvent = Annotated[MemberJoined | MemberActive, Field(discriminator="type")]


class QueuedEvent(_Frozen):
    """What intake writes to SQS and consumers read back: the event plus what makes it traceable and deduplicable."""

    idempotency_key: str = Field(min_length=1, max_length=512)
    """Stable across redeliveries of the same platform event (Slack event_id, Discourse resource id + event, ...)."""
    correlation_id: str = Field(min_length=1)
    source: str
    received_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    event: MemberEvent


class ScheduledRun(BaseModel):
    """A schedule firing: an EventBridge scheduled event, or Scheduler's input with its context attributes
    (`<aws.scheduler.execution-id>`, `<aws.scheduler.scheduled-time>`)."""

    model_config = ConfigDict(extra="ignore")

    id: str | None = None
    time: datetime | None = None
