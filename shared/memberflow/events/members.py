"""Member events: someone joined a platform, or took part (a message, a post, a reaction)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import field_validator

from memberflow.events.base import Event
from memberflow.models import MemberIdentity, Moment, Name, check_email
from memberflow.privacy import mask_email
from memberflow.trace import email_subject, identity_subject


class MemberEvent(Event):
    identity: MemberIdentity
    email: str | None = None

    @field_validator("email")
    @classmethod
    def _valid_email(cls, value: str | None) -> str | None:
        return check_email(value)

    def trace_subject(self) -> str:
        """Filed under the member's email when we know it, else under the platform identity."""
        return email_subject(self.email) if self.email else identity_subject(self.identity.key)

    def log_fields(self) -> dict[str, Any]:
        return {"event_type": self.type, "member_email": mask_email(self.email)}


class MemberJoined(MemberEvent):
    type: Literal["member_joined"] = "member_joined"
    name: Name | None = None
    username: Name | None = None
    joined_at: Moment
    marketing_consent: bool = False
    """True only when the source says the member agreed to marketing email."""
    email_verified: bool = True
    """False when the platform has not confirmed the address yet (a Discourse account not yet activated):
    consent then leads to double opt-in, never to a direct subscribe."""


class MemberActive(MemberEvent):
    type: Literal["member_active"] = "member_active"
    activity: Literal["message", "post", "reaction"]
    active_at: Moment
