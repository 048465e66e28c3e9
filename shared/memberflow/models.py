"""Shared vocabulary: platforms, a member's identity on one of them, and a schedule firing."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class Platform(StrEnum):
    SLACK = "slack"
    DISCORD = "discord"
    DISCOURSE = "discourse"
    GENERIC = "generic"


class MemberIdentity(BaseModel):
    """Who the member is on one platform: a Slack user in a workspace, a Discord user in a guild, ..."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    platform: Platform
    workspace: str = Field(min_length=1, description="Slack team id, Discord guild id, Discourse instance URL")
    user_id: str = Field(min_length=1)

    @property
    def key(self) -> str:
        return f"{self.platform.value}:{self.workspace}:{self.user_id}"


def check_email(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    value = value.strip()
    if not _EMAIL.match(value):
        raise ValueError("not a valid email address")
    return value


class ScheduledRun(BaseModel):
    """A schedule firing: an EventBridge scheduled event, or Scheduler's input with its context attributes
    (`<aws.scheduler.execution-id>`, `<aws.scheduler.scheduled-time>`)."""

    model_config = ConfigDict(extra="ignore")

    id: str | None = None
    time: datetime | None = None
