"""Eventbrite webhooks. Eventbrite signs nothing: the endpoint is protected by a secret in its URL
(`POST /webhooks/eventbrite/<secret>`, the secret as the last path segment; `?token=<secret>` works too), and the
body, which only names the changed order or attendee by its `api_url`, is trusted for nothing else: the URL must
lead to the configured Eventbrite API, and the consumer checks that what it fetches there belongs to a configured
organization or event."""

from __future__ import annotations

import hmac
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field

from memberflow.events.registrations import EVENTBRITE_ACTIONS, EventbriteChanged
from memberflow.intake.errors import IntakeError, build, validate
from memberflow.intake.source import Accepted, Ignored, Interpretation, WebhookRequest
from memberflow.schema import Model
from memberflow.signatures import SignatureError

EVENTBRITE_API_URL = "https://www.eventbriteapi.com/v3"
TOKEN_QUERY = "token"


class EventbriteConfig(Model):
    action: str = Field(min_length=1)
    user_id: str | None = None
    endpoint_url: str | None = None
    webhook_id: str | None = None


class EventbriteDelivery(Model):
    config: EventbriteConfig
    api_url: str = Field(min_length=1, max_length=2048)


def api_resource_path(api_url: str, api_base: str) -> str | None:
    """The resource path of `api_url` (`/orders/1/`, `/events/2/attendees/3/`) when it leads to the Eventbrite API
    at `api_base` (same scheme, host and port, under its path); None otherwise."""
    try:
        url, base = urlsplit(api_url), urlsplit(api_base)
    except ValueError:
        return None
    prefix = base.path.rstrip("/")
    if (url.scheme, url.netloc.lower()) != (base.scheme, base.netloc.lower()) or url.username or url.password:
        return None
    if not url.path.startswith(prefix + "/") or ".." in url.path or url.fragment:
        return None
    resource = url.path[len(prefix) :]
    parts = [part for part in resource.split("/") if part]
    shapes = (["orders", "*"], ["attendees", "*"], ["events", "*", "attendees", "*"], ["events", "*", "orders", "*"])
    for shape in shapes:
        if len(parts) == len(shape) and all(want in ("*", got) for want, got in zip(shape, parts, strict=True)):
            if all(got.isdigit() for want, got in zip(shape, parts, strict=True) if want == "*"):
                return resource
    return None


class EventbriteSource:
    name = "eventbrite"
    secret_key = "eventbrite_webhook_token"
    form_payload_field: str | None = None

    def __init__(self, api_base: str = EVENTBRITE_API_URL) -> None:
        self.api_base = api_base.rstrip("/")

    def verify(self, secret: str, request: WebhookRequest, *, now: float, window: int) -> None:
        given = _path_token(request.path) or request.query.get(TOKEN_QUERY, "")
        if not given:
            raise SignatureError(
                "missing_signature", "the webhook URL must carry its secret: /webhooks/eventbrite/<secret>"
            )
        if not hmac.compare_digest(given.encode(), secret.encode()):
            raise SignatureError("invalid_signature", "the webhook URL's secret is not ours")

    def claimed_email(self, payload: Any) -> str | None:
        return None  # an Eventbrite delivery names no one

    def interpret(self, payload: Any, headers: Mapping[str, str]) -> Interpretation:
        delivery = validate(EventbriteDelivery, payload)
        action = delivery.config.action
        if action not in EVENTBRITE_ACTIONS:
            return Ignored(f"eventbrite {action[:64]} is not a registration change")
        resource = api_resource_path(delivery.api_url, self.api_base)
        if resource is None:
            raise IntakeError(
                400,
                "invalid_payload",
                "api_url must be an order or attendee of the Eventbrite API",
                [{"field": "api_url", "problem": f"not an order or attendee under {self.api_base}"}],
            )
        changed = build(
            EventbriteChanged,
            {"action": "config.action", "api_url": "api_url", "webhook_id": "config.webhook_id"},
            action=action,
            api_url=delivery.api_url,
            webhook_id=delivery.config.webhook_id,
        )
        # Eventbrite's deliveries carry no id of their own, and the same body announces every later change of the
        # resource: the key names the delivery's second, and the consumer syncs to the resource's current state, so
        # handling a repeated delivery again changes nothing.
        return Accepted(changed, f"eventbrite:{action}:{resource}@{int(time.time())}")


def _path_token(path: str) -> str:
    """The segment after `/webhooks/eventbrite/`, if the route has one."""
    parts = [part for part in path.split("/") if part]
    if len(parts) == 3 and parts[:2] == ["webhooks", "eventbrite"]:
        return parts[2]
    return ""
