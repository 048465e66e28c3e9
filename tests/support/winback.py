"""In-memory stand-ins for win-back's ports: the member store's inactivity index and win-back records, the
results file, and Mailchimp's bulk tags. They keep the promises the DynamoDB and Mailchimp adapters make
(one record per member, campaign and run; a record only if the member was not active since the read; a tag added
to a member who carries it changes nothing)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from memberflow.bulk import BulkOutcome, MemberRefusal
from memberflow.winback.ports import Assignment, AssignmentRecord, CandidatePage, Recorded, RunState
from memberflow.winback.selection import Candidate


@dataclass
class _Member:
    candidate: Candidate
    returned_at: datetime | None = None
    winback_since: date | None = None


class MemoryWinbackStore:
    def __init__(self) -> None:
        self.members: dict[str, _Member] = {}
        self.states: dict[str, RunState] = {}
        self.records_by_key: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.items_read = 0
        self.crash_after_records: int | None = None
        """Raise after this many more records (a crash half-way)."""

    # -- seeding and activity ---------------------------------------------------------------------------------

    def add(self, member_id: str, active_day: date, **fields: Any) -> None:
        fields.setdefault("email", f"{member_id}@example.org")
        fields.setdefault("mailchimp_status", "subscribed")
        self.members[member_id] = _Member(Candidate(member_id, active_day, **fields))

    def activity(self, member_id: str, at: datetime) -> None:
        member = self.members[member_id]
        member.candidate = replace(member.candidate, active_day=at.date())
        if member.returned_at is None:
            member.returned_at = at

    # -- the port ---------------------------------------------------------------------------------------------

    def candidates(self, active_day: date, cursor: str | None, limit: int) -> CandidatePage:
        ids = sorted(m for m, member in self.members.items() if member.candidate.active_day == active_day)
        start = int(cursor) if cursor else 0
        page = ids[start : start + limit]
        self.items_read += len(page)
        following = start + limit
        return CandidatePage(
            [self.members[m].candidate for m in page], str(following) if following < len(ids) else None
        )

    def state(self, campaign_id: str) -> RunState:
        return replace(self.states.get(campaign_id, RunState()))

    def save_state(self, campaign_id: str, state: RunState) -> None:
        self.states[campaign_id] = replace(state)

    def record(self, assignment: Assignment) -> Recorded:
        key = (assignment.campaign_id, assignment.run_day.isoformat(), assignment.member_id)
        existing = self.records_by_key.get(key)
        if existing is not None:
            return Recorded.PENDING if existing["status"] == "recorded" else Recorded.DONE
        member = self.members.get(assignment.member_id)
        if member is None or member.candidate.active_day != assignment.seen_active_day:
            return Recorded.ACTIVE_MEANWHILE
        if assignment.run_day in member.candidate.winback_history:
            return Recorded.SELECTED_TODAY
        if self.crash_after_records is not None:
            if self.crash_after_records == 0:
                raise RuntimeError("crash")
            self.crash_after_records -= 1
        self.records_by_key[key] = {
            "member_id": assignment.member_id,
            "campaign_id": assignment.campaign_id,
            "tier_days": assignment.tier_days,
            "group": assignment.group,
            "day": assignment.run_day,
            "status": "holdout" if assignment.group == "holdout" else "recorded",
            "refusal": "",
        }
        member.candidate = replace(
            member.candidate, winback_history=(*member.candidate.winback_history, assignment.run_day)
        )
        if member.winback_since is not None and member.returned_at is not None:
            # As the DynamoDB store does: the previous selection keeps the return the new one replaces.
            for (_, day, member_id), earlier in self.records_by_key.items():
                if member_id == assignment.member_id and day == member.winback_since.isoformat():
                    earlier.setdefault("returned_at", member.returned_at)
        member.winback_since, member.returned_at = assignment.run_day, None
        return Recorded.NEW

    def settle(self, campaign_id: str, run_day: date, outcomes: Mapping[str, tuple[str, str]]) -> None:
        for member_id, (status, refusal) in outcomes.items():
            record = self.records_by_key[(campaign_id, run_day.isoformat(), member_id)]
            record["status"], record["refusal"] = status, refusal

    def records(self, campaign_id: str, today: date) -> Iterator[AssignmentRecord]:
        for (campaign, _, member_id), record in self.records_by_key.items():
            if campaign != campaign_id:
                continue
            member = self.members.get(member_id)
            fields = dict(record)
            kept = fields.pop("returned_at", None)
            returned = member.returned_at if member and member.winback_since == record["day"] else kept
            yield AssignmentRecord(**fields, returned_at=returned)

    def contacted(self, campaign_id: str | None = None) -> list[str]:
        return [
            record["member_id"]
            for (campaign, _, _), record in self.records_by_key.items()
            if (campaign_id is None or campaign == campaign_id) and record["group"] != "holdout"
        ]


class FakeBulkTags:
    """Static segments by tag, as Mailchimp's segment calls answer: adding a member who is in it already is no new
    "tag added" event, and an address not in the audience is ignored (neither added nor refused: `existing`)."""

    def __init__(self) -> None:
        self.segments: dict[str, set[str]] = {}
        self.tag_added: list[tuple[str, str]] = []
        """(tag, address) per member newly added: what starts a tag-added journey."""
        self.tag_removed: list[tuple[str, str]] = []
        """(tag, address) per member the tag was removed from."""
        self.calls: list[tuple[str, int]] = []
        """(tag, addresses) per tag_many call."""
        self.untag_calls: list[tuple[str, int]] = []
        """(tag, addresses) per untag_many call."""
        self.failures: list[Exception] = []
        """Raised, in order, by the next calls (tag_many or untag_many)."""
        self.refuse: dict[str, MemberRefusal] = {}
        """address -> why Mailchimp refuses to tag it."""
        self.not_in_audience: set[str] = set()
        """Addresses the audience does not hold: Mailchimp ignores them."""
        self.crash_after_calls: int | None = None
        self.crash_after_tagging = False
        """Raise after the next tag_many did its work, as if its answer was lost (a timeout after Mailchimp acted,
        or a crash before the outcome was settled)."""

    def _call(self, calls: list[tuple[str, int]], tag: str, emails: Sequence[str]) -> None:
        assert len(emails) <= 500, "Mailchimp: Maximum allowed member items exceeded"
        calls.append((tag, len(emails)))
        if self.failures:
            raise self.failures.pop(0)
        if self.crash_after_calls is not None:
            if self.crash_after_calls == 0:
                raise RuntimeError("crash")
            self.crash_after_calls -= 1

    def tag_many(self, list_id: str, tag: str, emails: Sequence[str]) -> BulkOutcome:
        self._call(self.calls, tag, emails)
        outcome = BulkOutcome()
        segment = self.segments.setdefault(tag, set())
        for email in emails:
            if email in self.refuse:
                outcome.refused[email] = self.refuse[email]
            elif email in segment or email in self.not_in_audience:
                outcome.existing.append(email)
            else:
                segment.add(email)
                outcome.updated.append(email)
                self.tag_added.append((tag, email))
        if self.crash_after_tagging:
            self.crash_after_tagging = False
            raise RuntimeError("crash")
        return outcome

    def untag_many(self, list_id: str, tag: str, emails: Sequence[str]) -> BulkOutcome:
        self._call(self.untag_calls, tag, emails)
        outcome = BulkOutcome()
        segment = self.segments.setdefault(tag, set())
        for email in emails:
            if email in segment:
                segment.discard(email)
                outcome.updated.append(email)
                self.tag_removed.append((tag, email))
            else:
                outcome.existing.append(email)
        return outcome

    def tagged(self) -> set[str]:
        return {email for members in self.segments.values() for email in members}


class MemoryResults:
    def __init__(self) -> None:
        self.files: dict[str, dict[str, Any]] = {}

    def put(self, campaign_id: str, results: Mapping[str, Any]) -> str:
        self.files[campaign_id] = json.loads(json.dumps(results))
        return f"memory://{campaign_id}.json"

    def get(self, campaign_id: str) -> dict[str, Any] | None:
        return self.files.get(campaign_id)
