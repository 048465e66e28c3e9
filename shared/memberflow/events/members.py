"""Member events: someone joined a platform, proved their address, agreed to marketing email later, or took part
(a message, a post, a reaction)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, field_validator

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


class MemberAccountEvent(MemberEvent):
    """What a platform says about a member's account: that they joined, that their address is proven, that they
    agreed to marketing email later."""

    name: str | None = None
    username: str | None = None
    joined_at: datetime
    """When the account was created on the platform."""


class MemberJoined(MemberAccountEvent):
    type: Literal["member_joined"] = "member_joined"
    marketing_consent: bool = False
    """True only when the source says the member agreed to marketing email."""
    email_verified: bool = True
    """False when the platform has not confirmed the address yet (a Discourse signup, until `user_confirmed_email`):
    consent then leads to double opt-in, never to a direct subscribe."""
    awaiting_approval: bool = False
    """True when the platform must approve the member first (a forum that approves sign-ups): the member is
    stored, and onboarded when the platform's approval arrives as a join of its own."""


class MemberVerified(MemberAccountEvent):
    """The platform proved that the member owns their address (Discourse `user_confirmed_email`)."""

    type: Literal["member_verified"] = "member_verified"
    email: str = Field(min_length=3)
    marketing_consent: bool = False
    """What the member's account says about consent now."""


class ConsentGiven(MemberAccountEvent):
    """The member agreed to marketing email after joining (a Discourse consent box ticked in the preferences)."""

    type: Literal["consent_given"] = "consent_given"
    email: str = Field(min_length=3)


class MemberActive(MemberEvent):
    type: Literal["member_active"] = "member_active"
    activity: Literal["message", "post", "reaction"]
    active_at: datetime
