"""Our own signed format, for sources without a dedicated integration (a sign-up form, a CRM export...)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import AwareDatetime, Field, StrictBool

from memberflow import signatures
from memberflow.events import MemberActive, MemberErased, MemberJoined
from memberflow.intake.errors import build, validate
from memberflow.intake.source import Accepted, Interpretation, WebhookRequest, dig, email_or_none
from memberflow.models import Platform
from memberflow.schema import Model


class GenericMember(Model):
    id: str = Field(min_length=1)
    email: str | None = None
    name: str | None = None
    username: str | None = None
    # Strict: only a JSON true is consent ("yes", 1 or "on" are refused with a 400, never read as consent).
    marketing_consent: StrictBool = False


class GenericEvent(Model):
    event_id: str = Field(min_length=1)
    type: Literal["member_joined", "member_active", "member_erased"]
    occurred_at: AwareDatetime
    workspace: str = Field(default="default", min_length=1)
    member: GenericMember


class GenericMemberJoined(GenericEvent):
    type: Literal["member_joined"]


class GenericMemberActive(GenericEvent):
    type: Literal["member_active"]
    activity: Literal["message", "post", "reaction"]


class GenericMemberErased(GenericEvent):
    """The person asked the source to forget them: they are erased everywhere (`onboarding.erasure`)."""

    type: Literal["member_erased"]


class GenericSource:
    name = "generic"
    secret_key = "generic_hmac_secret"
    form_payload_field: str | None = None

    def verify(self, secret: str, request: WebhookRequest, *, now: float, window: int) -> None:
        signatures.verify_generic(secret, request.body, request.headers, now=now, window=window)

    def claimed_email(self, payload: Any) -> str | None:
        return email_or_none(dig(payload, "member", "email"))

    def interpret(self, payload: Any, headers: Mapping[str, str]) -> Interpretation:
        kind = dig(payload, "type")
        if kind == "member_active":
            return _member_active(validate(GenericMemberActive, payload))
        if kind == "member_joined":
            return _member_joined(validate(GenericMemberJoined, payload))
        if kind == "member_erased":
            return _member_erased(validate(GenericMemberErased, payload))
        # Names `type` (missing or unknown) together with any other missing field.
        validate(GenericEvent, payload)
        raise AssertionError("GenericEvent accepts only the types handled above")


# Where each field of our events comes from in a delivery, so a 400 names the sender's field.
PATHS = {
    "email": "member.email",
    "identity": "member.id",
    "identity.workspace": "workspace",
    "name": "member.name",
    "username": "member.username",
    "joined_at": "occurred_at",
    "active_at": "occurred_at",
}


def _member_joined(delivery: GenericMemberJoined) -> Interpretation:
    joined = build(
        MemberJoined,
        PATHS,
        identity=_identity(delivery),
        email=delivery.member.email,
        name=delivery.member.name,
        username=delivery.member.username,
        joined_at=delivery.occurred_at,
        marketing_consent=delivery.member.marketing_consent,
    )
    return Accepted(joined, _idempotency_key(delivery))


def _member_active(delivery: GenericMemberActive) -> Interpretation:
    active = build(
        MemberActive,
        PATHS,
        identity=_identity(delivery),
        activity=delivery.activity,
        active_at=delivery.occurred_at,
        email=delivery.member.email,
    )
    return Accepted(active, _idempotency_key(delivery))


def _member_erased(delivery: GenericMemberErased) -> Interpretation:
    erased = build(
        MemberErased,
        {"email": "member.email", "identity": "member.id"},
        identity=_identity(delivery),
        email=delivery.member.email,
        requested_at=delivery.occurred_at,
    )
    return Accepted(erased, _idempotency_key(delivery))


def _identity(delivery: GenericEvent) -> dict[str, str]:
    return {"platform": Platform.GENERIC, "workspace": delivery.workspace, "user_id": delivery.member.id}


def _idempotency_key(delivery: GenericEvent) -> str:
    return f"generic:{delivery.event_id}"
