"""The small interfaces domain code depends on. Adapters implement them (DynamoDB, Mailchimp, SQS); in-memory fakes
implement them for domain tests that run in milliseconds."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from memberflow.activity import ActivityRecord
from memberflow.bulk import BulkMember, BulkOutcome
from memberflow.members import IdentityLink, MemberJoin, MemberRecord

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class ListMember:
    email: str
    status: str
    """subscribed, unsubscribed, cleaned, pending, transactional or archived."""


class MailingList(Protocol):
    """The marketing audience (Mailchimp). Failures arrive as `memberflow.errors`."""

    def upsert_member(
        self,
        list_id: str,
        email: str,
        *,
        status_if_new: str,
        merge_fields: dict[str, str],
        consent_fields: Mapping[str, Any] | None = None,
    ) -> ListMember:
        """`consent_fields`: what the consent ledger shows (`timestamp_signup`, `timestamp_opt`,
        `marketing_permissions`), sent with the member."""

    def set_status(
        self, list_id: str, email: str, status: str, consent_fields: Mapping[str, Any] | None = None
    ) -> ListMember: ...

    def member_status(self, list_id: str, email: str) -> str | None:
        """None when the audience has no such member."""

    def list_exists(self, list_id: str) -> bool: ...

    def add_tags(self, list_id: str, email: str, tags: list[str]) -> None: ...

    def trigger_journey(self, journey_id: str, step_id: str, email: str) -> None: ...

    def forget(self, list_id: str, email: str) -> bool:
        """Delete the member permanently, at the person's request (Mailchimp then refuses to re-add the address by
        API); False when the audience has no such member."""

    def is_available(self) -> bool:
        """The service answers and accepts our credentials."""


class BulkMailingList(Protocol):
    """The marketing audience, many members per call (imports, win-back, event sync). A whole call that fails
    raises `memberflow.errors` as the single-member calls do; members refused one by one come back in the outcome."""

    def subscribe_many(
        self, list_id: str, members: Sequence[BulkMember], *, update_existing: bool = False
    ) -> BulkOutcome:
        """Add the members (in calls of at most 500). Without `update_existing`, members already in the audience
        are left as they are (reported in `existing`), so nobody's status is ever changed by a bulk subscribe."""

    def tag_segment_id(self, list_id: str, tag: str) -> str:
        """The id of the static segment that is the tag, created when missing."""

    def tag_many(self, list_id: str, tag: str, emails: Sequence[str]) -> BulkOutcome:
        """Tag the members (in calls of at most 500): `updated` the newly tagged, `existing` the rest."""

    def untag_many(self, list_id: str, tag: str, emails: Sequence[str]) -> BulkOutcome:
        """Remove the tag (in calls of at most 500): `updated` the untagged, `existing` the rest."""


class MemberRepository(Protocol):
    """Member profiles and the identity links that say which member a platform user is."""

    def get(self, member_id: str) -> MemberRecord | None: ...

    def get_many(self, member_ids: Sequence[str]) -> dict[str, MemberRecord]:
        """The members of `member_ids` that exist, by id: a chunk of members in a few calls, not one each."""

    def record_join(self, join: MemberJoin) -> MemberRecord: ...

    def set_mailchimp_status(
        self, member_id: str, status: str, *, opted_out: bool = False, consent: bool | None = None
    ) -> None:
        """Record the member's Mailchimp status (`opted_out`: they unsubscribed or were cleaned, which win-back and
        the drip honour at once); `consent`, when given, is the marketing consent the ledger derives."""

    def link(self, identity_key: str) -> IdentityLink | None: ...

    def save_link(self, identity_key: str, member_id: str) -> IdentityLink:
        """Link the identity to the member; the link as it is stored now (activity noted on it meanwhile too)."""

    def note_unlinked_activity(self, identity_key: str, at: datetime) -> str | None:
        """Remember activity of an identity no member is linked to; the member it is linked to now, if any."""

    def hold_for_screening(self, identity_key: str, joined_at: datetime) -> None:
        """The platform holds the join made at `joined_at` in membership screening (a later join replaces an
        earlier one; an earlier one changes nothing)."""

    def pass_screening(self, identity_key: str, joined_at: datetime) -> None:
        """The join made at `joined_at` passed membership screening (an earlier one changes nothing)."""

    def mark_active(self, member_id: str, at: datetime) -> bool:
        """Record activity (it stops the drip); True when it is the member's first."""

    def claim_journey(self, member_id: str, now: datetime, lease: timedelta) -> bool: ...

    def confirm_journey_started(self, member_id: str, at: datetime) -> None: ...

    def release_journey_claim(self, member_id: str) -> None: ...

    def erase(self, member_id: str) -> int:
        """Delete everything stored under the member (profile, due work of every queue); how many items went. The
        profile goes last: until everything else is gone, `get` still finds the member (an erasure's retry does)."""

    def delete_link(self, identity_key: str) -> bool:
        """Forget which member a platform user is (and any activity noted for them); False when there was none."""

    def move(self, member_id: str, new_member_id: str, new_email: str) -> bool:
        """Move the member, with everything stored under them (due work, consent ledger), to a new address, and link
        their platform identities to it; False when there is no such member or the new address is another
        member's. Safe to repeat."""


