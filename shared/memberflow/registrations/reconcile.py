"""The scheduled reconciliation: pull the full attendee list of each configured event that is upcoming or ended
recently, and repair in bulk whatever the webhooks missed (missing contacts, registrations, tags). Eventbrite's list
is the reference: a registration that came from Eventbrite and is no longer on it (a deleted ticket, an address
changed) is cancelled; once the event has ended, everyone else who held a place and did not attend is a no-show.
Mailchimp is called per change, in calls of at most 500, never per attendee: a list that is already in sync costs
no Mailchimp call at all. Each event stands alone: one that fails is left for the next run, the others go on.

Eventbrite's calls are the scarce part: the OAuth token's hourly limit is shared with the webhook fetches. A run
has a budget of calls (`CallBudget`: event reads and attendee pages, each attempt counted) and stops calling
Eventbrite once it is spent, and for the rest of the run as soon as Eventbrite throttles (a 429: the hour's calls
are gone, waiting inside the function would not bring them back). The events it did not get to are reported as
left, recorded (`RegistrationStore.set_reconcile_left`), and the next run starts with them."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from memberflow.bulk import BulkMember
from memberflow.config import SyncedEvent
from memberflow.errors import MemberflowError, RateLimited, Transient
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
    tickets_by_person,
)
from memberflow.registrations.sync import (
    SyncDeps,
    erased_since,
    first_registration,
    merge_fields,
    remember_member,
    status_if_new,
)

logger = logging.getLogger(__name__)


class ReconcileIncomplete(MemberflowError):
    """The run left an event for a reason the next run will not fix by itself (an account problem, an unexpected
    error): raised once every other event is done, so the run's failure alarms."""


MIN_CALLS_PER_EVENT = 2
"""An event read and one attendee page: an event is not started with fewer calls left."""
NOT_STARTED = "not started, "


class CallBudgetSpent(MemberflowError):
    """The run's Eventbrite calls do not reach: none is left (`needed` None), or the event in hand needs `needed`
    more than are left (known from its attendee list's first page). Not a failure: the event is left for the next
    run, which starts with it."""

    def __init__(self, message: str, needed: int | None = None) -> None:
        super().__init__(message)
        self.needed = needed


class CallBudgetTooSmall(MemberflowError):
    """An event's attendee list needs more calls than a whole run may make: no run reconciles it until the budget
    is raised (an operator's fix). The run goes on with the other events."""


@dataclass
class CallBudget:
    """The Eventbrite calls one run may make (`registrations.model.CallMeter`): `limit` (None: no limit, for tests
    and benchmarks) and how many were `spent`."""

    limit: int | None = None
    spent: int = 0
    eventbrite_throttled: bool = False
    """Eventbrite answered one of the run's requests with a 429."""

    def affords(self, calls: int) -> bool:
        return self.limit is None or self.spent + calls <= self.limit

    def spend(self) -> None:
        if not self.affords(1):
            raise CallBudgetSpent(f"the run's {self.limit} Eventbrite calls are spent")
        self.spent += 1

    def throttled(self) -> None:
        self.eventbrite_throttled = True

    def expect(self, calls: int) -> None:
        if self.limit is None:
            return
        if calls + MIN_CALLS_PER_EVENT > self.limit:
            raise CallBudgetTooSmall(
                f"its attendee list needs {calls + MIN_CALLS_PER_EVENT} Eventbrite calls, more than a run's "
                f"{self.limit}: raise RECONCILE_EVENTBRITE_CALL_BUDGET"
            )
        if not self.affords(calls):
            raise CallBudgetSpent(
                f"its attendee list needs {calls} more Eventbrite calls, {self.limit - self.spent} were left",
                needed=calls,
            )


def visit_order(events: Sequence[SyncedEvent], left: Sequence[str]) -> list[SyncedEvent]:
    """The events the last run left first, in its order, then the others as configured: an event left for lack of
    calls is the first to get them, and with a budget that never reaches all events, they take turns."""
    first = {slug: position for position, slug in enumerate(left)}
    return sorted(events, key=lambda synced: (synced.slug not in first, first.get(synced.slug, 0)))


