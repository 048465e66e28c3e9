"""In-memory fakes of the ports, so domain rules are tested in milliseconds, without moto or the sandbox.
They keep the promises the real adapters make (conditional claims, identity links, Mailchimp's status rules)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from memberflow.bulk import BULK_LIMIT, BulkMember, BulkOutcome, MemberRefusal, RefusalKind
from memberflow.errors import ComplianceState, ForgottenAddress, Transient
from memberflow.ledger import ConsentEntry
from memberflow.members import IdentityLink, MemberJoin, MemberRecord
from memberflow.pipeline.policy import Park
from memberflow.pipeline.worker import QueuedMessage
from memberflow.ports import DueWork, ListMember, Suppression
from memberflow.privacy import keyed_hash
from memberflow.trace import Outcome, Step, TraceRecord


class MemoryTrace:
    def __init__(self) -> None:
        self.records: list[TraceRecord] = []

    def record(self, record: TraceRecord) -> None:
        self.records.append(record)

    def query(self, subject: str) -> list[TraceRecord]:
        return [r for r in self.records if r.subject == subject]

    def steps(self, subject: str | None = None) -> list[tuple[Step, Outcome]]:
        return [(r.step, r.outcome) for r in self.records if subject is None or r.subject == subject]

    def details(self) -> list[str]:
        return [r.detail for r in self.records]

    def erase(self, subject: str) -> int:
        kept = [r for r in self.records if r.subject != subject]
        erased = len(self.records) - len(kept)
        self.records = kept
        return erased


class FakeMailingList:
    """Mailchimp's rules that onboarding relies on: `status_if_new` only applies to new members, opted-out
    members keep their status, compliance-state addresses cannot be subscribed directly, and a permanently deleted
    address cannot be re-added by API at all."""

    def __init__(self) -> None:
        self.members: dict[str, str] = {}
        self.tags: dict[str, list[str]] = {}
        self.journeys: list[str] = []
        self.compliance_state: set[str] = set()
        self.forgotten: set[str] = set()
        self.failures: list[Exception] = []
        """Raised, in order, by the next calls."""
        self.calls: list[str] = []
        self.consent_fields: dict[str, dict[str, Any]] = {}
        """Address -> the consent fields (timestamps, marketing permissions) last sent for it."""

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if self.failures:
            raise self.failures.pop(0)

    def upsert_member(
        self,
        list_id: str,
        email: str,
        *,
        status_if_new: str,
        merge_fields: dict[str, str],
        consent_fields: Mapping[str, Any] | None = None,
    ) -> ListMember:
        self._call("upsert")
        key = email.lower()
        if key not in self.members:
            if key in self.forgotten:
                raise ForgottenAddress("Forgotten Email Not Subscribed", "permanently deleted", 400)
            if status_if_new == "subscribed" and key in self.compliance_state:
                raise ComplianceState("Member In Compliance State", "the address is in compliance state", 400)
            self.members[key] = status_if_new
        self.consent_fields.setdefault(key, {}).update(consent_fields or {})
        return ListMember(email, self.members[key])

    def set_status(
        self, list_id: str, email: str, status: str, consent_fields: Mapping[str, Any] | None = None
    ) -> ListMember:
        self._call("set_status")
        key = email.lower()
        if status == "subscribed" and key in self.compliance_state:
            raise ComplianceState("Member In Compliance State", "the address is in compliance state", 400)
        self.members[key] = status
        self.consent_fields.setdefault(key, {}).update(consent_fields or {})
        return ListMember(email, status)

    def member_status(self, list_id: str, email: str) -> str | None:
        self._call("status")
        return self.members.get(email.lower())

    def list_exists(self, list_id: str) -> bool:
        return True

    def add_tags(self, list_id: str, email: str, tags: list[str]) -> None:
        self._call("tags")
        self.tags.setdefault(email.lower(), []).extend(tags)

    def trigger_journey(self, journey_id: str, step_id: str, email: str) -> None:
        self._call("journey")
        self.journeys.append(email.lower())

    def forget(self, list_id: str, email: str) -> bool:
        self._call("forget")
        key = email.lower()
        self.tags.pop(key, None)
        if self.members.pop(key, None) is None:
            return False
        self.forgotten.add(key)
        return True

    def is_available(self) -> bool:
        return not self.failures


class FakeBulkMailingList(FakeMailingList):
    """FakeMailingList's audience, many members per call, as Mailchimp's bulk endpoints behave: at most 500 per
    call (more is a programming error here), existing members left alone without `update_existing`, compliance-state
    and forgotten addresses refused one by one, and unknown addresses ignored by tag calls. `calls` names each bulk
    call once (`subscribe_many`, `tag_many`, `untag_many`), whatever the number of members in it."""

    def __init__(self) -> None:
        super().__init__()
        self.invalid: set[str] = set()
        """Addresses refused as invalid."""
        self.sent: dict[str, BulkMember] = {}
        """The last bulk member sent per address, as sent (timestamps included)."""

    def subscribe_many(
        self, list_id: str, members: Sequence[BulkMember], *, update_existing: bool = False
    ) -> BulkOutcome:
        outcome = BulkOutcome()
        for start in range(0, len(members), BULK_LIMIT):
            self._call("subscribe_many")
            for member in members[start : start + BULK_LIMIT]:
                key = member.email.lower()
                self.sent[key] = member
                if key in self.invalid:
                    outcome.refused[key] = MemberRefusal(RefusalKind.INVALID_ADDRESS, "ERROR_GENERIC", "invalid")
                elif key in self.forgotten:
                    outcome.refused[key] = MemberRefusal(RefusalKind.FORGOTTEN_ADDRESS, "ERROR_GENERIC", "forgotten")
                elif key in self.members and not update_existing:
                    outcome.existing.append(key)
                elif member.status == "subscribed" and key in self.compliance_state:
                    outcome.refused[key] = MemberRefusal(RefusalKind.COMPLIANCE_STATE, "ERROR_GENERIC", "compliance")
                else:
                    (outcome.updated if key in self.members else outcome.created).append(key)
                    self.members[key] = member.status
        return outcome

    def tag_segment_id(self, list_id: str, tag: str) -> str:
        return f"segment-{tag}"

    def tag_many(self, list_id: str, tag: str, emails: Sequence[str]) -> BulkOutcome:
        return self._segment("tag_many", tag, emails, add=True)

    def untag_many(self, list_id: str, tag: str, emails: Sequence[str]) -> BulkOutcome:
        return self._segment("untag_many", tag, emails, add=False)

    def _segment(self, name: str, tag: str, emails: Sequence[str], *, add: bool) -> BulkOutcome:
        outcome = BulkOutcome()
        for start in range(0, len(emails), BULK_LIMIT):
            self._call(name)
            for email in emails[start : start + BULK_LIMIT]:
                key = email.lower()
                tags = self.tags.setdefault(key, [])
                if key in self.members and (tag not in tags) == add:
                    tags.append(tag) if add else tags.remove(tag)
                    outcome.updated.append(key)
                else:
                    outcome.existing.append(key)
        return outcome

    def tagged(self, tag: str) -> set[str]:
        """Addresses that carry the tag now."""
        return {email for email, tags in self.tags.items() if tag in tags}


class MemoryMembers:
    def __init__(self) -> None:
        self.on_active: list = []
        """Called with the member id when a member becomes active (the due-work fake drops their drip)."""
        self.on_erase: list = []
        """Called with the member id when a member is erased (the due-work fake drops all their work)."""
        self.on_move: list = []
        """Called with the old and the new member id when a member moves to a new address."""
        self.profiles: dict[str, MemberRecord] = {}
        self.links: dict[str, IdentityLink] = {}
        self.claims: dict[str, datetime] = {}

    def get(self, member_id: str) -> MemberRecord | None:
        member = self.profiles.get(member_id)
        return replace(member) if member else None

    def get_many(self, member_ids: Sequence[str]) -> dict[str, MemberRecord]:
        return {member_id: found for member_id in member_ids if (found := self.get(member_id)) is not None}

    def record_join(self, join: MemberJoin) -> MemberRecord:
        member = self.profiles.get(join.member_id) or MemberRecord(join.member_id, join.joined_at)
        member.joined_at = member.joined_at or join.joined_at
        member.email = join.email or member.email
        member.name = member.name or join.name
        member.platforms = sorted(set(member.platforms) | {join.platform})
        member.identities = sorted(set(member.identities) | {join.identity_key})
        if join.address_verified:
            member.verified_identities = sorted(set(member.verified_identities) | {join.identity_key})
        member.marketing_consent = member.marketing_consent or join.marketing_consent
        if join.active_before_join and member.activated_at is None:
            member.activated_at = member.last_active_at = join.active_before_join
        self.profiles[join.member_id] = member
        return replace(member)

    def set_mailchimp_status(
        self, member_id: str, status: str, *, opted_out: bool = False, consent: bool | None = None
    ) -> None:
        member = self.profiles[member_id]
        member.mailchimp_status = status
        member.opted_out_before = member.opted_out_before or opted_out
        if consent is not None:
            member.marketing_consent = consent

    def link(self, identity_key: str) -> IdentityLink | None:
        return self.links.get(identity_key)

    def save_link(self, identity_key: str, member_id: str) -> IdentityLink:
        current = self.links.get(identity_key) or IdentityLink(identity_key, None, None)
        self.links[identity_key] = replace(current, member_id=member_id)
        return self.links[identity_key]

    def note_unlinked_activity(self, identity_key: str, at: datetime) -> str | None:
        current = self.links.get(identity_key) or IdentityLink(identity_key, None, None)
        self.links[identity_key] = replace(current, last_active_at=at)
        return current.member_id

    def hold_for_screening(self, identity_key: str, joined_at: datetime) -> None:
        current = self.links.get(identity_key) or IdentityLink(identity_key, None, None)
        if current.screening_since is None or current.screening_since < joined_at:
            self.links[identity_key] = replace(current, screening_since=joined_at)

    def pass_screening(self, identity_key: str, joined_at: datetime) -> None:
        current = self.links.get(identity_key) or IdentityLink(identity_key, None, None)
        if current.screened_join is None or current.screened_join < joined_at:
            self.links[identity_key] = replace(current, screened_join=joined_at)

    def mark_active(self, member_id: str, at: datetime) -> bool:
        member = self.profiles.get(member_id)
        if member is None or (member.last_active_at and member.last_active_at >= at):
            return False
        first = member.activated_at is None
        member.activated_at = member.activated_at or at
        member.last_active_at = at
        member.drip_due_at = None
        for stop in self.on_active:
            stop(member_id)
        return first

    def claim_journey(self, member_id: str, now: datetime, lease: timedelta) -> bool:
        member = self.profiles.get(member_id)
        if member is None or member.journey_started_at or self.claims.get(member_id, now) > now:
            return False
        self.claims[member_id] = now + lease
        return True

    def confirm_journey_started(self, member_id: str, at: datetime) -> None:
        self.profiles[member_id].journey_started_at = at
        self.claims.pop(member_id, None)

    def release_journey_claim(self, member_id: str) -> None:
        self.claims.pop(member_id, None)

    def erase(self, member_id: str) -> int:
        items = sum(erase(member_id) for erase in self.on_erase)
        self.claims.pop(member_id, None)
        return items + (self.profiles.pop(member_id, None) is not None)

    def delete_link(self, identity_key: str) -> bool:
        return self.links.pop(identity_key, None) is not None

    def move(self, member_id: str, new_member_id: str, new_email: str) -> bool:
        member = self.profiles.get(member_id)
        if member is None or new_member_id in self.profiles:
            return False
        self.profiles[new_member_id] = replace(member, member_id=new_member_id, email=new_email)
        del self.profiles[member_id]
        for moved in self.on_move:
            moved(member_id, new_member_id)
        for identity_key in member.identities:
            self.save_link(identity_key, new_member_id)
        return True


class MemoryLedger:
    """The consent ledger: entries are only ever added (never overwritten), and go with the member's erasure."""

    def __init__(self, members: MemoryMembers | None = None) -> None:
        self.items: dict[str, dict[str, ConsentEntry]] = {}
        if members is not None:
            members.on_erase.append(lambda member_id: len(self.items.pop(member_id, {})))
            members.on_move.append(self._move)

    def _move(self, member_id: str, new_member_id: str) -> None:
        moved = self.items.pop(member_id, {})
        self.items[new_member_id] = {key: replace(entry, member_id=new_member_id) for key, entry in moved.items()}

    def append(self, entry: ConsentEntry) -> bool:
        entries = self.items.setdefault(entry.member_id, {})
        if entry.key in entries:
            return False
        entries[entry.key] = entry
        return True

    def entries(self, member_id: str) -> list[ConsentEntry]:
        return sorted(self.items.get(member_id, {}).values(), key=lambda entry: entry.at)


