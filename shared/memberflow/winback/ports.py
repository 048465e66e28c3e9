"""What win-back needs from the outside world besides Mailchimp's tags in bulk (`memberflow.ports.BulkMailingList`):
the member store's inactivity index and its own records (DynamoDB), and the results file (S3)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Protocol

from memberflow.winback.selection import Candidate


@dataclass(frozen=True)
class CandidatePage:
    candidates: list[Candidate]
    next_cursor: str | None
    """Where the next page starts (opaque); None when the day's members are all read."""


@dataclass(frozen=True)
class Assignment:
    """One member selected by one campaign's run: contacted (a variant) or held out."""

    campaign_id: str
    run_day: date
    member_id: str
    tier_days: int
    group: str
    seen_active_day: date
    """The active day the selection read: the record is only written if the member has not been active since."""


class Recorded(StrEnum):
    NEW = "new"
    """Recorded now: the member is ours to tag."""
    PENDING = "pending"
    """Recorded by an earlier, interrupted attempt of this run and not confirmed tagged: tag again (adding a member
    to a tag they already carry changes nothing in Mailchimp)."""
    DONE = "done"
    """Recorded and settled earlier (tagged, refused, or held out): nothing to do."""
    ACTIVE_MEANWHILE = "active_meanwhile"
    """The member was active after the selection read them: not selected."""
    SELECTED_TODAY = "selected_today"
    """Another campaign selected the member today: the cooldown applies."""


@dataclass
class RunState:
    """A campaign's checkpoint: the run in progress (if any) and where it stands, and the last completed run."""

    done_through: date | None = None
    results_through: date | None = None
    """The last completed run the results file was written for."""
    run_day: date | None = None
    first_day: date | None = None
    segment: int = 0
    cursor: str | None = None


RECORDED = "recorded"
"""Selected for contact, the tag not confirmed yet (a run in progress)."""
TAGGED = "tagged"
"""Contacted: Mailchimp confirmed the tag was added by this run (its `members_added`), which starts the journey."""
REFUSED = "refused"
"""Mailchimp refused to tag the member (with the reason): not contacted."""
NOT_TAGGED = "not_tagged"
"""Mailchimp left the member as they were: the address is not in the audience, or already carried the tag (no
"tag added" event, so no email). Not contacted."""
HELD_OUT = "holdout"
"""In the holdout group: never tagged, so the lift can be measured against them."""


@dataclass(frozen=True)
class AssignmentRecord:
    member_id: str
    campaign_id: str
    tier_days: int
    group: str
    day: date
    status: str
    """`recorded`, `tagged`, `refused`, `not_tagged`, or `holdout`."""
    returned_at: datetime | None = None
    """The member's first activity after the selection, if any."""
    refusal: str = ""


class WinbackStore(Protocol):
    def candidates(self, active_day: date, cursor: str | None, limit: int) -> CandidatePage:
        """Members whose last activity (or join, if never active) was on `active_day`, a page at a time."""

    def state(self, campaign_id: str) -> RunState: ...

    def save_state(self, campaign_id: str, state: RunState) -> None: ...

    def record(self, assignment: Assignment) -> Recorded:
        """Record the selection first (once per member, campaign and run) with the member's win-back history, only
        if the member has not been active since `seen_active_day` and no other selection of the member was made on
        the run's day; a re-run finishes what an interrupted attempt began."""

    def settle(self, campaign_id: str, run_day: date, outcomes: Mapping[str, tuple[str, str]]) -> None:
        """member id -> (status, refusal text): what became of recorded contacts (`tagged`, `refused` or
        `not_tagged`)."""

    def records(self, campaign_id: str, today: date) -> Iterator[AssignmentRecord]:
        """Every contact and holdout of the campaign, with the member's return if any."""


class ResultsStore(Protocol):
    def put(self, campaign_id: str, results: Mapping[str, Any]) -> str:
        """Store the campaign's results file; where it is."""

    def get(self, campaign_id: str) -> dict[str, Any] | None: ...


@dataclass
class RunReport:
    campaign_id: str
    run_day: str
    completed: bool = False
    already_done: bool = False
    deferred: str = ""
    segments_read: int = 0
    candidates: int = 0
    contacted: int = 0
    held_out: int = 0
    refused: int = 0
    not_tagged: int = 0
    """Selected, but Mailchimp added no tag (not in the audience, or carrying it already): not contacted."""
    tags_cleared: int = 0
    """Members selected again whose tier tag was removed first, so that adding it starts the journey again."""
    resumed_pending: int = 0
    active_meanwhile: int = 0
    excluded: dict[str, int] = field(default_factory=dict)
    tag_calls: int = 0
    untag_calls: int = 0
    results_location: str = ""
