"""Registration events: someone registered for an event (a meetup, a webinar), cancelled or was refunded, or
attended it. Eventbrite's deliveries only say which order or attendee changed (its `api_url`); the consumer
fetches the resource itself. Zoom's deliveries carry the registrant or participant."""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import Field, field_validator

from memberflow.events.base import Event
from memberflow.models import EventKey, Moment, Name, check_email
from memberflow.privacy import mask_email
from memberflow.trace import ERASURE_REQUESTS

REGISTRATIONS_SUBJECT = "registrations"
"""Where registration events are traced before the member is known (an Eventbrite delivery names no one)."""

EventbriteAction = Literal[
    "order.placed",
    "order.refunded",
    "order.updated",
    "attendee.updated",
    "attendee.checked_in",
    "attendee.checked_out",
]
EVENTBRITE_ACTIONS: tuple[str, ...] = get_args(EventbriteAction)


class EventbriteChanged(Event):
    """An Eventbrite order or attendee changed: the resource at `api_url` says how (fetched by the consumer, only
    on the Eventbrite API host, and only used when it belongs to a configured organization or event)."""

    type: Literal["registration_changed"] = "registration_changed"
    action: EventbriteAction
    api_url: str = Field(min_length=1, max_length=2048)
    webhook_id: EventKey | None = None

    def trace_subject(self) -> str:
        return REGISTRATIONS_SUBJECT

    def log_fields(self) -> dict[str, Any]:
        return {"event_type": self.type, "action": self.action}


class ZoomEvent(Event):
    """A Zoom webinar or meeting (its numeric id) and the person it is about."""

    zoom_id: EventKey = Field(min_length=1)
    email: str
    name: Name | None = None
    at: Moment

    @field_validator("email")
    @classmethod
    def _valid_email(cls, value: str) -> str:
        checked = check_email(value)
        if checked is None:
            raise ValueError("an address is required")
        return checked

    def trace_subject(self) -> str:
        from memberflow.trace import email_subject

        return email_subject(self.email)

    def log_fields(self) -> dict[str, Any]:
        return {"event_type": self.type, "zoom_id": self.zoom_id, "member_email": mask_email(self.email)}


class ZoomRegistered(ZoomEvent):
    """`webinar.registration_created`."""

    type: Literal["zoom_registered"] = "zoom_registered"


class ZoomAttended(ZoomEvent):
    """`webinar.participant_joined` or `meeting.participant_joined`: the person attended."""

    type: Literal["zoom_attended"] = "zoom_attended"


class RegistrantErased(Event):
    """A member was erased at their request (the onboarding erasure hands this on): their registrations are
    deleted. It names the member ids registrations are stored under (`privacy.email_key` of each address the
    person registered with), never an address."""

    type: Literal["registrant_erased"] = "registrant_erased"
    member_ids: list[EventKey] = Field(min_length=1, max_length=100)

    def trace_subject(self) -> str:
        """Not the member's own subjects: the erasure deletes those."""
        return ERASURE_REQUESTS

    def log_fields(self) -> dict[str, Any]:
        return {"event_type": self.type, "member_ids": len(self.member_ids)}