class MemorySuppressions:
    """The suppression list, keyed as the adapter keys it: a keyed hash, never the name itself."""

    def __init__(self, key: bytes = b"test-suppression-key") -> None:
        self._key = key
        self.entries: dict[str, Suppression] = {}

    def add(self, name: str, at: datetime, requested_by: str) -> Suppression:
        suppression = Suppression(keyed_hash(self._key, name), at, requested_by)
        self.entries[suppression.key] = suppression
        return suppression

    def find(self, name: str) -> Suppression | None:
        return self.entries.get(keyed_hash(self._key, name))

    def find_many(self, names: Sequence[str]) -> dict[str, Suppression]:
        return {name: found for name in names if (found := self.find(name)) is not None}


class MemoryDueWork:
    """Due work per (queue, member); the drip's is kept on the member profile, as in the table."""

    def __init__(self, members: MemoryMembers) -> None:
        self._members = members
        self.items: dict[tuple[str, str], DueWork] = {}
        members.on_active.append(lambda member_id: self.items.pop(("drip", member_id), None))
        members.on_erase.append(self._erase)
        members.on_move.append(self._relocate)

    def _relocate(self, member_id: str, new_member_id: str) -> None:
        for queue, owner in [key for key in self.items if key[1] == member_id]:
            work = self.items.pop((queue, owner))
            self.items[(queue, new_member_id)] = replace(work, member_id=new_member_id)

    def due(self, queue: str, now: datetime) -> Iterator[DueWork]:
        ready = [w for (q, _), w in self.items.items() if q == queue and w.due_at <= now]
        yield from sorted(ready, key=lambda w: w.due_at)

    def schedule(
        self,
        queue: str,
        member_id: str,
        due_at: datetime,
        details: Mapping[str, Any] | None = None,
        *,
        keep_existing: bool = False,
    ) -> bool:
        if keep_existing and (queue, member_id) in self.items:
            return False
        if queue == "drip":
            member = self._members.profiles.get(member_id)
            if member is None or member.activated_at or (queue, member_id) in self.items or member.drip_steps_sent:
                return False
            member.drip_due_at = due_at
            member.drip_started_at = datetime.fromisoformat(str((details or {})["drip_started_at"]))
        self.items[(queue, member_id)] = DueWork(queue, member_id, due_at, dict(details or {}))
        return True

    def claim(self, work: DueWork, *, next_due: datetime | None, progress: Mapping[str, int] | None = None) -> bool:
        current = self.items.get((work.queue, work.member_id))
        member = self._members.profiles.get(work.member_id)
        stopped = work.queue == "drip" and member is not None and member.activated_at is not None
        if current is None or current.due_at != work.due_at or stopped:
            return False
        if progress and member and member.drip_steps_sent != progress.get("drip_steps_sent", member.drip_steps_sent):
            return False
        if progress and member:
            member.drip_steps_sent += 1
        self._move(work, next_due)
        return True

    def release(self, work: DueWork, *, progress: Mapping[str, int] | None = None) -> bool:
        member = self._members.profiles.get(work.member_id)
        if work.queue == "drip" and (member is None or member.activated_at):
            return False
        if progress and member:
            member.drip_steps_sent -= 1
        self._move(work, work.due_at, work)
        return True

    def remove(self, queue: str, member_id: str) -> None:
        self.items.pop((queue, member_id), None)
        member = self._members.profiles.get(member_id)
        if queue == "drip" and member:
            member.drip_due_at = None

    def _erase(self, member_id: str) -> int:
        """Every queue's work of the member (the drip's is on the profile, which goes with it)."""
        mine = [key for key in self.items if key[1] == member_id]
        for key in mine:
            del self.items[key]
        return sum(queue != "drip" for queue, _ in mine)

    def _move(self, work: DueWork, due_at: datetime | None, original: DueWork | None = None) -> None:
        if due_at is None:
            self.remove(work.queue, work.member_id)
            return
        self.items[(work.queue, work.member_id)] = replace(original or work, due_at=due_at)
        member = self._members.profiles.get(work.member_id)
        if work.queue == "drip" and member:
            member.drip_due_at = due_at


