"""`POST /escalations`: internal tools ask for a ticket explicitly, authenticated with an API key (`X-Api-Key`, the
webhook secrets' `escalations_api_key`). The category names the escalation rule that gives priority, tags and
group; an unknown category is a 400 naming `category`.

    {"request_id": "crm-881", "category": "billing", "thread_id": "crm-case-881", "text": "...",
     "member": {"id": "42", "email": "ada@example.org", "name": "Ada"}, "permalink": "https://...",
     "requested_at": "2026-11-30T10:00:00Z"}
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

from pydantic import AwareDatetime, ConfigDict, Field

from memberflow.events import EscalationRequested
from memberflow.intake.errors import build, invalid_payload, validate
from memberflow.intake.source import Accepted, Interpretation, WebhookRequest, dig, email_or_none
from memberflow.schema import Model
from memberflow.signatures import SignatureError

API_KEY_HEADER = "x-api-key"


class ExplicitMember(Model):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=256)
    email: str | None = None
    name: str | None = Field(default=None, max_length=512)


class ExplicitEscalation(Model):
    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(min_length=1, max_length=200)
    category: str = Field(min_length=1, max_length=64)
    thread_id: str = Field(min_length=1, max_length=200)
    text: str = Field(min_length=1, max_length=20_000)
    member: ExplicitMember
    permalink: str | None = Field(default=None, max_length=2_000)
    requested_at: AwareDatetime
    workspace: str = Field(default="internal", min_length=1, max_length=200)


class ExplicitEscalationSource:
    name = "escalations"
    secret_key = "escalations_api_key"
    form_payload_field: str | None = None

    def __init__(self, categories: Mapping[str, str]) -> None:
        self.categories = dict(categories)
        """Category -> the rule that serves it (from the escalation rules)."""

    def verify(self, secret: str, request: WebhookRequest, *, now: float, window: int) -> None:
        given = request.headers.get(API_KEY_HEADER, "")
        if not given:
            raise SignatureError("missing_signature", "the X-Api-Key header is missing")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            raise SignatureError("invalid_signature", "the X-Api-Key header is not a valid key")

    def claimed_email(self, payload: Any) -> str | None:
        return email_or_none(dig(payload, "member", "email"))

    def interpret(self, payload: Any, headers: Mapping[str, str]) -> Interpretation:
        request = validate(ExplicitEscalation, payload)
        rule = self.categories.get(request.category)
        if rule is None:
            known = ", ".join(sorted(self.categories)) or "none configured"
            raise invalid_payload([{"field": "category", "problem": f"unknown category; known: {known}"}])
        escalation = build(
            EscalationRequested,
            {"author": "member.id", "email": "member.email", "author_name": "member.name", "thread": "thread_id"},
            thread=f"api:{request.workspace}:{request.thread_id}",
            platform="api",
            via="api",
            rule=rule,
            author={"platform": "generic", "workspace": request.workspace, "user_id": request.member.id},
            author_name=request.member.name,
            email=request.member.email,
            text=request.text,
            permalink=request.permalink,
            requested_at=request.requested_at,
        )
        return Accepted(escalation, f"escalation:api:{request.workspace}:{request.request_id}")
