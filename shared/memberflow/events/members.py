"""Member events: someone joined a platform, passed its membership screening, proved their address, agreed to
marketing email later, took part (a message, a post, a reaction), or asked to be forgotten."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SerializerFunctionWrapHandler, field_validator, model_serializer, model_validator

from memberflow.events.base import Event
from memberflow.models import MemberIdentity, Moment, Name, check_email
from memberflow.privacy import mask_email
from memberflow.trace import ERASURE_REQUESTS, email_subject, identity_subject


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

    name: Name | None = None
    username: Name | None = None
    joined_at: Moment
    """When the account was created on the platform."""


class MemberJoined(MemberAccountEvent):
    type: Literal["member_joined"] = "member_joined"
    marketing_consent: bool = False
    """True only when the source says the member agreed to marketing email."""
    consented_at: Moment | None = None
    """When the member gave that consent, where it is not when they joined: a Discord member's /newsletter sign-up
    (the relay's `occurred_at`), long after they joined the server. None: consent given at the join itself (a
    consent box ticked at sign-up); also every message queued before this field existed. Left out of the message
    when None, so a consumer that does not know the field yet (a deployment in progress) reads every other join."""
    email_verified: bool = True
    """False when the platform has not confirmed the address yet (a Discourse signup, until `user_confirmed_email`;
    an address a Discord member typed into the relay's /newsletter form): consent then leads to double opt-in, never
    to a direct subscribe."""
    awaiting_approval: bool = False
    """True when the platform must approve the member first (a forum that approves sign-ups): the member is
    stored, and onboarded when the platform's approval arrives as a join of its own."""
    screening_pending: bool = False
    """The platform holds the member in membership screening (Discord's `pending`): they are stored, and onboarded
    only once a `member_screening_passed` for this join arrives."""

    @model_serializer(mode="wrap")
    def _without_absent_consent_time(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if data.get("consented_at") is None:
            data.pop("consented_at", None)
        return data


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


class MemberScreeningPassed(MemberEvent):
    """The member passed the platform's membership screening (Discord: a member update with `pending` false)."""

    type: Literal["member_screening_passed"] = "member_screening_passed"
    joined_at: Moment
    """The join that passed: a member who left and joined again is screened again."""
    passed_at: Moment


class MemberActive(MemberEvent):
    type: Literal["member_active"] = "member_active"
    activity: Literal["message", "post", "reaction"]
    active_at: Moment
    # Where it happened, for the thread-level figures of the health report (ids only, never text).
    channel: str | None = Field(default=None, max_length=256)
    """The Slack or Discord channel id."""
    thread: str | None = Field(default=None, max_length=256)
    """The thread: Slack `thread_ts` (a thread opener's own `ts`), the Discourse topic id."""
    item: str | None = Field(default=None, max_length=256)
    """The message or post: Slack `ts`, the Discourse post number, the Discord message id (for a reaction: the
    message reacted to)."""
    is_reply: bool = False
    """A reply in a thread (Slack `thread_ts` other than `ts`, a Discourse post after the topic's first)."""
    opens_thread: bool = False
    """A Slack top-level message, the first post of a Discourse topic."""
    question: bool = False
    """A thread opener that asks something: its text has a question mark (Slack), or it opens a Discourse topic.
    Only this flag is kept, never the text."""


class MemberErased(Event):
    """The person asked to be forgotten (their forum account was deleted, a source relayed the request, or an
    operator ran `memberflow forget`): remove them everywhere, keep only a keyed hash so they are not re-added
    without a fresh opt-in. Names them by address, by platform identity, or both."""

    type: Literal["member_erased"] = "member_erased"
    email: str | None = None
    identity: MemberIdentity | None = None
    requested_at: Moment | None = None
    """When the source says the person asked; None when it does not say (Discourse)."""

    @field_validator("email")
    @classmethod
    def _valid_email(cls, value: str | None) -> str | None:
        return check_email(value)

    @model_validator(mode="after")
    def _names_someone(self) -> MemberErased:
        if self.email is None and self.identity is None:
            raise ValueError("an erasure names the member by email or by platform identity")
        return self

    def trace_subject(self) -> str:
        """Not the member's own subjects: the erasure deletes those."""
        return ERASURE_REQUESTS

    def log_fields(self) -> dict[str, Any]:
        return {"event_type": self.type, "member_email": mask_email(self.email)}