class FakeWorkQueue:
    def __init__(self) -> None:
        self.visibility: list[int] = []
        self.parked: list[dict[str, str]] = []
        self._deferrals: dict[str, int] = {}

    def retry_later(self, message: QueuedMessage, delay_seconds: int) -> None:
        self.visibility.append(delay_seconds)

    def park(self, message: QueuedMessage, park: Park, correlation_id: str, idempotency_key: str) -> None:
        self.parked.append(
            {
                "body": message.body,
                "failure_reason": park.reason,
                "failure_kind": park.kind,
                "retryable": str(park.retryable).lower(),
                "correlation_id": correlation_id or "unknown",
                "idempotency_key": idempotency_key or "unknown",
            }
        )

    def deferrals(self, message: QueuedMessage) -> int:
        return self._deferrals.get(message.message_id, 0)

    def record_deferral(self, message: QueuedMessage) -> None:
        self._deferrals[message.message_id] = self._deferrals.get(message.message_id, 0) + 1


def unavailable(message: str = "Mailchimp 500 Internal Server Error") -> Transient:
    return Transient(message)


class MemoryDeliveryLog:
    """Intake's record of recently queued deliveries, like the idempotency-table items of `DynamoDeliveryLog`."""

    def __init__(self, remembered_for: timedelta = timedelta(hours=1)) -> None:
        self.items: dict[str, tuple[str, datetime]] = {}
        self.remembered_for = remembered_for
        self.broken = False

    def queued_before(self, idempotency_key: str, now: datetime) -> str | None:
        if self.broken:
            raise RuntimeError("table unavailable")
        correlation_id, expires = self.items.get(idempotency_key, ("", now))
        return correlation_id if expires > now else None

    def remember(self, idempotency_key: str, correlation_id: str, now: datetime) -> None:
        if self.broken:
            raise RuntimeError("table unavailable")
        self.items[idempotency_key] = (correlation_id, now + self.remembered_for)