def reconcile_all(
    deps: SyncDeps, *, recent_days: int, correlation_id: str, budget: CallBudget | None = None
) -> list[Report]:
    """Every configured event that has not ended more than `recent_days` ago, each on its own: one that fails
    (an error) gets a report saying why it was `left` for the next run, and the others are reconciled. An event our
    records already say ended longer ago is skipped without asking Eventbrite (the end is remembered from the run
    that last read the event).

    Eventbrite is called within `budget` (counted there): once it is spent, or as soon as Eventbrite throttles the
    run (a 429 the budget is told of; Mailchimp's throttling leaves only the event in hand), no event is started any
    more; each is reported left (not started, and why), nothing alarms,
    and the next run starts with the events left (`visit_order`). An event whose list needs more calls than are
    left is not begun (its first page says how many) and the others go on; one that needs more than a whole run's
    budget is left for an operator."""
    now = deps.clock()
    cutoff = now - timedelta(days=recent_days)
    budget = budget if budget is not None else CallBudget()
    run = replace(deps, eventbrite=deps.eventbrite.metered(budget))
    left_before = deps.registrations.reconcile_left()
    reports: list[Report] = []
    halted = ""  # once this run calls Eventbrite no more: why, in the report of each event it does not start
    not_started = 0
    for synced in visit_order(deps.events, left_before):
        known_end = deps.registrations.event_end(synced.slug)
        if known_end is not None and known_end < cutoff:
            continue
        if not halted and not budget.affords(MIN_CALLS_PER_EVENT):
            halted = _halted(CallBudgetSpent, f"the run's {budget.limit} Eventbrite calls were spent")
        if halted:
            reports.append(Report(event_slug=synced.slug, left=halted))
            not_started += 1
            continue
        try:
            info = event_from(run.eventbrite.event(synced.eventbrite_event_id))
            if info.end is not None and info.end != known_end:
                deps.registrations.set_event_end(synced.slug, info.end)
            if info.end is not None and info.end < cutoff:
                continue
            ended = info.end is not None and info.end <= now
            reports.append(reconcile_event(synced, run, ended=ended, correlation_id=correlation_id))
        except CallBudgetSpent as short:
            reports.append(_left(synced, short, needs_operator=False))
            if short.needed is None:
                halted = _halted(CallBudgetSpent, f"the run's {budget.limit} Eventbrite calls were spent")
        except RateLimited as throttled:
            reports.append(_left(synced, throttled))
            if budget.eventbrite_throttled:
                # The token's calls are spent for now (a 429, or a Retry-After too long to wait here): none for the
                # rest of this run, rather than one more 429 per event; the webhook fetches get theirs back sooner.
                # Mailchimp's throttling leaves only the event in hand.
                halted = _halted(type(throttled), f"Eventbrite throttled this run ({str(throttled)[:120]})")
        except Exception as error:  # noqa: BLE001 - one event's failure is reported, the others go on
            reports.append(_left(synced, error))
    _remember_left(deps, left_before, reports)
    logger.log(
        logging.WARNING if halted else logging.INFO,
        "reconciliation run stopped calling Eventbrite" if halted else "reconciliation run done",
        extra={
            "eventbrite_calls": budget.spent,
            "eventbrite_call_budget": budget.limit,
            "events_left": sum(1 for report in reports if report.left),
            "events_not_started": not_started,
        },
    )
    return reports


def _halted(kind: type[Exception], why: str) -> str:
    """Why each event a run no longer starts (its calls spent, Eventbrite throttling) is left for the next run,
    which starts with it; nothing for an operator."""
    return f"{kind.__name__}: {NOT_STARTED}{why}"


def _remember_left(deps: SyncDeps, before: Sequence[str], reports: Sequence[Report]) -> None:
    """Record the events this run left, for the next to start with (written only when they changed)."""
    left = [report.event_slug for report in reports if report.left]
    if left != list(before):
        deps.registrations.set_reconcile_left(left)


