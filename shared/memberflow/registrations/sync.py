"""One registration at a time, as webhooks announce them: fetch what Eventbrite says (only from its API, only
for a configured organization or event), match the member by address (created when new, with the consent rules
every capability shares), upsert them in Mailchimp when they are not there yet, add and remove only the tags that
differ, and store the registration. Running it again with the same facts changes nothing."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from memberflow import activity, consent, consent_ledger
from memberflow.config import SyncedEvent
from memberflow.consent_ledger import Basis, ConsentRules
from memberflow.errors import PermanentRefusal, ResourceGone
from memberflow.events.registrations import EventbriteChanged, ZoomAttended, ZoomEvent
from memberflow.ledger import ConsentLedger
from memberflow.members import MemberJoin, MemberRecord
from memberflow.pipeline.envelope import QueuedEvent
from memberflow.ports import ActivityLog, BulkMailingList, MailingList, MemberRepository, Suppression, SuppressionList
from memberflow.privacy import email_key
from memberflow.registrations.model import (
    Attendee,
    EventbriteApi,
    Registration,
    RegistrationStore,
    Status,
    Ticket,
    attendee_from,
    event_from,
    gone_resource,
    merge,
    next_status,
    settled,
    tickets_by_person,
    with_tickets,
)
from memberflow.trace import Outcome, Step, StepRecorder, TraceRecorder, email_subject

EVENT_PLATFORMS = ("eventbrite", "zoom")


@dataclass
class SyncDeps:
    eventbrite: EventbriteApi
    mailing_list: MailingList
    bulk: BulkMailingList
    members: MemberRepository
    suppressions: SuppressionList
    registrations: RegistrationStore
    trace: TraceRecorder
    list_id: str
    events: Sequence[SyncedEvent]
    organization_id: str = ""
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    ledger: ConsentLedger | None = None
    """The consent ledger: a registrant brought to Mailchimp gets the entry that explains their status."""
    consent_rules: ConsentRules = field(default_factory=ConsentRules)
    activity: ActivityLog | None = None
    """The activity log (registrations, attendance, no-shows) for the health report's event figures."""

    def log(self, registration: Registration) -> None:
        """A registration in the activity log: one record per event, member and kind (its id), so a retry or a
        reconcile run adds none. A cancelled registration was still registered once."""
        kinds = [activity.REGISTRATION]
        if registration.status is Status.ATTENDED:
            kinds.append(activity.ATTENDED)
        elif registration.status is Status.NO_SHOW:
            kinds.append(activity.NO_SHOW)
        for kind in kinds:
            at = registration.registered_at if kind == activity.REGISTRATION and registration.registered_at else None
            activity.note(
                self.activity,
                kind,
                member_id=registration.member_id,
                platform=sorted(registration.sources)[0] if registration.sources else "eventbrite",
                at=at or self.clock(),
                source_key=f"event:{registration.event_slug}:{registration.member_id}",
                event=registration.event_slug,
            )

    def settle(
        self, member_id: str, status: str, source: str, event_id: str, member: MemberRecord | None = None
    ) -> None:
        """The Mailchimp status a registrant reached, on their record and (with why) in their ledger. `member`: their
        record when the caller has it (read here otherwise)."""
        if self.ledger is None:
            self.members.set_mailchimp_status(member_id, status, opted_out=status in consent.OPTED_OUT)
            return
        member = member or self.members.get(member_id)
        basis = Basis(source, "registration", event_id, self.clock())
        consented = bool(member and member.marketing_consent)
        consent_ledger.settle(self.ledger, self.members, member_id, status, consented, basis, self.consent_rules)

    def by_eventbrite_id(self, event_id: str) -> SyncedEvent | None:
        return next((event for event in self.events if event.eventbrite_event_id == event_id), None)

    def by_zoom_id(self, zoom_id: str) -> SyncedEvent | None:
        return next((event for event in self.events if event.zoom_id == zoom_id), None)


