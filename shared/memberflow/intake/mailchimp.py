"""Mailchimp audience webhooks: `POST /webhooks/mailchimp/<secret>`, form-encoded (`type=unsubscribe&fired_at=...&
data[email]=...&data[list_id]=...`), unsigned. Mailchimp signs nothing, so the secret at the end of the URL is what
proves the sender; Mailchimp checks the URL with a GET when the webhook is saved (answered 200 once the secret
matches). Subscribes, unsubscribes, cleaned addresses, profile updates and address changes become member events;
campaign notices are acknowledged and ignored."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field

from memberflow.events import (
    MailchimpAudienceEvent,
    MailchimpCleaned,
    MailchimpEmailChanged,
    MailchimpProfileUpdated,
    MailchimpSubscribed,
    MailchimpUnsubscribed,
)
from memberflow.intake.errors import build, validate
from memberflow.intake.source import Accepted, Ignored, Interpretation, WebhookRequest, dig, email_or_none
from memberflow.privacy import email_key
from memberflow.schema import Model
from memberflow.signatures import SignatureError

FIRED_AT_FORMAT = "%Y-%m-%d %H:%M:%S"
EVENT_TYPES: dict[str, type[MailchimpAudienceEvent]] = {
    "subscribe": MailchimpSubscribed,
    "unsubscribe": MailchimpUnsubscribed,
    "cleaned": MailchimpCleaned,
    "profile": MailchimpProfileUpdated,
    "upemail": MailchimpEmailChanged,
}


class MailchimpData(Model):
    model_config = ConfigDict(extra="allow")

    list_id: str = Field(min_length=1)
    email: str | None = None
    action: str | None = None
    reason: str | None = None
    campaign_id: str | None = None
    new_email: str | None = None
    old_email: str | None = None


class MailchimpDelivery(Model):
    model_config = ConfigDict(extra="allow")

    type: Literal["subscribe", "unsubscribe", "cleaned", "profile", "upemail", "campaign"]
    fired_at: datetime
    data: MailchimpData


class MailchimpSource:
    name = "mailchimp"
    secret_key = "mailchimp_webhook_secret"
    form_payload_field: str | None = None
    form_encoded = True
    """The body is a form (`data[email]=...`), read into nested objects."""
    answers_url_check = True
    """Mailchimp checks the URL with a GET when the webhook is saved: answered 200 once the secret matches."""

    def verify(self, secret: str, request: WebhookRequest, *, now: float, window: int) -> None:
        """The URL must end in the secret (`/webhooks/mailchimp/<secret>`); compared in constant time. There is no
        timestamp to check: Mailchimp retries for 75 minutes, and each delivery has its own idempotency key."""
        given = secret_from_path(request.path, self.name)
        if given is None:
            raise SignatureError(
                "missing_secret", "Mailchimp deliveries must be sent to /webhooks/mailchimp/<secret>: no secret given"
            )
        if not hmac.compare_digest(given.encode(), secret.encode()):
            raise SignatureError("invalid_secret", "the secret in the webhook URL does not match")

    def claimed_email(self, payload: Any) -> str | None:
        return email_or_none(dig(payload, "data", "email")) or email_or_none(dig(payload, "data", "old_email"))

    def interpret(self, payload: Any, headers: Mapping[str, str]) -> Interpretation:
        if isinstance(payload, dict) and isinstance(payload.get("fired_at"), str):
            payload = {**payload, "fired_at": _fired_at(payload["fired_at"])}
        delivery = validate(MailchimpDelivery, payload)
        if delivery.type == "campaign":
            return Ignored("Mailchimp campaign notice: not a member event")
        data = delivery.data
        fields: dict[str, Any] = {"list_id": data.list_id, "fired_at": delivery.fired_at}
        paths = {"list_id": "data[list_id]", "email": "data[email]", "fired_at": "fired_at"}
        if delivery.type == "upemail":
            fields |= {"email": data.old_email, "new_email": data.new_email}
            paths |= {"email": "data[old_email]", "new_email": "data[new_email]"}
        else:
            fields["email"] = data.email
        if delivery.type in ("unsubscribe", "cleaned"):
            fields |= {"reason": data.reason, "campaign_id": data.campaign_id}
        if delivery.type == "unsubscribe":
            fields["action"] = data.action
        event: MailchimpAudienceEvent = build(EVENT_TYPES[delivery.type], paths, **fields)
        # Mailchimp has no delivery id: the change itself (type, audience, address, moment) is the key, so its
        # retries are one event. The address is hashed, as in every key of ours.
        key = f"mailchimp:{delivery.type}:{data.list_id}:{email_key(event.email)}:{delivery.fired_at:%Y%m%dT%H%M%S}"
        return Accepted(event, key)


def secret_from_path(path: str, source: str) -> str | None:
    """The segment after `/webhooks/<source>/` (the API's stage may come first), or None."""
    parts = [part for part in path.split("/") if part]
    for index in range(len(parts) - 2):
        if parts[index] == "webhooks" and parts[index + 1] == source:
            rest = parts[index + 2 :]
            return rest[0] if len(rest) == 1 else None
    return None


def _fired_at(value: str) -> Any:
    """Mailchimp's `fired_at` (`YYYY-MM-DD HH:MM:SS`, UTC) as an aware time; anything else is left for validation
    to name."""
    try:
        return datetime.strptime(value, FIRED_AT_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return value