# ---------------------------------------------------------------- escalation


class FakeDesk:
    """Zendesk as escalation sees it: Idempotency-Key semantics on single creates, bulk jobs, comments; `fail`
    holds errors the next calls raise."""

    def __init__(self) -> None:
        from memberflow.escalation.ports import NewTicket

        self.tickets: dict[int, dict[str, Any]] = {}
        self.keys: dict[str, tuple[NewTicket, int]] = {}
        self.jobs: dict[str, dict[int, int]] = {}
        self.comments: list[tuple[int, str]] = []
        self.forgotten: list[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = []
        self.fail: list[Exception] = []
        self.calls: list[str] = []

    def _call(self, name: str) -> None:
        self.calls.append(name)
        error = self.fail.pop(0) if self.fail else None
        if error is not None:
            raise error

    def _make(self, ticket: Any) -> int:
        ticket_id = len(self.tickets) + 1
        self.tickets[ticket_id] = {"ticket": ticket, "status": "new"}
        return ticket_id

    def create(self, ticket: Any, idempotency_key: str) -> Any:
        from memberflow.errors import PermanentRefusal
        from memberflow.escalation.ports import Ticket

        self._call("create")
        if idempotency_key in self.keys:
            earlier, ticket_id = self.keys[idempotency_key]
            if earlier != ticket:
                raise PermanentRefusal("IdempotentRequestError", "same key, other body", 400)
            return Ticket(ticket_id, self.tickets[ticket_id]["status"], ticket.external_id)
        ticket_id = self._make(ticket)
        self.keys[idempotency_key] = (ticket, ticket_id)
        return Ticket(ticket_id, "new", ticket.external_id)

    def create_many(self, tickets: Any) -> str:
        self._call("create_many")
        job_id = f"job{len(self.jobs) + 1}"
        self.jobs[job_id] = {index: self._make(ticket) for index, ticket in enumerate(tickets)}
        return job_id

    def job(self, job_id: str) -> Any:
        from memberflow.escalation.ports import JobResult

        self._call("job")
        return JobResult("completed", self.jobs[job_id])

    def add_comment(self, ticket_id: int, body: str, *, public: bool = False) -> None:
        from memberflow.errors import PermanentRefusal

        self._call("comment")
        if self.tickets[ticket_id]["status"] == "closed":
            raise PermanentRefusal("RecordInvalid", "Status: closed prevents ticket update", 422)
        self.comments.append((ticket_id, body))

    def tickets_with_external_id(self, external_id: str) -> list[Any]:
        from memberflow.escalation.ports import Ticket

        self._call("list")
        return [
            Ticket(ticket_id, item["status"], external_id)
            for ticket_id, item in self.tickets.items()
            if item["ticket"].external_id == external_id
        ]

    def forget_requester(self, emails: Any, external_ids: Any, ticket_external_ids: Any = ()) -> int:
        self._call("forget")
        self.forgotten.append((tuple(emails), tuple(external_ids), tuple(ticket_external_ids)))
        return len(emails) + len(external_ids)


class MemoryTicketLinks:
    def __init__(self) -> None:
        self.links: dict[str, Any] = {}
        self.notified: set[tuple[int, str]] = set()
        self.alerted: set[str] = set()

    def get(self, thread: str) -> Any:
        return self.links.get(thread)

    def for_ticket(self, ticket_id: int) -> Any:
        return next((link for link in self.links.values() if link.ticket_id == ticket_id), None)

    def claim(self, link: Any, *, replacing_ticket: int | None = None) -> bool:
        current = self.links.get(link.thread)
        if current is not None and (replacing_ticket is None or current.ticket_id != replacing_ticket):
            return False
        self.links[link.thread] = link
        return True

    def _update(self, thread: str, claim_key: str, **changes: Any) -> None:
        link = self.links[thread]
        if link.claim_key == claim_key:
            self.links[thread] = replace(link, **changes)

    def note_job(self, thread: str, claim_key: str, job_id: str, index: int) -> None:
        self._update(thread, claim_key, job_id=job_id, job_index=index)

    def complete(self, thread: str, claim_key: str, ticket_id: int, status: str) -> None:
        self._update(thread, claim_key, ticket_id=ticket_id, status=status)

    def note_comment(self, thread: str, key: str) -> None:
        link = self.links[thread]
        self.links[thread] = replace(link, comments=link.comments | {key})

    def record_status(self, ticket_id: int, status: str, at: datetime, public_reply: bool) -> Any:
        link = self.for_ticket(ticket_id)
        if link is None:
            return None
        seconds = int((at - link.created_at).total_seconds())
        first = link.first_response_seconds
        if first is None and (public_reply or status in ("pending", "solved")):
            first = seconds
        resolution = link.resolution_seconds
        if resolution is None and status in ("solved", "closed"):
            resolution = seconds
        updated = replace(link, status=status, first_response_seconds=first, resolution_seconds=resolution)
        self.links[link.thread] = updated
        return updated

    def mark_notified(self, ticket_id: int, status: str) -> bool:
        if (ticket_id, status) in self.notified:
            return False
        self.notified.add((ticket_id, status))
        return True

    def unmark_notified(self, ticket_id: int, status: str) -> None:
        self.notified.discard((ticket_id, status))

    def was_alerted(self, key: str) -> bool:
        return key in self.alerted

    def mark_alerted(self, key: str) -> None:
        self.alerted.add(key)

    def requesters(self, member: str) -> list[Any]:
        return [link for link in self.links.values() if link.member == member]

    def erase_member(self, member: str) -> int:
        gone = [thread for thread, link in self.links.items() if link.member == member]
        for thread in gone:
            del self.links[thread]
        return len(gone)


class FakeMessenger:
    def __init__(self) -> None:
        self.moderators: list[str] = []
        self.members: list[tuple[str, dict[str, Any], str | None, str]] = []
        self.order: list[str] = []
        self.fail: list[Exception] = []

    def notify_moderators(self, text: str) -> None:
        if self.fail:
            raise self.fail.pop(0)
        self.order.append("moderators")
        self.moderators.append(text)

    def tell_member(self, platform: str, reply_to: Mapping[str, Any], email: str | None, text: str) -> Any:
        from memberflow.escalation.ports import Told

        if self.fail:
            raise self.fail.pop(0)
        self.members.append((platform, dict(reply_to), email, text))
        return Told("slack" if reply_to.get("thread_ts") else "discourse" if reply_to.get("topic_id") else "email")


class MemoryActivityLog:
    """The activity log in memory: what was appended, and what the last flushes wrote."""

    def __init__(self) -> None:
        self.buffered: list[Any] = []
        self.written: list[Any] = []

    def append(self, record: Any) -> None:
        self.buffered.append(record)

    def flush(self) -> int:
        count = len(self.buffered)
        self.written.extend(self.buffered)
        self.buffered = []
        return count

    def kinds(self) -> list[str]:
        return [record.kind for record in [*self.written, *self.buffered]]


class CountingReads:
    """A store (fake or real) whose reads are counted: how many lookups a step costs is part of its contract."""

    READS = frozenset({"get", "link", "find", "entries", "get_many", "find_many"})

    def __init__(self, inner: Any, reads: list[str]) -> None:
        self._inner, self.reads = inner, reads

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if name not in self.READS or not callable(attribute):
            return attribute

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.reads.append(name)
            return attribute(*args, **kwargs)

        return counted