def sync_eventbrite(queued: QueuedEvent, deps: SyncDeps) -> dict[str, Any]:
    """An order or attendee changed: settle each person it names against all their tickets for the event, as
    Eventbrite now says (the webhook's unsigned body only says where to look: its action name decides nothing)."""
    event = queued.event
    assert isinstance(event, EventbriteChanged)
    try:
        resource = deps.eventbrite.fetch(event.api_url)
    except ResourceGone:
        return cancel_gone(queued, deps)
    found = resource.get("event")
    owner: dict[str, Any] = found if isinstance(found, dict) else {}
    info = event_from(owner) if owner.get("id") else None
    event_id = str(resource.get("event_id") or (info.event_id if info else ""))
    synced = deps.by_eventbrite_id(event_id)
    if synced is None or (deps.organization_id and info and info.organization_id != deps.organization_id):
        # Not ours: an event nobody configured, or another organization's (a forged api_url cannot get further).
        return {"result": "not_a_synced_event"}
    listed = resource.get("attendees")
    raw: list[Any] = listed if isinstance(listed, list) else [resource]
    attendees = [a for item in raw if isinstance(item, dict) and (a := attendee_from(item)) is not None]
    fetched = tickets_by_person(attendees)
    ended = bool(info and info.end and info.end <= deps.clock())
    results = [
        apply(synced, attendee, deps, queued.correlation_id, ended=ended, tickets=fetched.get(key, ()))
        for key, attendee in merge(attendees).items()
    ]
    return {
        "result": "synced",
        "attendees": len(results),
        "changed": sum(1 for r in results if r in ("created", "changed")),
    }


def cancel_gone(queued: QueuedEvent, deps: SyncDeps) -> dict[str, Any]:
    """Eventbrite no longer has the order or attendee the webhook names (404: the organizer deleted it): its
    tickets are cancelled in the registrations that came from it (a person keeps their place while another ticket
    of theirs is not cancelled, and attendance stays), and the message is finished, traced. Registrations are
    found by the tickets we keep: the event's own when the URL names it, else each synced event's (a deletion is
    rare; no Eventbrite call is made). One we never saw is only traced."""
    event = queued.event
    assert isinstance(event, EventbriteChanged)
    gone = gone_resource(event.api_url)
    step = StepRecorder.for_event(deps.trace, queued)
    if gone is None:  # the client only fetches orders and attendees: nothing else can be gone
        step(Step.SKIPPED, Outcome.SKIPPED, "Eventbrite no longer has the resource the webhook names (404)")
        return {"result": "gone", "registrations": 0}
    settled_now = 0
    for synced in deps.events:
        if gone.event_id and synced.eventbrite_event_id != gone.event_id:
            continue
        for current in deps.registrations.for_event(synced.slug):
            if current.walk_in or not any(gone.matches(ticket) for ticket in current.tickets):
                continue
            tickets = tuple(replace(t, cancelled=True) if gone.matches(t) else t for t in current.tickets)
            attendee = Attendee(
                event_id=synced.eventbrite_event_id,
                email=current.email,
                cancelled=all(ticket.cancelled for ticket in tickets),
                source="eventbrite",
            )
            _apply(synced, attendee, deps, queued.correlation_id, ended=False, current=current, tickets=tickets)
            settled_now += 1
    what = f"{gone.kind.removesuffix('s')} {gone.id}"
    if settled_now:
        step(
            Step.EVENT_RECEIVED,
            Outcome.OK,
            f"Eventbrite no longer has {what} (404: deleted): its tickets cancelled in {settled_now} registration(s)",
        )
    else:
        step(
            Step.SKIPPED,
            Outcome.SKIPPED,
            f"Eventbrite no longer has {what} (404: deleted); no registration came from it",
        )
    return {"result": "gone", "registrations": settled_now}


def sync_zoom(queued: QueuedEvent, deps: SyncDeps) -> dict[str, Any]:
    """A Zoom registration or join. A registration adds a place unless the person already has a registration (on
    Eventbrite, whose attendee list is the reference, a cancelled place stays cancelled). A join records attendance
    and changes nothing about the place: a cancelled place gets `attended` without `registered` again, and someone
    who joined without any registration (a host, a panelist, a forwarded link) is recorded as a walk-in: no member,
    no Mailchimp contact, not a registration."""
    event = queued.event
    assert isinstance(event, ZoomEvent)
    synced = deps.by_zoom_id(event.zoom_id)
    if synced is None:
        return {"result": "not_a_synced_event"}
    current = deps.registrations.get(synced.slug, email_key(event.email))
    joined = isinstance(event, ZoomAttended)
    if not joined and current is not None and not current.walk_in:
        return {"result": "unchanged"}  # already registered (on Eventbrite, or by an earlier delivery), or cancelled
    walk_in = joined and (current is None or current.walk_in)
    attendee = Attendee(
        event_id=synced.eventbrite_event_id,
        email=event.email,
        name=event.name,
        cancelled=walk_in or (joined and current is not None and not current.held),
        checked_in=joined,
        created=event.at,
        source="zoom",
    )
    return {
        "result": _apply(synced, attendee, deps, queued.correlation_id, ended=False, current=current, walk_in=walk_in)
    }


