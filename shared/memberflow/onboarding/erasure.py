"""Erasure: a person who asked to be forgotten is removed from everywhere memberflow put them, and is not quietly
re-added later.

Removed: the Mailchimp contact (permanent delete: Mailchimp then refuses to re-add the address by API), the member
record with its due work (the drip's state, an opt-in wait: every item stored under the member), the identity
links (and the activity noted on them), and the trace records under the address and under each platform identity.

Kept: a suppression entry per address and per identity, which is a keyed hash (HMAC-SHA256 under a secret key of
the stack, never the value), the date and who passed the request on; and the erasure's own trace record filed
under that hash, so `memberflow trace EMAIL` answers "erased on <date>". A plain hash of an address would let
anyone with a list of candidate addresses confirm who asked to be forgotten; the keyed one needs the key.

Not touched: idempotency records. They hold what the consumer returned (`{"result", "status", ...}`, never an
address: tests check every handler's result) under a hash of the platform's event id.

A join received before the erasure (still queued, or redriven from the dead-letter queue) is dropped; a join
received after it is a re-join and gets double opt-in at most, never a direct subscribe (and Mailchimp refuses a
permanently deleted address by API: that refusal is recorded, not retried).

Other automations that keep something about members (escalation: the Zendesk user and the thread -> ticket links;
event sync: the event registrations) take part through `OnboardingDeps.erasure_participants`, right after
Mailchimp.

Order: Mailchimp first (it needs the address, which the member record may be the last to know), the suppression
next (so nothing re-adds the person while the rest goes), then the trace, the links, and the member record last.
Any failure raises and the worker retries the whole erasure; every step is safe to repeat.
"""

from __future__ import annotations

import logging
from typing import Any

from memberflow.errors import PermanentRefusal
from memberflow.events import MemberErased
from memberflow.members import MemberRecord
from memberflow.onboarding.join import OnboardingDeps
from memberflow.pipeline.envelope import QueuedEvent
from memberflow.privacy import email_key, email_suppression_name, identity_suppression_name, normalise_email
from memberflow.trace import Outcome, Step, StepRecorder, email_subject, erased_subject, identity_subject

logger = logging.getLogger(__name__)


def erase_member(queued: QueuedEvent, deps: OnboardingDeps) -> dict[str, Any]:
    event = queued.event
    assert isinstance(event, MemberErased)
    now = deps.clock()
    members = _named_members(event, deps)
    emails = _addresses(event, members)
    identities = sorted({key for member in members for key in member.identities} | _event_identity(event))

    mailchimp = _forget_in_mailchimp(list(emails.values()), deps)
    # The other automations' parts (a Zendesk user, ticket links): handed on before anything here is deleted, so a
    # failure retries the whole erasure with every address and identity still known.
    elsewhere = [
        participant.forget(sorted(emails.values()), identities, queued.idempotency_key, queued.correlation_id)
        for participant in deps.erasure_participants
    ]

    requested_by = queued.source
    suppressions = [deps.suppressions.add(email_suppression_name(e), now, requested_by) for e in emails] + [
        deps.suppressions.add(identity_suppression_name(key), now, requested_by) for key in identities
    ]
    trace_records = sum(deps.trace.erase(email_subject(email)) for email in emails) + sum(
        deps.trace.erase(identity_subject(key)) for key in identities
    )
    links = sum(deps.members.delete_link(key) for key in identities)
    items = sum(deps.members.erase(member.member_id) for member in members)

    detail = (
        f"erased at the person's request (via {requested_by}): Mailchimp {MAILCHIMP_OUTCOMES[mailchimp]}; removed "
        f"{len(members)} member record(s) ({items} item(s)), {links} identity link(s), {trace_records} trace "
        "record(s); only a keyed hash is kept, so a re-join needs a fresh opt-in"
        + "".join(f"; {part}" for part in elsewhere)
    )
    for suppression in suppressions:
        StepRecorder(deps.trace, erased_subject(suppression.key), queued.correlation_id, queued.source)(
            Step.ERASED, Outcome.OK, detail
        )
    logger.info("member erased", extra={"members": len(members), "identities": len(identities)})
    return {
        "result": "erased",
        "mailchimp": mailchimp,
        "member_records": len(members),
        "identity_links": links,
        "trace_records": trace_records,
    }


MAILCHIMP_OUTCOMES = {
    "deleted": "permanently deleted",
    "not_in_audience": "had no such contact",
    "refused": (
        "refused the permanent delete: delete the contact by hand in Mailchimp (Audience, the contact, Actions, "
        "Permanently delete)"
    ),
}


def _forget_in_mailchimp(emails: list[str], deps: OnboardingDeps) -> str:
    """Permanently delete every address; a refusal for good is this member's and is recorded, the rest of the
    erasure goes on (a failure of Mailchimp as a whole raises: the erasure is retried)."""
    outcome = "not_in_audience"
    for email in emails:
        try:
            if deps.mailing_list.forget(deps.rules.list_id, email):
                outcome = "deleted" if outcome != "refused" else outcome
        except PermanentRefusal as refusal:
            logger.warning("Mailchimp refused a permanent delete", extra={"reason": refusal.title})
            outcome = "refused"
    return outcome


def _named_members(event: MemberErased, deps: OnboardingDeps) -> list[MemberRecord]:
    """The members the request names: by the address, by the identity's link, and by any address those members
    used (a member who changed their address on the platform is found under both)."""
    ids: list[str] = []
    if event.email:
        ids.append(email_key(event.email))
    if event.identity is not None:
        link = deps.members.link(event.identity.key)
        if link and link.member_id:
            ids.append(link.member_id)
    members: dict[str, MemberRecord] = {}
    for _ in range(2):  # the addresses of the members found name at most one more member each
        for member_id in ids:
            if member_id not in members and (member := deps.members.get(member_id)) is not None:
                members[member_id] = member
        ids = [email_key(m.email) for m in members.values() if m.email and email_key(m.email) not in members]
    return list(members.values())


def _addresses(event: MemberErased, members: list[MemberRecord]) -> dict[str, str]:
    """Normalised address -> an address as it was given, for every address the request and the members name."""
    given = [event.email, *(member.email for member in members)]
    return {normalise_email(email): email for email in given if email}


def _event_identity(event: MemberErased) -> set[str]:
    return {event.identity.key} if event.identity is not None else set()
