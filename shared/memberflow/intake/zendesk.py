"""Zendesk's webhook for ticket status changes (an event-subscribed webhook, `zen:event-type:ticket.status_changed`,
signed with the webhook's signing secret). Only tickets memberflow opened matter; the consumer tells their member.

Body (Zendesk's event schema): `{"type", "id", "time", "subject": "zen:ticket:<id>", "detail": {"id", "status",
...}, "event": {"current", "previous"}}`. Zendesk may invoke a webhook more than once for one action: the event id
is the idempotency key, and the consumer tells a member once per ticket and status anyway."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, Field, field_validator

from memberflow import signatures
from memberflow.events import TicketStatusChanged
from memberflow.intake.errors import build, validate
from memberflow.intake.source import Accepted, Ignored, Interpretation, WebhookRequest
from memberflow.schema import Model

STATUS_CHANGED = "zen:event-type:ticket.status_changed"
STATUSES = ("new", "open", "pending", "hold", "solved", "closed")


class ZendeskTicketDetail(Model):
    id: int = Field(ge=1)
    status: str | None = None
    updated_at: datetime | None = None


class ZendeskStatusEvent(Model):
    current: str
    previous: str | None = None

    @field_validator("current")
    @classmethod
    def _known(cls, value: str) -> str:
        if value.lower() not in STATUSES:
            raise ValueError(f"must be one of {', '.join(STATUSES)}")
        return value.lower()


class ZendeskWebhookEvent(Model):
    type: str = Field(min_length=1)
    id: str = Field(min_length=1, max_length=200)
    time: AwareDatetime


class ZendeskStatusChanged(ZendeskWebhookEvent):
    detail: ZendeskTicketDetail
    event: ZendeskStatusEvent


class ZendeskSource:
    name = "zendesk"
    secret_key = "zendesk_webhook_secret"
    form_payload_field: str | None = None

    def verify(self, secret: str, request: WebhookRequest, *, now: float, window: int) -> None:
        signatures.verify_zendesk(secret, request.body, request.headers, now=now, window=window)

    def claimed_email(self, payload: Any) -> str | None:
        return None

    def interpret(self, payload: Any, headers: Mapping[str, str]) -> Interpretation:
        kind = validate(ZendeskWebhookEvent, payload).type
        if kind != STATUS_CHANGED:
            return Ignored(f"Zendesk event {kind[:80]} is not used")
        delivery = validate(ZendeskStatusChanged, payload)
        changed = build(
            TicketStatusChanged,
            {"ticket_id": "detail.id", "status": "event.current", "changed_at": "time"},
            ticket_id=delivery.detail.id,
            status=delivery.event.current,
            changed_at=delivery.time,
        )
        return Accepted(changed, f"zendesk:{delivery.id}")