def apply(
    synced: SyncedEvent,
    attendee: Attendee,
    deps: SyncDeps,
    correlation_id: str,
    *,
    ended: bool,
    tickets: Sequence[Ticket] = (),
) -> str:
    """Bring one person's registration in line with `attendee` (what Eventbrite said in the resource just fetched;
    `tickets`: the person's tickets in it), settled against all the tickets we know of theirs: 'created',
    'changed' or 'unchanged' ('erased' when it is a registration the person's erasure removed)."""
    current = deps.registrations.get(synced.slug, email_key(attendee.email))
    known = with_tickets(current.tickets if current else (), tickets)
    return _apply(synced, settled(attendee, known), deps, correlation_id, ended=ended, current=current, tickets=known)


def _apply(
    synced: SyncedEvent,
    attendee: Attendee,
    deps: SyncDeps,
    correlation_id: str,
    *,
    ended: bool,
    current: Registration | None,
    tickets: tuple[Ticket, ...] | None = None,
    walk_in: bool = False,
) -> str:
    """`attendee.cancelled`: the person holds no place now; `tickets`: their Eventbrite tickets (None: unchanged);
    `walk_in`: a Zoom join without any registration."""
    member: MemberRecord | None = None
    # Whether the person was erased before: read here for a new registration, else when it is first added.
    forgotten: bool | None = None
    if current is None:
        erasure = consent.latest_erasure(deps.suppressions, attendee.email, None)
        if erased_since(attendee, erasure):
            return "erased"
        forgotten = erasure is not None
    if walk_in and current is None:
        registration = _walk_in(synced, attendee)
    elif not walk_in and (current is None or current.walk_in):
        # New to the event, or a walk-in who turns out to hold a place: a registrant now (a member, a contact).
        registration, member = _new_registration(synced, attendee, deps, correlation_id)
    else:
        assert current is not None
        registration = current
    status = next_status(current, attendee, ended=ended)
    if current is not None and current.status is Status.NO_SHOW and status is Status.REGISTERED:
        status = Status.NO_SHOW  # the run after the event decided it; only attendance or a cancellation moves it
    step = StepRecorder(deps.trace, email_subject(attendee.email), correlation_id, attendee.source)
    registration = replace(
        registration,
        status=status,
        held=not attendee.cancelled,
        walk_in=walk_in,
        tickets=(current.tickets if current else ()) if tickets is None else tickets,
        sources=(current.sources if current else frozenset()) | registration.sources | {attendee.source},
    )
    if (
        not registration.walk_in
        and not registration.in_mailchimp
        and not registration.refused
        and status is not Status.CANCELLED
    ):
        member = member or deps.members.get(registration.member_id)
        registration = _add_contact(registration, attendee, deps, step, member, forgotten)
    registration = _retag(registration, deps, step)
    if current is not None and _same(current, registration):
        return "unchanged"
    deps.registrations.put(replace(registration, updated_at=deps.clock()))
    if registration.walk_in:
        step(
            Step.EVENT_RECEIVED,
            Outcome.OK,
            f"attended {synced.slug} without a registration: attendance recorded (no contact, no tags)",
        )
        return "walk_in"
    deps.log(registration)
    place = "" if registration.held or status is Status.CANCELLED else " (place cancelled)"
    step(Step.EVENT_RECEIVED, Outcome.OK, f"registration for {synced.slug}: {status}{place}")
    return "changed" if current and not current.walk_in else "created"


def _same(a: Registration, b: Registration) -> bool:
    return replace(a, updated_at=None) == replace(b, updated_at=None)


def _walk_in(synced: SyncedEvent, attendee: Attendee) -> Registration:
    """Someone who joined on Zoom without a registration: attendance only."""
    return Registration(
        event_slug=synced.slug,
        member_id=email_key(attendee.email),
        email=attendee.email,
        status=Status.ATTENDED,
        first_time=False,
        held=False,
        walk_in=True,
    )


def _new_registration(
    synced: SyncedEvent, attendee: Attendee, deps: SyncDeps, correlation_id: str
) -> tuple[Registration, MemberRecord]:
    """The registration of someone new to the event, and their member record as stored now."""
    member_id = email_key(attendee.email)
    before = deps.members.get(member_id)
    first_time = first_registration(before, attendee.event_id)
    member = remember_member(attendee, deps.members, correlation_id, deps.clock())
    registration = Registration(
        event_slug=synced.slug,
        member_id=member_id,
        email=attendee.email,
        status=Status.REGISTERED,
        first_time=first_time,
        in_mailchimp=bool(before and before.mailchimp_status and not before.mailchimp_status.startswith("refused")),
        registered_at=attendee.created or deps.clock(),
    )
    return registration, member


