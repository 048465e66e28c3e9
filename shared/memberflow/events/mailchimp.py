"""What Mailchimp's audience webhooks tell us about a member: they subscribed (confirmed a double opt-in, or signed up
through a Mailchimp form), unsubscribed, were cleaned (their address bounced, or they reported abuse), updated their
profile, or changed their address."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from memberflow.events.base import Event
from memberflow.models import Moment, Text, check_email
from memberflow.privacy import mask_email
from memberflow.trace import email_subject


def required_email(value: str) -> str:
    checked = check_email(value)
    if checked is None:
        raise ValueError("an address is required")
    return checked


class MailchimpAudienceEvent(Event):
    list_id: str = Field(min_length=1, max_length=64)
    email: str
    fired_at: Moment
    """When Mailchimp fired the webhook (its `fired_at`, UTC)."""

    @field_validator("email")
    @classmethod
    def _valid_email(cls, value: str) -> str:
        return required_email(value)

    def trace_subject(self) -> str:
        return email_subject(self.email)

    def log_fields(self) -> dict[str, Any]:
        return {"event_type": self.type, "member_email": mask_email(self.email)}


class MailchimpSubscribed(MailchimpAudienceEvent):
    type: Literal["mailchimp_subscribed"] = "mailchimp_subscribed"


class MailchimpUnsubscribed(MailchimpAudienceEvent):
    type: Literal["mailchimp_unsubscribed"] = "mailchimp_unsubscribed"
    action: Text | None = Field(default=None, max_length=32)
    """`unsub` (the member unsubscribed) or `delete` (the contact was deleted in Mailchimp)."""
    reason: Text | None = Field(default=None, max_length=64)
    """`manual` (the member's own click), `abuse`, ..."""
    campaign_id: Text | None = Field(default=None, max_length=64)


class MailchimpCleaned(MailchimpAudienceEvent):
    type: Literal["mailchimp_cleaned"] = "mailchimp_cleaned"
    reason: Text | None = Field(default=None, max_length=64)
    """`hard` (a hard bounce) or `abuse` (a spam report)."""
    campaign_id: Text | None = Field(default=None, max_length=64)


class MailchimpProfileUpdated(MailchimpAudienceEvent):
    type: Literal["mailchimp_profile_updated"] = "mailchimp_profile_updated"


class MailchimpEmailChanged(MailchimpAudienceEvent):
    """The member changed their address in Mailchimp (`upemail`): `email` is the old one."""

    type: Literal["mailchimp_email_changed"] = "mailchimp_email_changed"
    new_email: str

    @field_validator("new_email")
    @classmethod
    def _valid_new_email(cls, value: str) -> str:
        return required_email(value)
