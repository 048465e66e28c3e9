"""Member events: someone joined a platform, passed its membership screening, or took part (a message, a post, a
reaction)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import field_validator

from memberflow.events.base import Event
from memberflow.models import MemberIdentity, check_email
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
    name: str | None = None
    username: str | None = None
    joined_at: datetime
    marketing_consent: bool = False
    """True only when the source says the member agreed to marketing email."""
    email_verified: bool = True
    """False when the platform has not confirmed the address yet (a Discourse account not yet activated, an
    address a Discord member typed into the relay's /newsletter form): consent then leads to double opt-in, never to
    a direct subscribe."""
    screening_pending: bool = False
    """The platform holds the member in membership screening (Discord's `pending`): they are stored, and onboarded
    only once a `member_screening_passed` for this join arrives."""


class MemberScreeningPassed(MemberEvent):
    """The member passed the platform's membership screening (Discord: a member update with `pending` false)."""

    type: Literal["member_screening_passed"] = "member_screening_passed"
    joined_at: datetime
    """The join that passed: a member who left and joined again is screened again."""
    passed_at: datetime


class MemberActive(MemberEvent):
    type: Literal["member_active"] = "member_active"
    activity: Literal["message", "post", "reaction"]
    active_at: datetime
