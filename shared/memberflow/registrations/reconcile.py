"""The scheduled reconciliation: pull the full attendee list of each configured event that is upcoming or ended
recently, and repair in bulk whatever the webhooks missed (missing contacts, registrations, tags); once the event
has ended, everyone who held a place and did not attend is a no-show. Mailchimp is called per change, in calls of
at most 500, never per attendee: a list that is already in sync costs no Mailchimp call at all."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import timedelta
from typing import Any

from memberflow.bulk import BulkMember
from memberflow.config import SyncedEvent
from memberflow.members import MemberRecord
from memberflow.ports import Suppression
from memberflow.privacy import email_key, email_suppression_name
from memberflow.registrations.model import (
    Registration,
    Report,
    Status,
    attendee_from,
    event_from,
    merge,
    next_status,
    tags_for,
)
from memberflow.registrations.sync import (
    SyncDeps,
    erased_since,
    first_registration,
    merge_fields,
    remember_member,
    status_if_new,
)


def reconcile_all(deps: SyncDeps, *, recent_days: int, correlation_id: str) -> list[Report]:
    """Every configured event that has not ended more than `recent_days` ago."""
    now = deps.clock()
    reports = []
    for synced in deps.events:
        info = event_from(deps.eventbrite.event(synced.eventbrite_event_id))
        if info.end is not None and info.end < now - timedelta(days=recent_days):
            continue
        ended = info.end is not None and info.end <= now
        reports.append(reconcile_event(synced, deps, ended=ended, correlation_id=correlation_id))
    return reports


def reconcile_event(synced: SyncedEvent, deps: SyncDeps, *, ended: bool, correlation_id: str) -> Report:
    now = deps.clock()
    raw = deps.eventbrite.attendees(synced.eventbrite_event_id)
    attendees = merge(a for item in raw if (a := attendee_from(item)) is not None)
    existing = {registration.member_id: registration for registration in deps.registrations.for_event(synced.slug)}
    report = Report(event_slug=synced.slug, attendees=len(attendees))

    # Attendees new to the event: their member records in a few batch reads, kept as stored after each join; and
    # every attendee's erasure, if any, also in batches.
    members = deps.members.get_many(
        [member_id for attendee in attendees.values() if (member_id := email_key(attendee.email)) not in existing]
    )
    erasures = _erasures([email_suppression_name(a.email) for a in attendees.values()], deps)
    wanted: dict[str, Registration] = {}
    for attendee in attendees.values():
        member_id = email_key(attendee.email)
        current = existing.get(member_id)
        if current is None and erased_since(attendee, erasures.get(email_suppression_name(attendee.email))):
            report.details["erased"] = report.details.get("erased", 0) + 1  # not brought back
            continue
        status = next_status(current, attendee, ended=ended)
        if current is None:
            before = members.get(member_id)
            members[member_id] = remember_member(attendee, deps.members, correlation_id, now)
            in_mailchimp = bool(
                before and before.mailchimp_status and not before.mailchimp_status.startswith("refused")
            )
            current = Registration(
                event_slug=synced.slug,
                member_id=member_id,
                email=attendee.email,
                status=status,
                first_time=first_registration(before, synced.eventbrite_event_id),
                in_mailchimp=in_mailchimp,
                sources=frozenset({"eventbrite"}),
                registered_at=attendee.created or now,
            )
            report.created += 1
        elif current.status is not status:
            report.changed += 1
        wanted[member_id] = replace(current, status=status, sources=current.sources | {"eventbrite"})
    if ended:
        # Registrations Eventbrite does not list (a Zoom registrant) follow the same rule.
        for member_id, current in existing.items():
            if member_id not in wanted and current.status is Status.REGISTERED:
                wanted[member_id] = replace(current, status=Status.NO_SHOW)
                report.changed += 1
    report.no_shows = sum(1 for registration in wanted.values() if registration.status is Status.NO_SHOW)

    by_member = {email_key(attendee.email): attendee for attendee in attendees.values()}
    _add_missing_contacts(
        wanted, attendees_by_id=by_member, members=members, erasures=erasures, deps=deps, report=report
    )
    _retag_in_bulk(wanted, deps, report)

    changed = [
        replace(registration, updated_at=now)
        for member_id, registration in wanted.items()
        if existing.get(member_id) != registration
    ]
    deps.registrations.put_many(changed)
    for registration in changed:
        deps.log(registration)
    return report


def _add_missing_contacts(
    wanted: dict[str, Registration],
    *,
    attendees_by_id: dict[str, Any],
    members: dict[str, MemberRecord],
    erasures: dict[str, Suppression | None],
    deps: SyncDeps,
    report: Report,
) -> None:
    """Bring to Mailchimp, in bulk, the registrants it does not hold yet. `members` and `erasures`: the member records
    and the erasures (by suppression name) already read; the rest is read here, in batches."""
    missing = [
        registration
        for registration in wanted.values()
        if not registration.in_mailchimp and not registration.refused and registration.status is not Status.CANCELLED
    ]
    if not missing:
        return
    unread = [registration.member_id for registration in missing if registration.member_id not in members]
    if unread:
        members.update(deps.members.get_many(unread))
    unchecked = [name for r in missing if (name := email_suppression_name(r.email)) not in erasures]
    if unchecked:
        erasures.update(_erasures(unchecked, deps))
    contacts = [
        BulkMember(
            email=registration.email,
            status=status_if_new(
                members.get(registration.member_id),
                forgotten_before=erasures.get(email_suppression_name(registration.email)) is not None,
            ),
            merge_fields=merge_fields(attendees_by_id[registration.member_id])
            if registration.member_id in attendees_by_id
            else {},
        )
        for registration in missing
    ]
    outcome = deps.bulk.subscribe_many(deps.list_id, contacts)
    refused = {address.lower(): refusal for address, refusal in outcome.refused.items()}
    for registration in missing:
        refusal = refused.get(registration.email.lower())
        if refusal is not None and refusal.permanent:
            wanted[registration.member_id] = replace(registration, refused=refusal.kind.value)
            report.refused += 1
        elif refusal is None:
            wanted[registration.member_id] = replace(registration, in_mailchimp=True)
            report.contacts_added += 1
    asked = {contact.email.lower(): contact.status for contact in contacts}
    for address in outcome.created:
        member_id = email_key(address)
        deps.settle(member_id, asked[address.lower()], "eventbrite", f"reconcile:{member_id}", members.get(member_id))


def _erasures(names: list[str], deps: SyncDeps) -> dict[str, Suppression | None]:
    """Suppression name -> its latest erasure, or None: every name looked up, in batches."""
    found = deps.suppressions.find_many(names)
    return {name: found.get(name) for name in names}


def _retag_in_bulk(wanted: dict[str, Registration], deps: SyncDeps, report: Report) -> None:
    to_add: dict[str, list[str]] = defaultdict(list)
    to_remove: dict[str, list[str]] = defaultdict(list)
    for registration in wanted.values():
        if not registration.in_mailchimp:
            continue
        tags = tags_for(registration.event_slug, registration.status)
        for name in tags - registration.tags:
            to_add[name].append(registration.email)
        for name in registration.tags - tags:
            to_remove[name].append(registration.email)
    for name, emails in sorted(to_add.items()):
        deps.bulk.tag_many(deps.list_id, name, emails)
        report.tags_added += len(emails)
    for name, emails in sorted(to_remove.items()):
        deps.bulk.untag_many(deps.list_id, name, emails)
        report.tags_removed += len(emails)
    for member_id, registration in list(wanted.items()):
        if registration.in_mailchimp:
            wanted[member_id] = replace(registration, tags=tags_for(registration.event_slug, registration.status))
