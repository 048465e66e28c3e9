"""The scheduled win-back run of one campaign.

1. Read, from the member store's inactivity index, only the members whose inactivity crossed a tier's threshold on
   the days the run covers (the day after the last completed run up to today), a page at a time.
2. Decide per member (`selection.decide`): excluded (and why), held out, or a variant.
3. Record every selection first, once per member, campaign and run (a conditional write that also adds the day to
   the member's win-back history, so cooldown and caps hold from that moment), then tag contacted members in bulk:
   up to 500 addresses per call, per tag, buffered across pages so calls stay near ceil(contacted / 500).
4. Checkpoint after every page at the earliest page whose members are not all settled yet: an invocation that ends
   (time, an outage, a crash) leaves a run the next invocation continues; re-read members are found recorded
   and are only tagged again if their tag was not confirmed (adding a tag a member carries changes nothing).
A completed run is followed by `write_results` (the campaign's results file), a step of its own: it reads every
record of the campaign, so its cost grows with the contacts made, apart from the selection's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from memberflow import activity
from memberflow.bulk import BulkOutcome, MemberRefusal
from memberflow.errors import AccountProblem, Transient
from memberflow.ports import ActivityLog, BulkMailingList
from memberflow.retry import with_brief_retries
from memberflow.winback.assignment import HOLDOUT
from memberflow.winback.campaign import Campaign
from memberflow.winback.ports import (
    Assignment,
    Recorded,
    ResultsStore,
    RunReport,
    RunState,
    WinbackStore,
)
from memberflow.winback.results import summarise
from memberflow.winback.selection import Candidate, Segment, decide, first_day, segments

logger = logging.getLogger(__name__)

TAG_CHUNK = 500
"""Mailchimp adds at most 500 members to a static segment per call."""


@dataclass
class WinbackDeps:
    store: WinbackStore
    mailing_list: BulkMailingList
    results: ResultsStore
    list_id: str
    page_size: int = 500
    retry_attempts: int = 5
    retry_base_seconds: float = 1.0
    max_retry_wait_seconds: float = 30.0
    sleep: Callable[[float], None] = time.sleep
    activity: ActivityLog | None = None
    """The activity log (contacts and holdouts) for the health report's lift figure; None: not kept."""
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)


class Deferred(Exception):
    """Mailchimp keeps failing (or refuses the account): no member is at fault; the run continues later."""


@dataclass
class _Pending:
    member_id: str
    email: str
    page: int
    tier_days: int
    variant: str