def _left(synced: SyncedEvent, error: Exception, *, needs_operator: bool | None = None) -> Report:
    """The report of an event left for the next run: the failure's kind (a message of our own vocabulary, which
    names no one; only the type of an unexpected error)."""
    reason = (
        f"{type(error).__name__}: {str(error)[:200]}" if isinstance(error, MemberflowError) else type(error).__name__
    )
    # Throttling, 5xx, unreachable, calls spent: the next run tries again by itself.
    operator = not isinstance(error, Transient) if needs_operator is None else needs_operator
    logger.log(
        logging.ERROR if operator else logging.WARNING,
        "event left for the next reconciliation run",
        extra={"event_slug": synced.slug, "reason": reason},
        exc_info=error if not isinstance(error, MemberflowError) else None,
    )
    return Report(event_slug=synced.slug, left=reason, needs_operator=operator)


def raise_if_incomplete(reports: Sequence[Report]) -> None:
    """After the run: fail it when an event was left for a reason only an operator can fix."""
    stuck = [report for report in reports if report.needs_operator]
    if stuck:
        raise ReconcileIncomplete(
            "events left for the next run: " + "; ".join(f"{r.event_slug} ({r.left})" for r in stuck)
        )


def reconcile_event(synced: SyncedEvent, deps: SyncDeps, *, ended: bool, correlation_id: str) -> Report:
    now = deps.clock()
    raw = [a for item in deps.eventbrite.attendees(synced.eventbrite_event_id) if (a := attendee_from(item))]
    attendees = merge(raw)
    listed = tickets_by_person(raw)
    existing = {registration.member_id: registration for registration in deps.registrations.for_event(synced.slug)}
    report = Report(event_slug=synced.slug, attendees=len(attendees))

    def new_to_event(member_id: str) -> bool:
        current = existing.get(member_id)
        return current is None or current.walk_in

    # Attendees new to the event (or walk-ins who turn out to hold a place): their member records in a few batch
    # reads, kept as stored after each join; and every attendee's erasure, if any, also in batches.
    members = deps.members.get_many(
        [member_id for attendee in attendees.values() if new_to_event(member_id := email_key(attendee.email))]
    )
    erasures = _erasures([email_suppression_name(a.email) for a in attendees.values()], deps)
    wanted: dict[str, Registration] = {}
    for key, attendee in attendees.items():
        member_id = email_key(attendee.email)
        current = existing.get(member_id)
        if current is None and erased_since(attendee, erasures.get(email_suppression_name(attendee.email))):
            report.details["erased"] = report.details.get("erased", 0) + 1  # not brought back
            continue
        status = next_status(current, attendee, ended=ended)
        registration = current
        if registration is None or registration.walk_in:
            before = members.get(member_id)
            members[member_id] = remember_member(attendee, deps.members, correlation_id, now)
            in_mailchimp = bool(
                before and before.mailchimp_status and not before.mailchimp_status.startswith("refused")
            )
            registration = Registration(
                event_slug=synced.slug,
                member_id=member_id,
                email=attendee.email,
                status=status,
                first_time=first_registration(before, synced.eventbrite_event_id),
                in_mailchimp=in_mailchimp,
                sources=current.sources if current else frozenset(),
                registered_at=attendee.created or now,
            )
            report.created += 1
        elif current is not None and (current.status, current.held) != (status, not attendee.cancelled):
            report.changed += 1
        wanted[member_id] = replace(
            registration,
            status=status,
            held=not attendee.cancelled,
            tickets=listed.get(key, ()),
            sources=registration.sources | {"eventbrite"},
        )
    for member_id, current in existing.items():
        if member_id in wanted or current.walk_in:
            continue
        if "eventbrite" in current.sources or current.tickets:
            # Eventbrite's list is the reference and no longer holds them (a deleted ticket, an address changed):
            # the place is cancelled, before or after the event (attendance stays).
            if not current.held and current.status in (Status.CANCELLED, Status.ATTENDED):
                continue
            status = Status.ATTENDED if current.status is Status.ATTENDED else Status.CANCELLED
            tickets = tuple(replace(ticket, cancelled=True) for ticket in current.tickets)
            wanted[member_id] = replace(current, status=status, held=False, tickets=tickets)
            report.cancelled += 1
            report.changed += 1
        elif ended and current.status is Status.REGISTERED:
            # Registered on Zoom only: the same rule as everyone else after the event.
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
        if not registration.in_mailchimp
        and not registration.refused
        and not registration.walk_in
        and registration.status is not Status.CANCELLED
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
        tags = registration.wanted_tags
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
            wanted[member_id] = replace(registration, tags=registration.wanted_tags)