@dataclass(frozen=True)
class Suppression:
    """Someone who asked to be forgotten, as the suppression list remembers them: a keyed hash, never the value."""

    key: str
    """The keyed hash (hex) of an address or a platform identity: the trace files the erasure under it."""
    erased_at: datetime
    """The latest erasure."""
    requested_by: str
    """Who passed the request on: a platform (discourse, generic) or an operator."""


class SuppressionList(Protocol):
    """Addresses and platform identities erased at the person's request, kept only as keyed one-way hashes, so a
    later event can tell that a person asked to be forgotten without anyone being able to read who they were.
    Names are `privacy.email_suppression_name(...)` or `privacy.identity_suppression_name(...)`."""

    def add(self, name: str, at: datetime, requested_by: str) -> Suppression: ...

    def find(self, name: str) -> Suppression | None: ...

    def find_many(self, names: Sequence[str]) -> dict[str, Suppression]:
        """The names of `names` that were erased, with their suppression."""


@dataclass(frozen=True)
class DueWork:
    """One member's work in one due-work queue (the drip's next step, an opt-in re-check, ...)."""

    queue: str
    member_id: str
    due_at: datetime
    details: Mapping[str, Any] = field(default_factory=dict)
    """The item's other attributes: for the drip, the member profile; for an opt-in wait, when it began."""


class DueWorkIndex(Protocol):
    """Work due at a time, per member and queue: a run reads only what is due, never the whole community.

    `claim` moves the work on atomically (to `next_due`, or out of the index) only if nobody else did since it was
    read and the member was not stopped meanwhile (e.g. became active); `progress` counters move with it.
    `release` undoes a claim whose work could not be done, so the next run does it."""

    def due(self, queue: str, now: datetime) -> Iterator[DueWork]: ...

    def schedule(
        self,
        queue: str,
        member_id: str,
        due_at: datetime,
        details: Mapping[str, Any] | None = None,
        *,
        keep_existing: bool = False,
    ) -> bool:
        """Put the work in the queue (False when the queue's entry rules refused it); with `keep_existing`, work
        already waiting in that queue is left as it is."""

    def claim(self, work: DueWork, *, next_due: datetime | None, progress: Mapping[str, int] | None = None) -> bool: ...

    def release(self, work: DueWork, *, progress: Mapping[str, int] | None = None) -> bool: ...

    def remove(self, queue: str, member_id: str) -> None: ...


class ErasureParticipant(Protocol):
    """Another automation's part of an erasure (escalation: the Zendesk user, the thread -> ticket links; event sync:
    the registrations): told which addresses and platform identities the person had, with the erasure's own key so
    a retry is a repeat."""

    def forget(self, emails: list[str], identities: list[str], erasure_key: str, correlation_id: str) -> str:
        """Start or do that part (safe to repeat); a few words for the erasure's record."""


class ActivityLog(Protocol):
    """The activity log every automation appends to (`memberflow.activity`): records are buffered and written in
    batches, one object per day partition. A record names the member by member id; the log stores only its keyed
    hash (`activity.member_hash`)."""

    def append(self, record: ActivityRecord) -> None: ...

    def flush(self) -> int:
        """Write what was appended since the last flush; how many records were written."""