def erased_since(attendee: Attendee, erasure: Suppression | None) -> bool:
    """The person asked to be forgotten (`erasure`: the latest erasure of their address) after making this
    registration (Eventbrite's order time, Zoom's registration or join time; unknown counts as before): the erasure
    deleted it, and Eventbrite still listing the order must not bring it (or the member) back. A registration made
    after the erasure is a new one."""
    return erasure is not None and (attendee.created is None or attendee.created <= erasure.erased_at)


def first_registration(member: MemberRecord | None, event_id: str) -> bool:
    """Whether this is the member's first event: no registration of another event is linked to them (each event
    a member registers for links an identity `<eventbrite|zoom>:<event id>:<member>`)."""
    if member is None:
        return True
    return not any(
        identity.split(":")[1] != event_id
        for identity in member.identities
        if identity.split(":")[0] in EVENT_PLATFORMS and identity.count(":") >= 2
    )


def remember_member(attendee: Attendee, members: MemberRepository, correlation_id: str, now: datetime) -> MemberRecord:
    """The member the address names, created when new (a registrant gives no marketing consent here); their record
    as stored now."""
    member_id = email_key(attendee.email)
    return members.record_join(
        MemberJoin(
            member_id=member_id,
            identity_key=f"{attendee.source}:{attendee.event_id}:{member_id}",
            platform=attendee.source,
            joined_at=attendee.created or now,
            correlation_id=correlation_id,
            email=attendee.email,
            name=attendee.name,
        )
    )


def status_if_new(member: MemberRecord | None, *, forgotten_before: bool) -> str:
    """The Mailchimp status a registrant new to the audience gets: the consent rules every capability shares
    (a registration carries no marketing consent, so: kept without marketing permission)."""
    return consent.status_for_new_member(
        consent.Facts(marketing_consent=bool(member and member.marketing_consent), email_verified=False),
        opted_out_before=bool(member and member.opted_out_before),
        forgotten_before=forgotten_before,
    )


def merge_fields(attendee: Attendee) -> dict[str, str]:
    first, _, last = (attendee.name or "").partition(" ")
    return {key: value for key, value in {"FNAME": first, "LNAME": last}.items() if value}


def _add_contact(
    registration: Registration,
    attendee: Attendee,
    deps: SyncDeps,
    step: StepRecorder,
    member: MemberRecord | None,
    forgotten_before: bool | None = None,
) -> Registration:
    """Upsert the registrant in Mailchimp. `forgotten_before`: whether they were erased before, when known (read here
    otherwise)."""
    forgotten = forgotten_before
    if forgotten is None:
        forgotten = consent.latest_erasure(deps.suppressions, attendee.email, None) is not None
    wanted = status_if_new(member, forgotten_before=forgotten)
    try:
        answer = deps.mailing_list.upsert_member(
            deps.list_id, attendee.email, status_if_new=wanted, merge_fields=merge_fields(attendee)
        )
    except PermanentRefusal as refusal:
        step(Step.MAILCHIMP_UPSERT, Outcome.REFUSED, f"Mailchimp refused the registrant: {refusal}")
        return replace(registration, refused=refusal.title)
    event_id = f"{attendee.source}:{registration.event_slug}:{registration.member_id}"
    deps.settle(registration.member_id, answer.status, attendee.source, event_id, member)
    step(Step.MAILCHIMP_UPSERT, Outcome.OK, f"upserted as {answer.status} (asked {wanted} if new)")
    return replace(registration, in_mailchimp=True)


def _retag(registration: Registration, deps: SyncDeps, step: StepRecorder) -> Registration:
    """Add and remove only the tags that differ from what Mailchimp holds for this registration."""
    if not registration.in_mailchimp:
        return registration
    wanted = registration.wanted_tags
    for name in sorted(wanted - registration.tags):
        deps.bulk.tag_many(deps.list_id, name, [registration.email])
    for name in sorted(registration.tags - wanted):
        deps.bulk.untag_many(deps.list_id, name, [registration.email])
    if wanted != registration.tags:
        added, removed = sorted(wanted - registration.tags), sorted(registration.tags - wanted)
        step(Step.TAGGED, Outcome.OK, f"tags added {', '.join(added) or '-'}; removed {', '.join(removed) or '-'}")
    return replace(registration, tags=wanted)
