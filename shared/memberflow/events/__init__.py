"""The event types memberflow knows. Each is registered with its model, the destination intake routes it to (a
queue named in template.yaml's EVENT_DESTINATIONS) and the consumer that handles it. A new automation adds its
events module and one line per event type to `CATALOG`; nothing else changes."""

from __future__ import annotations

from memberflow.events.base import Event, EventCatalog, EventType
from memberflow.events.members import (
    ConsentGiven,
    MemberAccountEvent,
    MemberActive,
    MemberErased,
    MemberEvent,
    MemberJoined,
    MemberScreeningPassed,
    MemberVerified,
)
from memberflow.events.registrations import EventbriteChanged, ZoomAttended, ZoomRegistered

MEMBER_EVENTS = "member-events"
"""Destination of member events: the queue the onboarding consumer reads."""
REGISTRATIONS = "registrations"
"""Destination of registration events: the queue the event sync consumer reads."""

CATALOG = EventCatalog(
    [
        EventType("member_joined", MemberJoined, destination=MEMBER_EVENTS, consumer="onboarding"),
        EventType("member_active", MemberActive, destination=MEMBER_EVENTS, consumer="onboarding"),
        EventType("member_erased", MemberErased, destination=MEMBER_EVENTS, consumer="onboarding"),
        EventType("member_verified", MemberVerified, destination=MEMBER_EVENTS, consumer="onboarding"),
        EventType("consent_given", ConsentGiven, destination=MEMBER_EVENTS, consumer="onboarding"),
        EventType("member_screening_passed", MemberScreeningPassed, destination=MEMBER_EVENTS, consumer="onboarding"),
        EventType("registration_changed", EventbriteChanged, destination=REGISTRATIONS, consumer="event_sync"),
        EventType("zoom_registered", ZoomRegistered, destination=REGISTRATIONS, consumer="event_sync"),
        EventType("zoom_attended", ZoomAttended, destination=REGISTRATIONS, consumer="event_sync"),
    ]
)

__all__ = [
    "CATALOG",
    "ConsentGiven",
    "MEMBER_EVENTS",
    "Event",
    "EventCatalog",
    "EventType",
    "MemberAccountEvent",
    "MemberActive",
    "MemberErased",
    "MemberEvent",
    "MemberJoined",
    "MemberScreeningPassed",
    "MemberVerified",
]
