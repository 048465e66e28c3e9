"""The escalation consumer's work.

An escalation: (1) a safety report reaches the moderators' channel first, before any ticket work; (2) the thread's
link is claimed in our own store with a conditional write *before* Zendesk is called, so two escalations of one
thread (or a retry racing a redelivery) never open two tickets; (3) the claiming escalation creates the ticket
(Idempotency-Key: a retry after a timeout returns the ticket already made); (4) a later escalation of the thread adds
a comment to the open ticket, or opens a follow-up of a solved or closed one.

A status change (Zendesk's webhook): recorded with the first-response and resolution times, and the member is told
once per ticket and status, where they asked."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from memberflow import activity
from memberflow.consent import FindsSuppressions, latest_erasure
from memberflow.errors import InvalidMessage, PermanentRefusal, Transient
from memberflow.escalation.ports import Messenger, NewTicket, Requester, TicketDesk, TicketLink, TicketLinks
from memberflow.escalation.rules import EscalationRules, Rule
from memberflow.events.escalations import EscalationRequested, RequesterErased, TicketStatusChanged
from memberflow.pipeline.envelope import QueuedEvent
from memberflow.ports import ActivityLog
from memberflow.trace import Outcome, Step, StepRecorder, TraceRecorder, email_subject, erased_subject, identity_subject

logger = logging.getLogger(__name__)

CONSUMER = "escalation"
CLOSED_STATUSES = frozenset({"solved", "closed"})
UNKNOWN_JOB = "unknown"
"""A bulk job was asked for but its id is not known (the answer was lost): the ticket may exist."""
IDEMPOTENCY_KEY_HOURS = 2
"""Zendesk keeps an Idempotency-Key this long; an older claim looks for its ticket before creating it."""
SUBJECT_LENGTH = 80


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class EscalationDeps:
    desk: TicketDesk
    links: TicketLinks
    messenger: Messenger
    rules: EscalationRules
    trace: TraceRecorder
    clock: Callable[[], datetime] = utc_now
    moderator_notices: set[str] = field(default_factory=set)
    """Escalations whose moderator notice went out in this container (the consumer's idempotency covers the rest)."""
    activity: ActivityLog | None = None
    """The activity log (tickets opened, first replies, solved, by category) for the health report; None: not kept."""
    suppressions: FindsSuppressions | None = None
    """Who asked to be forgotten (keyed hashes): an escalation received before its author's erasure is dropped;
    None: not consulted (tests of other parts)."""
    not_erased: set[str] = field(default_factory=set)
    """Escalations (idempotency keys) the batch's bulk pass just found not erased: their one-by-one turn, a moment
    later, does not read the suppression list again."""


def handlers(deps: Callable[[], EscalationDeps]) -> dict[str, Callable[[QueuedEvent], Any]]:
    return {
        "escalation_requested": lambda queued: escalate(deps(), queued),
        "ticket_status_changed": lambda queued: status_changed(deps(), queued),
        "requester_erased": lambda queued: forget_requester(deps(), queued),
    }


# ---------------------------------------------------------------- escalations


def escalate(deps: EscalationDeps, queued: QueuedEvent, *, _closing: bool = False) -> dict[str, Any]:
    event = queued.event
    if not isinstance(event, EscalationRequested):
        raise InvalidMessage(f"not an escalation: {event.type}")
    checked = queued.idempotency_key in deps.not_erased
    deps.not_erased.discard(queued.idempotency_key)
    if not _closing and not checked and _dropped_after_erasure(deps, queued, event):
        return {"result": "dropped_after_erasure"}
    rule = deps.rules.named(event.rule)
    if rule is None:
        raise PermanentRefusal("unknown rule", f"no escalation rule is called {event.rule!r} any more")
    step = StepRecorder.for_event(deps.trace, queued)
    key = queued.idempotency_key
    if rule.alerts_moderators and key not in deps.moderator_notices and not deps.links.was_alerted(key):
        # First, before any ticket work: a human sees a safety report within seconds even if Zendesk is down. The
        # mark after it keeps a retry (in any container) from alerting twice.
        deps.messenger.notify_moderators(_moderator_text(deps.rules, rule, event))
        deps.links.mark_alerted(key)
        deps.moderator_notices.add(key)
        step(Step.ESCALATION_ALERTED, Outcome.OK, f"moderators alerted ({rule.category})")

    link = deps.links.get(event.thread)
    if link is None or (link.ticket_id is not None and link.status in CLOSED_STATUSES and link.claim_key != key):
        previous = link.ticket_id if link is not None else None
        claim = _new_link(deps, event, rule, key, previous)
        if not deps.links.claim(claim, replacing_ticket=previous):
            raise Transient("another escalation of this thread is creating its ticket")
        link = claim
    if link.claim_key == key:
        if link.ticket_id is None:
            ticket_id = _create_claimed(deps, event, rule, link)
            _log_ticket(deps, replace(link, ticket_id=ticket_id), activity.TICKET_OPENED, link.created_at)
            step(Step.TICKET_CREATED, Outcome.OK, f"ticket #{ticket_id} ({rule.category}, {rule.priority})")
            return {"result": "ticket_created", "ticket_id": ticket_id}
        return {"result": "ticket_created", "ticket_id": link.ticket_id}
    if link.ticket_id is None:
        raise Transient("the thread's ticket is still being created")
    if key in link.comments:
        return {"result": "commented", "ticket_id": link.ticket_id}
    try:
        deps.desk.add_comment(link.ticket_id, _comment(event, rule))
    except PermanentRefusal as refusal:
        if refusal.status != 422 or _closing:
            raise
        # Zendesk refuses to update a closed ticket (its webhook may not have told us yet): a follow-up it is.
        deps.links.record_status(link.ticket_id, "closed", deps.clock(), False)
        return escalate(deps, queued, _closing=True)
    deps.links.note_comment(event.thread, key)
    step(Step.TICKET_COMMENTED, Outcome.OK, f"escalated again: comment on ticket #{link.ticket_id}")
    return {"result": "commented", "ticket_id": link.ticket_id}


def _erased_after(deps: EscalationDeps, queued: QueuedEvent, event: EscalationRequested) -> str | None:
    """The keyed hash of the author's erasure when it came after this escalation was received (it waited in the
    queue, was retried or redriven); None otherwise. A later escalation is the person's new request."""
    if deps.suppressions is None:
        return None
    erasure = latest_erasure(deps.suppressions, event.email, event.author.key)
    return erasure.key if erasure is not None and queued.received_at <= erasure.erased_at else None


def _dropped_after_erasure(deps: EscalationDeps, queued: QueuedEvent, event: EscalationRequested) -> bool:
    """Nothing of an erased person goes to Zendesk or our links again: no moderators' notice, requester, ticket or
    link. Recorded under the erasure's keyed hash, without the message or who wrote it."""
    erasure = _erased_after(deps, queued, event)
    if erasure is None:
        return False
    StepRecorder(deps.trace, erased_subject(erasure), queued.correlation_id, queued.source)(
        Step.SKIPPED,
        Outcome.SKIPPED,
        f"{event.type} received {queued.received_at:%Y-%m-%d %H:%M:%S} UTC, before the erasure: dropped",
    )
    return True


def _create_claimed(deps: EscalationDeps, event: EscalationRequested, rule: Rule, link: TicketLink) -> int:
    """Create the ticket this escalation claimed, or find the one an earlier attempt made."""
    ticket_id = _already_made(deps, link)
    if ticket_id is None:
        ticket = deps.desk.create(new_ticket(event, rule, link.previous_ticket), _zendesk_key(link))
        ticket_id, status = ticket.id, ticket.status
    else:
        status = "new"
    deps.links.complete(link.thread, link.claim_key, ticket_id, status)
    return ticket_id


def _already_made(deps: EscalationDeps, link: TicketLink) -> int | None:
    """A bulk job that ran for the claim, or (once Zendesk has forgotten the Idempotency-Key) a ticket an earlier
    attempt created: found through the job status or by external id, never through search (it lags)."""
    if link.job_id not in (None, UNKNOWN_JOB) and link.job_index is not None:
        try:
            job = deps.desk.job(str(link.job_id))
        except PermanentRefusal:
            job = None  # expired (kept one day): the external id tells
        if job is not None and not job.done:
            raise Transient("the bulk job creating this ticket is still running", retry_after=5)
        if job is not None and link.job_index in job.tickets:
            return job.tickets[link.job_index]
    if link.job_id is not None or deps.clock() - link.created_at > timedelta(hours=IDEMPOTENCY_KEY_HOURS):
        for ticket in deps.desk.tickets_with_external_id(external_id(link.thread)):
            if link.previous_ticket is None or ticket.id > link.previous_ticket:
                return ticket.id
    return None


def _new_link(
    deps: EscalationDeps, event: EscalationRequested, rule: Rule, key: str, previous: int | None
) -> TicketLink:
    return TicketLink(
        thread=event.thread,
        claim_key=key,
        created_at=deps.clock(),
        member=event.trace_subject(),
        previous_ticket=previous,
        details={
            "platform": event.platform,
            "reply_to": event.reply_to.model_dump(exclude_none=True),
            "name": display_name(event),
            "email": event.email or "",
            "category": rule.category,
            "identity": event.author.key,
        },
    )


def display_name(event: EscalationRequested) -> str:
    """How messages name the member: their name, or on Slack a mention (Slack events carry no names)."""
    if event.author_name:
        return event.author_name
    return f"<@{event.author.user_id}>" if event.platform == "slack" else event.author.user_id


def _zendesk_key(link: TicketLink) -> str:
    return "memberflow-" + hashlib.sha256(f"{link.thread}|{link.claim_key}".encode()).hexdigest()[:48]


def external_id(thread: str) -> str:
    """The ticket's `external_id`: stable per thread, short, and without the member's ids in clear."""
    return "community-" + hashlib.sha256(thread.encode()).hexdigest()[:32]


def new_ticket(event: EscalationRequested, rule: Rule, followup_of: int | None = None) -> NewTicket:
    """The ticket for an escalation: the same escalation always gives the same ticket (Idempotency-Key)."""
    name = event.author_name or event.author.user_id
    first_line = " ".join(event.text.split())[:SUBJECT_LENGTH] or f"{rule.category} escalation"
    lines = [
        event.text or "(no message text: see the link)",
        "",
        f"Author: {name} ({event.platform} user {event.author.user_id})",
        f"Channel: {event.channel_name or event.reply_to.channel or event.reply_to.topic_id or event.platform}",
        f"Link: {event.permalink or '(none)'}",
        f"Escalated by: {event.via} (rule {rule.name})",
    ]
    return NewTicket(
        subject=f"[{rule.category}] {first_line}",
        description="\n".join(lines),
        requester=Requester(name=name, email=event.email, external_id=event.author.key),
        priority=rule.priority,
        tags=tuple(dict.fromkeys(("community", event.platform, rule.category, *rule.tags))),
        external_id=external_id(event.thread),
        group_id=rule.group_id,
        followup_of=followup_of,
    )


def _comment(event: EscalationRequested, rule: Rule) -> str:
    return (
        f"Escalated again ({event.via}, rule {rule.name}) at {event.requested_at.isoformat()}:\n\n"
        f"{event.text or '(no message text)'}\n\nLink: {event.permalink or '(none)'}"
    )


def _moderator_text(rules: EscalationRules, rule: Rule, event: EscalationRequested) -> str:
    return rules.templates.moderators.format(
        category=rule.category,
        name=display_name(event),
        permalink=event.permalink or event.thread,
        ticket_id="",
        status="",
    )


# ---------------------------------------------------------------- bursts


def escalate_in_bulk(deps: EscalationDeps, batch: Sequence[QueuedEvent], max_per_job: int = 100) -> int:
    """Before a batch is worked one by one: claim every new thread and create their tickets with Zendesk's bulk
    API (up to 100 per call), completing the links from the job status. Anything that does not work out here is
    left to the one-by-one path (which finds the job through the link), so this only saves calls. Returns how many
    tickets were created."""
    claimed: list[tuple[TicketLink, NewTicket]] = []
    threads: set[str] = set()
    deps.not_erased.clear()  # only this batch's: a message left unworked is checked again when it comes back
    for queued in batch:
        event = queued.event
        if not isinstance(event, EscalationRequested) or event.thread in threads or not event.email:
            continue
        if _erased_after(deps, queued, event) is not None:
            continue  # the one-by-one path drops it and records why
        deps.not_erased.add(queued.idempotency_key)
        rule = deps.rules.named(event.rule)
        if rule is None or rule.alerts_moderators or deps.links.get(event.thread) is not None:
            continue  # safety reports go one by one: their moderators' notice comes first
        link = _new_link(deps, event, rule, queued.idempotency_key, None)
        if deps.links.claim(link):
            threads.add(event.thread)
            claimed.append((link, new_ticket(event, rule)))
    created = 0
    for start in range(0, len(claimed), max_per_job):
        chunk = claimed[start : start + max_per_job]
        try:
            # Noted before the call: if its answer is lost, the one-by-one path looks for the tickets first.
            for index, (link, _) in enumerate(chunk):
                deps.links.note_job(link.thread, link.claim_key, UNKNOWN_JOB, index)
            job_id = deps.desk.create_many([ticket for _, ticket in chunk])
            for index, (link, _) in enumerate(chunk):
                deps.links.note_job(link.thread, link.claim_key, job_id, index)
            created += _complete_from_job(deps, job_id, [link for link, _ in chunk])
        except (Transient, PermanentRefusal) as error:
            logger.warning("bulk ticket creation left to single creates", extra={"error": type(error).__name__})
    return created


def _complete_from_job(deps: EscalationDeps, job_id: str, links: list[TicketLink], polls: int = 10) -> int:
    for attempt in range(polls):
        job = deps.desk.job(job_id)
        if job.done:
            for index, link in enumerate(links):
                if index in job.tickets:
                    deps.links.complete(link.thread, link.claim_key, job.tickets[index], "new")
                    opened = replace(link, ticket_id=job.tickets[index])
                    _log_ticket(deps, opened, activity.TICKET_OPENED, link.created_at)
            return len(job.tickets)
        _pause(min(2.0, 0.2 * (attempt + 1)))
    return 0


def _pause(seconds: float) -> None:
    import time

    time.sleep(seconds)


# ---------------------------------------------------------------- status changes


def status_changed(deps: EscalationDeps, queued: QueuedEvent) -> dict[str, Any]:
    event = queued.event
    if not isinstance(event, TicketStatusChanged):
        raise InvalidMessage(f"not a ticket status change: {event.type}")
    link = deps.links.record_status(event.ticket_id, event.status, event.changed_at, event.public_reply)
    if link is None:
        return {"result": "not_ours"}
    # Noted on every change: the same ticket and kind is one record (its id), at the moment the link measured.
    if link.first_response_seconds is not None:
        at = link.created_at + timedelta(seconds=link.first_response_seconds)
        _log_ticket(deps, link, activity.TICKET_FIRST_REPLY, at)
    if link.resolution_seconds is not None:
        _log_ticket(deps, link, activity.TICKET_SOLVED, link.created_at + timedelta(seconds=link.resolution_seconds))
    text = deps.rules.templates.for_status(event.status)
    if text is None:
        return {"result": "recorded"}
    details = link.details
    if not deps.links.mark_notified(event.ticket_id, event.status):
        return {"result": "already_told"}
    message = text.format(
        ticket_id=event.ticket_id,
        status=event.status,
        name=details.get("name") or "there",
        category=details.get("category", ""),
    )
    step = StepRecorder(deps.trace, link.member, queued.correlation_id, queued.source)
    try:
        told = deps.messenger.tell_member(
            str(details.get("platform", "")), details.get("reply_to") or {}, details.get("email") or None, message
        )
    except PermanentRefusal as refusal:
        # Nowhere to say it (a flagged forum post names no topic, their thread is gone and no address is on file),
        # or refused for good: recorded with the reason, not retried.
        why = f"{refusal.title} ({refusal.detail})" if refusal.detail else refusal.title
        step(Step.MEMBER_TOLD, Outcome.REFUSED, f"ticket #{event.ticket_id} {event.status}: not told: {why}")
        return {"result": "not_told", "reason": refusal.title, "why": refusal.detail}
    except Exception:
        deps.links.unmark_notified(event.ticket_id, event.status)
        raise
    instead = f" ({told.instead_of})" if told.instead_of else ""
    step(Step.MEMBER_TOLD, Outcome.OK, f"ticket #{event.ticket_id} {event.status}: told by {told.channel}{instead}")
    result = {"result": "told", "channel": told.channel}
    if told.instead_of:
        result["instead_of"] = told.instead_of
    return result


def _log_ticket(deps: EscalationDeps, link: TicketLink, kind: str, at: datetime) -> None:
    """One ticket record of the activity log. The link names its member by trace subject (`email#<member id>` or
    `identity#<identity key>`), whose second half is the member id onboarding gives the same person."""
    activity.note(
        deps.activity,
        kind,
        member_id=link.member.split("#", 1)[-1],
        platform=str(link.details.get("platform") or "unknown"),
        at=at,
        source_key=f"ticket:{link.ticket_id}",
        category=link.details.get("category"),
        ticket=str(link.ticket_id),
    )


# ---------------------------------------------------------------- erasure


def forget_requester(deps: EscalationDeps, queued: QueuedEvent) -> dict[str, Any]:
    """The person asked to be forgotten: their Zendesk user is deleted, then deleted for good (their open tickets
    are closed first: Zendesk keeps a ticket's requester until it is closed), and their links are purged. Every
    step is safe to repeat.

    Their links name the tickets of their threads (by external id): Zendesk finds those, and so the requesters it
    created for them (a bulk job's, by address only), at once, where its search would miss a requester created in
    the last minutes. The links go only after Zendesk is done, so a retry still has them."""
    event = queued.event
    if not isinstance(event, RequesterErased):
        raise InvalidMessage(f"not a requester erasure: {event.type}")
    subjects = {email_subject(email) for email in event.emails} | {identity_subject(i) for i in event.identities}
    threads = sorted({link.thread for subject in sorted(subjects) for link in deps.links.requesters(subject)})
    users = deps.desk.forget_requester(event.emails, event.identities, [external_id(thread) for thread in threads])
    links = sum(deps.links.erase_member(subject) for subject in subjects)
    logger.info("requester erased", extra={"zendesk_users": users, "links": links})
    return {"result": "erased", "zendesk_users": users, "links": links}
