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
event sync: the event registrations) take part through `OnboardingDeps.erasure_participants`, right after the
suppression: an escalation still queued behind their part of the erasure then finds it and is dropped.

Who: every member record of the person and every platform identity, found before anything is deleted, by
following what the request names and what each record found names in turn: an address leads to the member keyed by
it; a platform identity to the member its link points to and to the member keyed by the identity itself (someone who
joined without an address, e.g. on Discord, and gave one later through /newsletter has a record under each); a
member record to its address and its identities.

Order: Mailchimp first (it needs the address, which the member record may be the last to know), the suppression
next (so nothing re-adds the person while the rest goes), the other automations, the trace, then the member records
and identity links in the reverse of the order they were found in: whatever led to a record or a link (the request,
the link or the record that named it) is deleted after it, and a member's profile goes last within their partition.
Any failure raises and the worker retries the whole erasure: the retry still finds everything that is left, so every
step is safe to repeat.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from memberflow.errors import PermanentRefusal
from memberflow.events import MemberErased
from memberflow.members import MemberRecord
from memberflow.onboarding.join import OnboardingDeps
from memberflow.pipeline.envelope import QueuedEvent
from memberflow.ports import MemberRepository
from memberflow.privacy import email_key, email_suppression_name, identity_suppression_name, normalise_email
from memberflow.trace import Outcome, Step, StepRecorder, email_subject, erased_subject, identity_subject

logger = logging.getLogger(__name__)


def erase_member(queued: QueuedEvent, deps: OnboardingDeps) -> dict[str, Any]:
    event = queued.event
    assert isinstance(event, MemberErased)
    now = deps.clock()
    # Everything to erase is known before anything is deleted.
    person = find_person(event, deps.members)
    members = list(person.members.values())
    emails = person.addresses
    identities = person.identities

    mailchimp = _forget_in_mailchimp(list(emails.values()), deps)
    requested_by = queued.source
    # Suppressed before the other automations hear of it: an escalation still queued, handled after their part of
    # the erasure, finds the suppression and is dropped instead of creating the Zendesk user again.
    suppressions = [deps.suppressions.add(email_suppression_name(e), now, requested_by) for e in emails] + [
        deps.suppressions.add(identity_suppression_name(key), now, requested_by) for key in identities
    ]
    # The other automations' parts (a Zendesk user, ticket links): handed on before anything here is deleted, so a
    # failure retries the whole erasure with every address and identity still known.
    elsewhere = [
        participant.forget(sorted(emails.values()), identities, queued.idempotency_key, queued.correlation_id)
        for participant in deps.erasure_participants
    ]
    trace_records = sum(deps.trace.erase(email_subject(email)) for email in emails) + sum(
        deps.trace.erase(identity_subject(key)) for key in identities
    )
    links = items = 0
    for kind, key in reversed(person.found):  # what led to a record or a link goes after it
        if kind == MEMBER:
            items += deps.members.erase(key)
        else:
            links += deps.members.delete_link(key)

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


MEMBER = "member"
IDENTITY = "identity"
Node = tuple[str, str]
"""(MEMBER, a member id) or (IDENTITY, a platform identity's key: its link)."""


@dataclass
class Person:
    """Everything of one person an erasure reaches, as found before anything is deleted."""

    members: dict[str, MemberRecord] = field(default_factory=dict)
    """Member id -> the member record, for every record found."""
    addresses: dict[str, str] = field(default_factory=dict)
    """Normalised address -> an address as it was given, for every address the request and the records name."""
    found: list[Node] = field(default_factory=list)
    """Every member id (a record, or what may be left under it) and identity (a link) to erase, in the order they
    were found: nearest to the request first."""

    @property
    def identities(self) -> list[str]:
        return sorted(key for kind, key in self.found if kind == IDENTITY)


def find_person(event: MemberErased, members: MemberRepository) -> Person:
    """The member records and identities of the person the request names, found breadth first: the address names
    the member keyed by it; an identity names the member its link points to and the member keyed by the identity
    itself (a member who joined without an address); a member record names the member keyed by its address, and its
    identities. A member id is erased whether or not a record is found under it (what an interrupted erasure left)."""
    person = Person()
    seen: set[Node] = set()
    queue: deque[Node] = deque()

    def reach(node: Node) -> None:
        if node not in seen:
            seen.add(node)
            person.found.append(node)
            queue.append(node)

    def address(email: str) -> None:
        person.addresses.setdefault(normalise_email(email), email)
        reach((MEMBER, email_key(email)))

    if event.email:
        address(event.email)
    if event.identity is not None:
        reach((IDENTITY, event.identity.key))
    while queue:
        kind, key = queue.popleft()
        if kind == IDENTITY:
            link = members.link(key)
            if link is not None and link.member_id:
                reach((MEMBER, link.member_id))
            reach((MEMBER, key))  # the member keyed by the identity: joined before giving an address
            continue
        member = members.get(key)
        if member is None:
            continue
        person.members[key] = member
        if member.email:
            address(member.email)
        for identity in member.identities:
            reach((IDENTITY, identity))
    return person
