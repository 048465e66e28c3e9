"""The scheduled win-back run of one campaign.

1. Read, from the member store's inactivity index, only the members whose inactivity crossed a tier's threshold on
   the days the run covers (the day after the last completed run up to today), a page at a time.
2. Decide per member (`selection.decide`): excluded (and why), held out, or a variant.
3. A member selected again (an earlier win-back selection, none yet in this run) may still carry the tier's tag
   from then: it is removed first, in bulk (up to 500 per call and tag), before the selection is recorded, so that
   adding it again is a new "tag added" and the journey mails them again.
4. Record every selection, once per member, campaign and run (a conditional write that also adds the day to
   the member's win-back history, so cooldown and caps hold from that moment), then tag contacted members in bulk:
   up to 500 addresses per call, per tag, buffered across pages so calls stay near ceil(contacted / 500). Only the
   members Mailchimp answers as added (`members_added`) count as contacted; one it left as it was (not in the
   audience, or carrying the tag) is recorded `not_tagged`, one it refused `refused`.
5. Checkpoint after every page at the earliest page whose members are not all settled yet: an invocation that ends
   (time, an outage, a crash) leaves a run the next invocation continues; re-read members are found recorded
   and are only tagged again if their tag was not confirmed (adding a tag a member carries changes nothing, so no
   journey starts twice). A re-read member's tag is never removed again: their history holds the run's day.
A completed run is followed by `write_results` (the campaign's results file), a step of its own: it reads every
record of the campaign, so its cost grows with the contacts made, apart from the selection's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import partial

from memberflow import activity
from memberflow.bulk import BulkOutcome, MemberRefusal
from memberflow.errors import AccountProblem, Transient
from memberflow.ports import ActivityLog, BulkMailingList
from memberflow.retry import with_brief_retries
from memberflow.winback.assignment import HOLDOUT
from memberflow.winback.campaign import Campaign
from memberflow.winback.ports import (
    NOT_TAGGED,
    REFUSED,
    TAGGED,
    Assignment,
    Recorded,
    ResultsStore,
    RunReport,
    RunState,
    WinbackStore,
)
from memberflow.winback.results import summarise
from memberflow.winback.selection import Candidate, Decision, Segment, decide, first_day, segments

logger = logging.getLogger(__name__)

TAG_CHUNK = 500
"""Mailchimp adds (or removes) at most 500 members to a static segment per call."""

NOT_TAGGED_TEXT = "Mailchimp added no tag: the address is not in the audience, or already carried the tag"


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
    resumed: bool = False
    """Recorded by an earlier, interrupted attempt of this run, which may have tagged them already."""


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
                decided = [
                    (candidate, decide(candidate, self.campaign, segment.tier, self.day))
                    for candidate in page.candidates
                    # Active since the page was read: not inactive any more.
                    if candidate.active_day == segment.active_day
                ]
                self._clear_earlier_tags(decided)
                for candidate, decision in decided:
                    self._select(candidate, decision, segment, page_no)
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

    def _selected_before(self, candidate: Candidate) -> bool:
        """Selected by win-back on an earlier day, and not yet by this run (whose own tag must stay)."""
        history = candidate.winback_history
        return self.day not in history and any(day < self.day for day in history)

    def _clear_earlier_tags(self, decided: list[tuple[Candidate, Decision]]) -> None:
        """Remove the tag from the page's members to contact who were selected before, before their selection is
        recorded: a tag a member still carries from an earlier selection would not be added again, and no journey
        would start. Safe to repeat: until the record is written (and the run's day is in the member's history),
        no tag of this run was added to them."""
        again: dict[str, list[str]] = {}
        for candidate, decision in decided:
            if decision.contacted and candidate.email and self._selected_before(candidate):
                assert decision.tag
                again.setdefault(decision.tag, []).append(candidate.email)
        for tag, emails in again.items():
            for start in range(0, len(emails), TAG_CHUNK):
                chunk = emails[start : start + TAG_CHUNK]
                self._bulk("untag_calls", f"removing {tag}", partial(self._untag, tag, chunk))
                self.report.tags_cleared += len(chunk)

    def _untag(self, tag: str, emails: list[str]) -> BulkOutcome:
        return self.deps.mailing_list.untag_many(self.deps.list_id, tag, emails)

    def _bulk(self, counter: str, what: str, call: Callable[[], BulkOutcome]) -> BulkOutcome:
        """One bulk call to Mailchimp, retried briefly on a 429 or 5xx; `Deferred` when it keeps failing."""
        deps = self.deps

        def counted() -> BulkOutcome:
            setattr(self.report, counter, getattr(self.report, counter) + 1)
            return call()

        try:
            return with_brief_retries(
                counted,
                attempts=deps.retry_attempts,
                base_delay=deps.retry_base_seconds,
                max_inline_wait=deps.max_retry_wait_seconds,
                sleep=deps.sleep,
            )
        except (Transient, AccountProblem) as failure:
            raise Deferred(what) from failure

    def _select(self, candidate: Candidate, decision: Decision, segment: Segment, page_no: int) -> None:
        report = self.report
        report.candidates += 1
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
            _Pending(
                candidate.member_id,
                candidate.email,
                page_no,
                segment.tier.days,
                decision.group,
                resumed=recorded is Recorded.PENDING,
            )
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
        outcome = self._bulk(
            "tag_calls", f"tagging {tag}", lambda: deps.mailing_list.tag_many(deps.list_id, tag, emails)
        )
        added = {email.lower() for email in outcome.updated}
        refused = {email.lower(): reason for email, reason in outcome.refused.items()}
        outcomes: dict[str, tuple[str, str]] = {}
        for pending in chunk:
            email = pending.email.lower()
            if email in refused:
                outcomes[pending.member_id] = (REFUSED, _refusal_text(refused[email]))
            elif email in added or pending.resumed:
                # Added now; or, for a member an interrupted attempt of this run recorded, most likely added by
                # that attempt (its tag was cleared before the record was written), whose answer was lost.
                outcomes[pending.member_id] = (TAGGED, "")
            else:
                outcomes[pending.member_id] = (NOT_TAGGED, NOT_TAGGED_TEXT)
        self.deps.store.settle(self.campaign.id, self.day, outcomes)
        for pending in chunk:
            if outcomes[pending.member_id][0] == TAGGED:
                self._log(activity.WINBACK_CONTACTED, pending.member_id, pending.tier_days, pending.variant)
        statuses = [status for status, _ in outcomes.values()]
        self.report.refused += statuses.count(REFUSED)
        self.report.not_tagged += statuses.count(NOT_TAGGED)
        self.report.contacted += statuses.count(TAGGED)

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
