"""Waves of joins (a launch day, a conference week): when a batch of member events holds several fresh joins, they
go to Mailchimp in bulk before the events are handled one by one: one batch subscribe for all of them, one
static-segment call per tag, and, when the welcome journey starts on "tag added", one call that starts it for all
the subscribed ones. Each event is then handled exactly as before (consent, erasure gate, idempotency, the journey
guard, the trace): its Mailchimp steps are answered from what the bulk calls did, and whatever they did not settle
(a member already in the audience, a compliance refusal that falls back to double opt-in, a member the bulk calls
failed for) goes through the single calls, as for a lone join.

Only fresh joins are sent in bulk: a `member_joined` with an address, not held for approval or screening, of
nobody who asked to be forgotten, and of a member memberflow has not handed to Mailchimp yet. The bulk subscribe
never updates an existing member (`update_existing` false), so nobody's status changes behind the consent rules.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from memberflow.bulk import BulkMember, RefusalKind
from memberflow.events import MemberJoined
from memberflow.members import MemberRecord, member_id_for
from memberflow.onboarding import consent
from memberflow.onboarding.consent import Facts
from memberflow.onboarding.consent_ledger import upsert_provenance
from memberflow.onboarding.forgotten import latest_erasure
from memberflow.onboarding.join import OnboardingDeps, join_basis, join_tags, merge_fields_for, utc
from memberflow.pipeline.envelope import QueuedEvent
from memberflow.ports import BulkMailingList, ListMember, MailingList

logger = logging.getLogger(__name__)


class BulkAudience(MailingList, BulkMailingList, Protocol):
    """Mailchimp as both ports (the adapter is both)."""


@dataclass
class BurstReport:
    joins: int = 0
    """Fresh joins sent in bulk."""
    created: int = 0
    refused: int = 0
    left_to_single_calls: int = 0
    tag_calls: int = 0
    welcomed_by_tag: int = 0
    failed: list[str] = field(default_factory=list)
    """Bulk calls that failed (their members go through single calls)."""


class BurstMailingList:
    """The `MailingList` onboarding uses, in front of Mailchimp: `prepare(batch)` sends the batch's fresh joins in
    bulk; the single-member calls that follow are answered from it where it settled them, and go to Mailchimp
    otherwise. With `journey_tag`, the welcome journey starts on that tag being added instead of its API trigger."""

    def __init__(self, audience: BulkAudience, list_id: str, *, journey_tag: str = "") -> None:
        self._audience = audience
        self._list_id = list_id
        self.journey_tag = journey_tag
        # What the bulk calls settled belongs to the batch being handled: one per thread (a Lambda container handles
        # one batch at a time; the local stack runs several containers' batches in threads of one process).
        self._batch = threading.local()

    @property
    def _settled(self) -> dict[str, ListMember]:
        return self._state("settled", dict)

    @property
    def _refused(self) -> dict[str, Exception]:
        return self._state("refused", dict)

    @property
    def _tagged(self) -> dict[str, set[str]]:
        return self._state("tagged", dict)

    @property
    def _welcomed(self) -> set[str]:
        return self._state("welcomed", set)

    def _state(self, name: str, new: type) -> Any:
        if not hasattr(self._batch, name):
            setattr(self._batch, name, new())
        return getattr(self._batch, name)

    # -- the batch ---------------------------------------------------------------------------------------------

    def prepare(self, batch: Sequence[QueuedEvent], deps: OnboardingDeps) -> BurstReport:
        """Send the batch's fresh joins in bulk (only when there are several). Never raises: what fails here is done
        by the single calls of each event."""
        self._settled.clear()
        self._refused.clear()
        self._tagged.clear()
        self._welcomed.clear()
        report = BurstReport()
        if deps.consent_rules.marketing_permission_ids:
            # Batch subscribe takes no marketing permissions: the single calls send them.
            return report
        joins = self._fresh_joins(batch, deps)
        if len(joins) < 2:
            return report
        report.joins = len(joins)
        try:
            outcome = self._audience.subscribe_many(
                self._list_id,
                [self._bulk_member(email, join, deps) for email, join in joins.items()],
                update_existing=False,
            )
        except Exception as failure:  # noqa: BLE001 - the single calls of each event follow
            report.failed.append(f"subscribe_many: {type(failure).__name__}")
            logger.warning("bulk subscribe failed: members go through single calls", extra={"joins": len(joins)})
            return report
        created = [email.lower() for email in outcome.created if email.lower() in joins]
        for email in created:
            wanted = joins[email][2]
            self._settled[email] = ListMember(email, wanted)
        for email, refusal in outcome.refused.items():
            if refusal.kind is not RefusalKind.COMPLIANCE_STATE:  # compliance: the single call falls back to pending
                self._refused[email.lower()] = refusal.error
        report.created, report.refused = len(created), len(self._refused)
        report.left_to_single_calls = len(joins) - len(created) - len(self._refused)

        by_tag: dict[str, list[str]] = {}
        for email in created:
            event, record, wanted, _ = joins[email]
            for tag in join_tags(event, record):
                by_tag.setdefault(tag, []).append(email)
            if self.journey_tag and consent.receives_marketing(wanted):
                by_tag.setdefault(self.journey_tag, []).append(email)
        for tag, emails in by_tag.items():
            try:
                self._audience.tag_many(self._list_id, tag, emails)
            except Exception as failure:  # noqa: BLE001 - the single calls tag these members
                report.failed.append(f"tag_many: {type(failure).__name__}")
                continue
            report.tag_calls += 1
            if tag == self.journey_tag:
                self._welcomed.update(emails)
                report.welcomed_by_tag += len(emails)
            else:
                for email in emails:
                    self._tagged.setdefault(email, set()).add(tag)
        return report

    @staticmethod
    def _bulk_member(
        email: str, join: tuple[MemberJoined, MemberRecord, str, QueuedEvent], deps: OnboardingDeps
    ) -> BulkMember:
        """The member as batch subscribe takes them, with the consent ledger's signup and opt-in times as they will
        be once the join's decision is appended (as a single upsert sends them)."""
        event, record, wanted, queued = join
        basis = join_basis(queued, event)
        times = upsert_provenance(
            deps.ledger, record.member_id, wanted, event.marketing_consent, basis, deps.consent_rules
        )
        return BulkMember(
            email,
            wanted,
            merge_fields_for(event, record),
            timestamp_signup=times.timestamp_signup,
            timestamp_opt=times.timestamp_opt,
        )

    def _fresh_joins(
        self, batch: Sequence[QueuedEvent], deps: OnboardingDeps
    ) -> dict[str, tuple[MemberJoined, MemberRecord, str, QueuedEvent]]:
        """Address -> (the join, the member as known, the status the consent rules give a new member, its message)."""
        candidates: dict[str, tuple[str, MemberJoined, QueuedEvent]] = {}
        for queued in batch:
            event = queued.event
            if not isinstance(event, MemberJoined) or not event.email:
                continue
            if event.awaiting_approval or event.screening_pending or event.email.lower() in candidates:
                continue
            candidates[event.email.lower()] = (event.email, event, queued)
        joins: dict[str, tuple[MemberJoined, MemberRecord, str, QueuedEvent]] = {}
        if len(candidates) < 2:
            return joins  # a lone join goes through the single calls: nothing to look up for it here
        for email, event, queued in candidates.values():
            if latest_erasure(deps.suppressions, email, event.identity.key) is not None:
                continue  # the erasure gate decides, event by event
            member_id = member_id_for(event.identity, email)
            known = deps.members.get(member_id)
            if known is not None and known.mailchimp_status is not None:
                continue  # onboarded before: a redelivery, or a second platform
            link = deps.members.link(event.identity.key)
            if link is not None and link.in_screening:
                continue
            verified = event.email_verified or bool(known and event.identity.key in known.verified_identities)
            record = known or MemberRecord(member_id=member_id, joined_at=utc(event.joined_at))
            wanted = consent.status_for_new_member(
                Facts(event.marketing_consent, verified), opted_out_before=record.opted_out_before
            )
            joins[email.lower()] = (event, record, wanted, queued)
        return joins

    # -- MailingList -------------------------------------------------------------------------------------------

    def upsert_member(
        self,
        list_id: str,
        email: str,
        *,
        status_if_new: str,
        merge_fields: dict[str, str],
        consent_fields: Mapping[str, Any] | None = None,
    ) -> ListMember:
        key = email.lower()
        if key in self._refused:
            raise self._refused.pop(key)
        settled = self._settled.pop(key, None)
        if settled is not None and settled.status == status_if_new:
            return ListMember(email, settled.status)
        return self._audience.upsert_member(
            list_id, email, status_if_new=status_if_new, merge_fields=merge_fields, consent_fields=consent_fields
        )

    def set_status(
        self, list_id: str, email: str, status: str, consent_fields: Mapping[str, Any] | None = None
    ) -> ListMember:
        return self._audience.set_status(list_id, email, status, consent_fields=consent_fields)

    def member_status(self, list_id: str, email: str) -> str | None:
        return self._audience.member_status(list_id, email)

    def list_exists(self, list_id: str) -> bool:
        return self._audience.list_exists(list_id)

    def add_tags(self, list_id: str, email: str, tags: list[str]) -> None:
        missing = [tag for tag in tags if tag not in self._tagged.get(email.lower(), set())]
        if missing:
            self._audience.add_tags(list_id, email, missing)

    def trigger_journey(self, journey_id: str, step_id: str, email: str) -> None:
        if not self.journey_tag:
            self._audience.trigger_journey(journey_id, step_id, email)
        elif email.lower() not in self._welcomed:
            # A journey starting on "tag added" starts once: a tag already there starts nothing again.
            self._audience.tag_many(self._list_id, self.journey_tag, [email])

    def forget(self, list_id: str, email: str) -> bool:
        return self._audience.forget(list_id, email)

    def is_available(self) -> bool:
        return self._audience.is_available()
