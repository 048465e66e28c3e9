"""Zoom webhooks: signed (`x-zm-signature`, v0), with Zoom's endpoint validation answered, webinar registrations
and webinar or meeting participants who joined."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import AwareDatetime, Field

from memberflow import signatures
from memberflow.events.registrations import ZoomAttended, ZoomRegistered
from memberflow.intake.errors import build, validate
from memberflow.intake.source import Accepted, Ignored, Interpretation, Reply, WebhookRequest, dig, email_or_none
from memberflow.schema import Model

ZOOM_RETRY_WINDOW_SECONDS = 95 * 60
"""Zoom delivers again what was not answered in time 5, 25 and 85 minutes after the first attempt: a retry must
still fall inside the replay window (the consumer's idempotency makes a replay within it harmless). Only the past
side widens: a timestamp ahead of our clock gets the usual window, as nothing Zoom sends is post-dated."""

ATTENDANCE = ("webinar.participant_joined", "meeting.participant_joined")


class ZoomDelivery(Model):
    event: str = Field(min_length=1)
    event_ts: int | None = None
    payload: dict[str, Any]


class ZoomRegistrant(Model):
    id: str = Field(min_length=1)
    email: str = Field(min_length=1)
    first_name: str | None = None
    last_name: str | None = None


class ZoomRegistrationObject(Model):
    id: str | int
    uuid: str | None = None
    registrant: ZoomRegistrant


class ZoomParticipant(Model):
    email: str | None = None
    user_name: str | None = None
    user_id: str | None = None
    id: str | None = None
    join_time: AwareDatetime


class ZoomParticipantObject(Model):
    id: str | int
    uuid: str | None = None
    participant: ZoomParticipant


class ZoomSource:
    name = "zoom"
    secret_key = "zoom_secret_token"
    form_payload_field: str | None = None

    def __init__(self) -> None:
        self._secret = ""

    def verify(self, secret: str, request: WebhookRequest, *, now: float, window: int) -> None:
        self._secret = secret  # the url_validation answer is computed with it
        signatures.verify_zoom(
            secret,
            request.body,
            request.headers,
            now=now,
            window=max(window, ZOOM_RETRY_WINDOW_SECONDS),
            ahead=window,
        )

    def claimed_email(self, payload: Any) -> str | None:
        return email_or_none(dig(payload, "payload", "object", "registrant", "email")) or email_or_none(
            dig(payload, "payload", "object", "participant", "email")
        )

    def interpret(self, payload: Any, headers: Mapping[str, str]) -> Interpretation:
        delivery = validate(ZoomDelivery, payload)
        if delivery.event == "endpoint.url_validation":
            plain = validate(_UrlValidation, payload).payload.plainToken
            return Reply(signatures.zoom_url_validation(self._secret, plain))
        if delivery.event == "webinar.registration_created":
            return _registration(validate(_Registration, payload))
        if delivery.event in ATTENDANCE:
            return _attendance(validate(_Attendance, payload))
        return Ignored(f"zoom {delivery.event[:64]} is not a registration or attendance")


class _PlainToken(Model):
    plainToken: str = Field(min_length=1, max_length=512)  # noqa: N815 - Zoom's field name


class _UrlValidation(Model):
    payload: _PlainToken


class _RegistrationPayload(Model):
    object: ZoomRegistrationObject


MAX_EVENT_TS_MS = 253402300799000
"""Milliseconds before 9999: a moment every consumer can handle."""


class _Registration(Model):
    event: str
    event_ts: int = Field(ge=0, lt=MAX_EVENT_TS_MS)
    payload: _RegistrationPayload


class _AttendancePayload(Model):
    object: ZoomParticipantObject


class _Attendance(Model):
    event: str
    event_ts: int | None = None
    payload: _AttendancePayload


def _registration(delivery: _Registration) -> Interpretation:
    webinar = delivery.payload.object
    registrant = webinar.registrant
    name = " ".join(part for part in (registrant.first_name, registrant.last_name) if part) or None
    event = build(
        ZoomRegistered,
        {
            "zoom_id": "payload.object.id",
            "email": "payload.object.registrant.email",
            "name": "payload.object.registrant.first_name",
            "at": "event_ts",
        },
        zoom_id=str(webinar.id),
        email=registrant.email,
        name=name,
        at=_moment(delivery.event_ts),
    )
    return Accepted(event, f"zoom:registration:{webinar.id}:{registrant.id}")


def _attendance(delivery: _Attendance) -> Interpretation:
    meeting = delivery.payload.object
    participant = meeting.participant
    if not participant.email:
        return Ignored("zoom participant without an email address (a guest who gave none)")
    event = build(
        ZoomAttended,
        {
            "zoom_id": "payload.object.id",
            "email": "payload.object.participant.email",
            "name": "payload.object.participant.user_name",
            "at": "payload.object.participant.join_time",
        },
        zoom_id=str(meeting.id),
        email=participant.email,
        name=participant.user_name,
        at=participant.join_time,
    )
    who = participant.id or participant.user_id or participant.email
    return Accepted(event, f"zoom:{delivery.event}:{meeting.id}:{who}:{int(participant.join_time.timestamp())}")


def _moment(event_ts_ms: int) -> datetime:
    return datetime.fromtimestamp(event_ts_ms / 1000, UTC)
