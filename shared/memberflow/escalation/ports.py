"""What escalation needs from the outside: the help desk (Zendesk), our own thread -> ticket links, and the
channels that reach moderators and members. Adapters implement them; tests use in-memory fakes. Failures arrive as
`memberflow.errors`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class Requester:
    name: str
    email: str | None
    external_id: str
    """The member's platform identity (`slack:T1:U1`): matches the same person across escalations without email."""


@dataclass(frozen=True)
class NewTicket:
    subject: str
    description: str
    requester: Requester
    priority: str
    tags: tuple[str, ...]
    external_id: str
    group_id: int | None = None
    followup_of: int | None = None
    """A solved or closed ticket this one follows up (`via_followup_source_id`)."""


@dataclass(frozen=True)
class Ticket:
    id: int
    status: str
    external_id: str | None = None


@dataclass(frozen=True)
class JobResult:
    """A bulk job's outcome: `status` (queued, working, completed, failed) and, once done, the ticket id created for
    each submitted index (absent: that ticket failed)."""

    status: str
    tickets: Mapping[int, int] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.status in ("completed", "failed", "killed")


class TicketDesk(Protocol):
    def create(self, ticket: NewTicket, idempotency_key: str) -> Ticket:
        """One ticket; a retry with the same key and ticket never opens a second one."""

    def create_many(self, tickets: Sequence[NewTicket]) -> str:
        """Up to 100 tickets in one bulk job; the job's id."""

    def job(self, job_id: str) -> JobResult: ...

    def add_comment(self, ticket_id: int, body: str, *, public: bool = False) -> None: ...

    def tickets_with_external_id(self, external_id: str) -> list[Ticket]: ...

    def forget_requester(
        self, emails: Sequence[str], external_ids: Sequence[str], ticket_external_ids: Sequence[str] = ()
    ) -> int:
        """Delete, then permanently delete, the Zendesk users with these addresses or external ids (closing the
        tickets they request first), including those who request the tickets with `ticket_external_ids` (the
        member's threads: found without search, which lags); how many there were."""


@dataclass(frozen=True)
class TicketLink:
    """Our record of a thread's ticket (Zendesk search lags and `external_id` is not unique)."""

    thread: str
    claim_key: str
    """The escalation that claimed the thread (its idempotency key): the one that creates the ticket."""
    created_at: datetime
    member: str
    """The member's trace subject (a hash of the address, or the platform identity)."""
    ticket_id: int | None = None
    status: str | None = None
    job_id: str | None = None
    job_index: int | None = None
    previous_ticket: int | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    """What telling the member needs: platform, reply target, name, email, category."""
    comments: frozenset[str] = frozenset()
    notified: frozenset[str] = frozenset()
    first_response_seconds: int | None = None
    resolution_seconds: int | None = None


class TicketLinks(Protocol):
    def get(self, thread: str) -> TicketLink | None: ...

    def for_ticket(self, ticket_id: int) -> TicketLink | None: ...

    def claim(self, link: TicketLink, *, replacing_ticket: int | None = None) -> bool:
        """Write the link before any ticket is created, only if the thread has none (or, for a follow-up, still
        points at `replacing_ticket`); False when someone else claimed it."""

    def note_job(self, thread: str, claim_key: str, job_id: str, index: int) -> None: ...

    def complete(self, thread: str, claim_key: str, ticket_id: int, status: str) -> None: ...

    def note_comment(self, thread: str, key: str) -> None: ...

    def record_status(self, ticket_id: int, status: str, at: datetime, public_reply: bool) -> TicketLink | None:
        """Store the new status and the first-response and resolution times; the link, or None if unknown."""

    def mark_notified(self, ticket_id: int, status: str) -> bool:
        """True the first time only: a member is told once per ticket and status."""

    def unmark_notified(self, ticket_id: int, status: str) -> None:
        """Telling the member failed: the next delivery of the status change tries again."""

    def requesters(self, member: str) -> list[TicketLink]:
        """The links of the member's threads (an erasure finds their tickets through them)."""

    def erase_member(self, member: str) -> int:
        """Delete every link of the member's threads; how many."""

    def was_alerted(self, key: str) -> bool:
        """The moderators were alerted of this escalation (its idempotency key) already."""

    def mark_alerted(self, key: str) -> None: ...


@dataclass(frozen=True)
class Told:
    """How a member was told their ticket moved."""

    channel: str
    """slack, discourse or email."""
    instead_of: str = ""
    """Why the channel they asked in was not used, when another told them (`Slack thread refused: ...`)."""


class Messenger(Protocol):
    def notify_moderators(self, text: str) -> None:
        """Alert the moderators' channel. Its refusals are account problems (an operator fixes the channel)."""

    def tell_member(self, platform: str, reply_to: Mapping[str, Any], email: str | None, text: str) -> Told:
        """Reply where the member asked (Slack thread, Discourse topic) or, when there is nowhere to reply or that
        place refuses the reply for this member, by email; PermanentRefusal (its detail says why) when neither
        works."""