@dataclass
class _Run:
    campaign: Campaign
    state: RunState
    deps: WinbackDeps
    report: RunReport
    plan: list[Segment]
    positions: list[tuple[int, str | None]] = field(default_factory=list)
    buffers: dict[str, list[_Pending]] = field(default_factory=dict)

    @property
    def day(self) -> date:
        assert self.state.run_day is not None
        return self.state.run_day

    def go(self, time_left: Callable[[], bool]) -> bool:
        """Continue the run from its checkpoint; True when it is complete."""
        state = self.state
        seg, cursor = state.segment, state.cursor
        try:
            while seg < len(self.plan):
                if not time_left():
                    self._flush(everything=True)
                    self._checkpoint(seg, cursor)
                    return False
                segment = self.plan[seg]
                page = self.deps.store.candidates(segment.active_day, cursor, self.deps.page_size)
                page_no = len(self.positions)
                self.positions.append((seg, cursor))
                for candidate in page.candidates:
                    self._select(candidate, segment, page_no)
                cursor = page.next_cursor
                if cursor is None:
                    seg += 1
                    self.report.segments_read += 1
                self._flush(everything=False)
                self._checkpoint(seg, cursor)
            self._flush(everything=True)
        except Deferred as failure:
            self.report.deferred = str(failure.__cause__ or failure)
            self._checkpoint(seg, cursor)
            logger.warning(
                "win-back run deferred", extra={"campaign": self.campaign.id, "reason": self.report.deferred}
            )
            return False
        state.segment, state.cursor = len(self.plan), None
        state.done_through = self.day
        self.deps.store.save_state(self.campaign.id, state)
        return True

    def _select(self, candidate: Candidate, segment: Segment, page_no: int) -> None:
        if candidate.active_day != segment.active_day:
            return  # active since the page was read: not inactive any more
        report = self.report
        report.candidates += 1
        decision = decide(candidate, self.campaign, segment.tier, self.day)
        if decision.group is None:
            reason = str(decision.exclusion)
            report.excluded[reason] = report.excluded.get(reason, 0) + 1
            return
        recorded = self.deps.store.record(
            Assignment(
                self.campaign.id, self.day, candidate.member_id, segment.tier.days, decision.group, candidate.active_day
            )
        )
        if recorded is Recorded.ACTIVE_MEANWHILE:
            report.active_meanwhile += 1
            return
        if recorded is Recorded.SELECTED_TODAY:
            report.excluded["cooldown"] = report.excluded.get("cooldown", 0) + 1
            return
        if recorded is Recorded.DONE:
            return
        if decision.group == HOLDOUT:
            report.held_out += 1
            self._log(activity.WINBACK_HOLDOUT, candidate.member_id, segment.tier.days, HOLDOUT)
            return
        if recorded is Recorded.PENDING:
            report.resumed_pending += 1
        assert decision.tag and candidate.email
        self.buffers.setdefault(decision.tag, []).append(
            _Pending(candidate.member_id, candidate.email, page_no, segment.tier.days, decision.group)
        )

    def _flush(self, *, everything: bool) -> None:
        """Tag full chunks (and, with `everything`, what is left): one call per 500 members of a tag."""
        for tag, pending in self.buffers.items():
            while len(pending) >= TAG_CHUNK or (everything and pending):
                chunk = pending[:TAG_CHUNK]
                self._tag(tag, chunk)
                del pending[: len(chunk)]

    def _tag(self, tag: str, chunk: list[_Pending]) -> None:
        deps = self.deps
        emails = [pending.email for pending in chunk]

        def call() -> BulkOutcome:
            self.report.tag_calls += 1
            return deps.mailing_list.tag_many(deps.list_id, tag, emails)

        try:
            outcome = with_brief_retries(
                call,
                attempts=deps.retry_attempts,
                base_delay=deps.retry_base_seconds,
                max_inline_wait=deps.max_retry_wait_seconds,
                sleep=deps.sleep,
            )
        except (Transient, AccountProblem) as failure:
            raise Deferred(f"tagging {tag}") from failure
        refused = {email.lower(): reason for email, reason in outcome.refused.items()}
        outcomes: dict[str, tuple[str, str]] = {}
        for pending in chunk:
            reason = refused.get(pending.email.lower())
            outcomes[pending.member_id] = ("tagged", "") if reason is None else ("refused", _refusal_text(reason))
        self.deps.store.settle(self.campaign.id, self.day, outcomes)
        for pending in chunk:
            if outcomes[pending.member_id][0] == "tagged":
                self._log(activity.WINBACK_CONTACTED, pending.member_id, pending.tier_days, pending.variant)
        self.report.refused += sum(status == "refused" for status, _ in outcomes.values())
        self.report.contacted += sum(status == "tagged" for status, _ in outcomes.values())

    def _log(self, kind: str, member_id: str, tier_days: int, variant: str) -> None:
        """A contact or holdout in the activity log: one record per campaign, run day and member (its id), so a
        resumed run adds none."""
        activity.note(
            self.deps.activity,
            kind,
            member_id=member_id,
            platform="mailchimp",
            at=self.deps.clock(),
            source_key=f"winback:{self.campaign.id}:{self.day.isoformat()}:{member_id}",
            campaign=self.campaign.id,
            tier=str(tier_days),
            variant=variant,
        )

    def _checkpoint(self, seg: int, cursor: str | None) -> None:
        """Save where the next invocation starts: the earliest page with a member not settled yet, else here."""
        unsettled = [pending.page for chunk in self.buffers.values() for pending in chunk]
        if unsettled:
            seg, cursor = self.positions[min(unsettled)]
        self.state.segment, self.state.cursor = seg, cursor
        self.deps.store.save_state(self.campaign.id, self.state)


def _refusal_text(refusal: MemberRefusal) -> str:
    """A refusal as recorded: its category and Mailchimp's words (addresses already redacted)."""
    return f"{refusal.kind.value}: {refusal.code} {refusal.text}".strip()[:300]


def run_campaign(
    campaign: Campaign, today: date, deps: WinbackDeps, *, time_left: Callable[[], bool] = lambda: True
) -> RunReport:
    """Finish a run left unfinished, then run today's, as far as `time_left` allows."""
    report = RunReport(campaign.id, today.isoformat())
    if not campaign.enabled:
        report.deferred = "campaign disabled"
        return report
    state = deps.store.state(campaign.id)
    while True:
        in_progress = state.run_day is not None and state.done_through != state.run_day
        if not in_progress:
            if state.done_through is not None and state.done_through >= today:
                report.already_done = not report.completed
                return report
            state.first_day = first_day(state.done_through, today, campaign)
            state.run_day, state.segment, state.cursor = today, 0, None
            deps.store.save_state(campaign.id, state)
        assert state.run_day is not None and state.first_day is not None
        run = _Run(campaign, state, deps, report, segments(state.first_day, state.run_day, campaign))
        if not run.go(time_left):
            return report
        logger.info("win-back run complete", extra={"campaign": campaign.id, "run_day": state.run_day.isoformat()})
        report.completed = True


def write_results(campaign: Campaign, today: date, store: WinbackStore, results: ResultsStore) -> str:
    """The campaign's results file as of `today`; where it is."""
    return results.put(campaign.id, summarise(campaign, store.records(campaign.id, today), today))
