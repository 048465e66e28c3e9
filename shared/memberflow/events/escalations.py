"""Escalation events: a member's problem should become a Zendesk ticket (a message matched a rule, a moderator
reacted, a forum post was flagged, an internal tool asked), and a ticket's status changed in Zendesk."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator

from memberflow.events.base import Event
from memberflow.models import EventKey, MemberIdentity, Moment, Name, Text, check_email
from memberflow.privacy import mask_email
from memberflow.schema import Model
from memberflow.trace import ERASURE_REQUESTS, email_subject, identity_subject

MAX_TEXT_LENGTH = 20_000
"""A ticket description quotes at most this much of the member's message."""


class ReplyTarget(Model):
    """Where the member asked, so they are told there when the ticket moves: a Slack thread (`channel`,
    `thread_ts`), a Discourse topic (`topic_id`, `post_number`); neither: by email."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    channel: Text | None = None
    thread_ts: Text | None = None
    topic_id: int | None = None
    post_number: int | None = None


class EscalationRequested(Event):
    """A member's problem to file as a ticket. `thread` names the platform conversation: escalating it again adds a
    comment to its open ticket instead of a second ticket."""

    type: Literal["escalation_requested"] = "escalation_requested"
    thread: EventKey = Field(min_length=1)
    """`platform:workspace:thread id` (Slack channel + thread ts, a Discourse topic, an internal tool's id)."""
    platform: str = Field(min_length=1)
    via: Literal["keyword", "reaction", "flag", "api"]
    rule: str = Field(min_length=1)
    """The rule that matched (for `api`, the requested category's rule)."""
    author: MemberIdentity
    author_name: Name | None = None
    email: str | None = None
    text: Text = Field(default="", max_length=MAX_TEXT_LENGTH)
    channel_name: Name | None = None
    permalink: Text | None = None
    requested_at: Moment
    reply_to: ReplyTarget = Field(default_factory=ReplyTarget)

    @field_validator("email")
    @classmethod
    def _valid_email(cls, value: str | None) -> str | None:
        return check_email(value)

    def trace_subject(self) -> str:
        return email_subject(self.email) if self.email else identity_subject(self.author.key)

    def log_fields(self) -> dict[str, Any]:
        return {"event_type": self.type, "rule": self.rule, "via": self.via, "member_email": mask_email(self.email)}


class TicketStatusChanged(Event):
    """Zendesk says a ticket's status changed (its webhook): the member hears back once per status."""

    type: Literal["ticket_status_changed"] = "ticket_status_changed"
    ticket_id: int = Field(ge=1)
    status: Literal["new", "open", "pending", "hold", "solved", "closed"]
    changed_at: Moment
    public_reply: bool = False
    """An agent answered the requester publicly (the first response, for the health metrics)."""

    def trace_subject(self) -> str:
        return f"ticket#{self.ticket_id}"

    def log_fields(self) -> dict[str, Any]:
        return {"event_type": self.type, "ticket_id": self.ticket_id, "status": self.status}


class RequesterErased(Event):
    """A member was erased at their request (the onboarding erasure hands this on): their Zendesk user is deleted
    for good and our thread -> ticket links for them are purged."""

    type: Literal["requester_erased"] = "requester_erased"
    emails: list[str] = Field(default_factory=list, max_length=20)
    identities: list[EventKey] = Field(default_factory=list, max_length=50)

    @field_validator("emails")
    @classmethod
    def _valid_emails(cls, values: list[str]) -> list[str]:
        return [check_email(value) or value for value in values]

    def trace_subject(self) -> str:
        """Not the member's own subjects: the erasure deletes those."""
        return ERASURE_REQUESTS

    def log_fields(self) -> dict[str, Any]:
        return {"event_type": self.type, "emails": len(self.emails), "identities": len(self.identities)}
