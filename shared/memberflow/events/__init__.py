"""The event types memberflow knows. Each is registered with its model, the destination intake routes it to (a
queue named in template.yaml's EVENT_DESTINATIONS) and the consumer that handles it. A new automation adds its
events module and one line per event type to `CATALOG`; nothing else changes."""

from __future__ import annotations

from memberflow.events.base import Event, EventCatalog, EventType
from memberflow.events.escalations import EscalationRequested, RequesterErased, TicketStatusChanged
from memberflow.events.imports import ImportedMember, MemberImportChunk
from memberflow.events.mailchimp import (
    MailchimpAudienceEvent,
    MailchimpCleaned,
    MailchimpEmailChanged,
    MailchimpProfileUpdated,
    MailchimpSubscribed,
    MailchimpUnsubscribed,
)
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
from memberflow.events.registrations import EventbriteChanged, RegistrantErased, ZoomAttended, ZoomRegistered

MEMBER_EVENTS = "member-events"
"""Destination of member events: the queue the onboarding consumer reads."""
ESCALATIONS = "escalations"
"""Destination of escalations and ticket status changes: the queue the escalation consumer reads."""
MEMBER_IMPORTS = "member-imports"
"""Destination of import chunks: the queue the bulk import consumer reads."""
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
        EventType("escalation_requested", EscalationRequested, destination=ESCALATIONS, consumer="escalation"),
        EventType("ticket_status_changed", TicketStatusChanged, destination=ESCALATIONS, consumer="escalation"),
        EventType("requester_erased", RequesterErased, destination=ESCALATIONS, consumer="escalation"),
        EventType("mailchimp_subscribed", MailchimpSubscribed, destination=MEMBER_EVENTS, consumer="onboarding"),
        EventType("mailchimp_unsubscribed", MailchimpUnsubscribed, destination=MEMBER_EVENTS, consumer="onboarding"),
        EventType("mailchimp_cleaned", MailchimpCleaned, destination=MEMBER_EVENTS, consumer="onboarding"),
        EventType(
            "mailchimp_profile_updated", MailchimpProfileUpdated, destination=MEMBER_EVENTS, consumer="onboarding"
        ),
        EventType("mailchimp_email_changed", MailchimpEmailChanged, destination=MEMBER_EVENTS, consumer="onboarding"),
        EventType("member_import_chunk", MemberImportChunk, destination=MEMBER_IMPORTS, consumer="member-import"),
        EventType("registration_changed", EventbriteChanged, destination=REGISTRATIONS, consumer="event_sync"),
        EventType("zoom_registered", ZoomRegistered, destination=REGISTRATIONS, consumer="event_sync"),
        EventType("zoom_attended", ZoomAttended, destination=REGISTRATIONS, consumer="event_sync"),
        EventType("registrant_erased", RegistrantErased, destination=REGISTRATIONS, consumer="event_sync"),
    ]
)

__all__ = [
    "CATALOG",
    "ConsentGiven",
    "ESCALATIONS",
    "EscalationRequested",
    "RequesterErased",
    "REGISTRATIONS",
    "RegistrantErased",
    "TicketStatusChanged",
    "MEMBER_EVENTS",
    "Event",
    "EventCatalog",
    "EventType",
    "MailchimpAudienceEvent",
    "MailchimpCleaned",
    "MailchimpEmailChanged",
    "MailchimpProfileUpdated",
    "MailchimpSubscribed",
    "MailchimpUnsubscribed",
    "ImportedMember",
    "MEMBER_IMPORTS",
    "MemberImportChunk",
    "MemberAccountEvent",
    "MemberActive",
    "MemberErased",
    "MemberEvent",
    "MemberJoined",
    "MemberScreeningPassed",
    "MemberVerified",
]
