"""Importing the members a community already has: stored with their identities, join date and last activity, and
brought into Mailchimp in bulk by the same consent rules as a live join, without resubscribing anyone who opted out
and without a welcome journey for old members (unless they joined within the configured window).

A chunk (at most `BULK_LIMIT` members) costs one batch subscribe, a second one only for members Mailchimp refused a
direct subscribe (compliance state: asked for double opt-in instead), single calls only for members the audience
already held (their status is read, never overwritten), and bulk tag calls: `TagBuffer` gathers a tag's addresses
across chunks so each tag costs one call per 500 members. Members memberflow has already handed to Mailchimp are
left alone, so a re-run changes nothing.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from memberflow.activity import IMPORTED, Appends, note
from memberflow.bulk import BULK_LIMIT, BulkMember, BulkOutcome, MemberRefusal, RefusalKind
from memberflow.consent import suppression_names
from memberflow.errors import ResourceGone
from memberflow.events.imports import ImportedMember
from memberflow.ledger import ConsentEntry, ConsentLedger
from memberflow.members import MemberJoin, MemberRecord, member_id_for
from memberflow.onboarding import consent, consent_ledger
from memberflow.onboarding.consent import Facts
from memberflow.onboarding.consent_ledger import Basis, ConsentRules
from memberflow.onboarding.forgotten import latest_erasure
from memberflow.onboarding.join import OPT_IN, OPT_IN_FIRST_CHECK, set_upgraded_status
from memberflow.onboarding.rules import OnboardingRules
from memberflow.onboarding.welcome import JOURNEY_CLAIM_LEASE, enter_drip, start_welcome_journey
from memberflow.ports import BulkMailingList, DueWorkIndex, MailingList, MemberRepository, Suppression, SuppressionList
from memberflow.trace import (
    Outcome,
    Step,
    StepRecorder,
    TraceBuffer,
    TraceRecorder,
    email_subject,
    identity_subject,
)

logger = logging.getLogger(__name__)

SOURCE = "import"
NEVER_IN_MAILCHIMP: tuple[ConsentEntry, ...] = ()
"""The ledger of a member the import brings to Mailchimp: only members never settled there are imported, and a
ledger entry is written only when Mailchimp's status is settled, so theirs is empty (no read needed)."""
"""How the trace names where an imported member came from."""


@dataclass(frozen=True)
class ImportRules:
    welcome_window_days: int = 0
    """Members who joined at most this many days ago get the welcome journey (0: nobody); everyone else was
    welcomed long ago, or never will be."""
    journey_tag: str = ""
    """Empty: the journey starts on its API trigger (one call per member). A tag: the journey starts on "tag
    added", so one bulk tag call starts it for up to 500 members."""


@dataclass
class ImportDeps:
    bulk: BulkMailingList
    mailing_list: MailingList
    members: MemberRepository
    due_work: DueWorkIndex
    trace: TraceRecorder
    suppressions: SuppressionList
    rules: OnboardingRules
    ledger: ConsentLedger
    consent_rules: ConsentRules = field(default_factory=ConsentRules)
    import_rules: ImportRules = field(default_factory=ImportRules)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    activity: Appends | None = None
    """The activity log (`ports.ActivityLog`): an `imported` record per member stored, so the health report never
    counts them as new members; None: not recorded."""


@dataclass
class ChunkReport:
    """What came of a chunk: counts, and refusals as (row or user id, reason); never addresses."""

    written: int = 0
    """Members stored (and, with an address, handed to Mailchimp) by this run."""
    unchanged: int = 0
    """Members an earlier run (or a live join) had already onboarded: left as they are."""
    refused: list[tuple[str, str]] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    journeys: int = 0

    def add(self, other: ChunkReport) -> None:
        self.written += other.written
        self.unchanged += other.unchanged
        self.refused.extend(other.refused)
        self.statuses.update(other.statuses)
        self.journeys += other.journeys

    def as_dict(self) -> dict[str, object]:
        return {
            "written": self.written,
            "unchanged": self.unchanged,
            "refused": [list(refusal) for refusal in self.refused],
            "statuses": dict(self.statuses),
            "journeys": self.journeys,
        }

    @classmethod
    def from_dict(cls, data: dict) -> ChunkReport:
        return cls(
            written=int(data.get("written", 0)),
            unchanged=int(data.get("unchanged", 0)),
            refused=[(str(a), str(b)) for a, b in data.get("refused", [])],
            statuses=Counter({str(k): int(v) for k, v in dict(data.get("statuses", {})).items()}),
            journeys=int(data.get("journeys", 0)),
        )


class TagBuffer:
    """Addresses per tag, sent in calls of `BULK_LIMIT`: a tag costs ceil(members / 500) calls over the whole
    import, however its members are spread across chunks. `pending` is what a checkpoint keeps."""

    def __init__(self, bulk: BulkMailingList, list_id: str, pending: dict[str, list[str]] | None = None) -> None:
        self._bulk, self._list_id = bulk, list_id
        self.pending: dict[str, list[str]] = {tag: list(emails) for tag, emails in (pending or {}).items()}

    def add(self, tag: str, emails: Iterable[str]) -> None:
        waiting = self.pending.setdefault(tag, [])
        waiting.extend(emails)
        while len(waiting) >= BULK_LIMIT:
            self._bulk.tag_many(self._list_id, tag, waiting[:BULK_LIMIT])
            del waiting[:BULK_LIMIT]
        if not waiting:
            del self.pending[tag]

    def flush(self) -> None:
        for tag, emails in list(self.pending.items()):
            if emails:
                self._bulk.tag_many(self._list_id, tag, emails)
            del self.pending[tag]


def facts(member: ImportedMember) -> Facts:
    """What the consent rules decide on."""
    return Facts(member.marketing_consent, member.email_verified)


def row_label(member: ImportedMember) -> str:
    """How a refusal names a member without personal data: the platform identity."""
    return member.identity.key


def member_tags(member: ImportedMember) -> list[str]:
    """The tags a live join gets: the platform, and the cohort when the join date is known."""
    tags = [f"platform:{member.identity.platform}"]
    if member.joined_at is not None:
        tags.append(f"cohort:{member.joined_at:%Y-%m}")
    return tags


def in_welcome_window(member: ImportedMember, rules: ImportRules, now: datetime) -> bool:
    return (
        rules.welcome_window_days > 0
        and member.joined_at is not None
        and now - member.joined_at <= timedelta(days=rules.welcome_window_days)
    )


@dataclass
class _Pending:
    imported: ImportedMember
    record: MemberRecord
    wanted: str
    step: StepRecorder
    basis: Basis
    """What the member's consent decision rests on: the import that brought their platform's word, when it ran."""


def plan_status(member: ImportedMember, record: MemberRecord | None) -> str:
    """The status a member would be added with: the onboarding consent rules, nothing else."""
    return consent.status_for_new_member(
        facts(member), opted_out_before=bool(record and record.opted_out_before), forgotten_before=False
    )


@dataclass(frozen=True)
class _Known:
    """What the stores hold about a chunk's members, read in a few batch calls rather than three reads a member:
    the suppressions that name them and their member records."""

    suppressions: dict[str, Suppression]
    records: dict[str, MemberRecord]

    @classmethod
    def read(cls, chunk: Sequence[ImportedMember], deps: ImportDeps) -> _Known:
        names = [name for member in chunk for name in suppression_names(member.email, member.identity.key)]
        ids = [member_id_for(member.identity, member.email) for member in chunk]
        return cls(deps.suppressions.find_many(names), deps.members.get_many(ids))

    def find(self, name: str) -> Suppression | None:
        return self.suppressions.get(name)

    def erasure(self, member: ImportedMember) -> Suppression | None:
        return latest_erasure(self, member.email, member.identity.key)

    def record(self, member: ImportedMember) -> MemberRecord | None:
        return self.records.get(member_id_for(member.identity, member.email))


def dry_run(chunk: Sequence[ImportedMember], deps: ImportDeps) -> ChunkReport:
    """What `import_chunk` would do, from the member store alone: nothing is written, Mailchimp is not called
    (members it already holds are counted under the status asked for; it keeps theirs)."""
    report = ChunkReport()
    now = deps.clock()
    known = _Known.read(chunk, deps)
    for member in chunk:
        if known.erasure(member) is not None:
            report.refused.append((row_label(member), "asked to be forgotten: not imported"))
            continue
        record = known.record(member)
        if record is not None and record.mailchimp_status is not None:
            report.unchanged += 1
            continue
        report.written += 1
        if not member.email:
            report.statuses["stored_without_email"] += 1
            continue
        wanted = plan_status(member, record)
        report.statuses[wanted] += 1
        if wanted == consent.SUBSCRIBED and in_welcome_window(member, deps.import_rules, now):
            report.journeys += 1
    return report


def import_chunk(
    chunk: Sequence[ImportedMember], deps: ImportDeps, *, correlation_id: str, tags: TagBuffer | None = None
) -> ChunkReport:
    """Store the chunk's members and bring them into Mailchimp. With `tags`, tags are gathered across chunks (the
    caller flushes the buffer at the end); without, they are sent for this chunk before returning."""
    if len(chunk) > BULK_LIMIT:
        raise ValueError(f"a chunk holds at most {BULK_LIMIT} members")
    # The members' trace steps are written together at the end (in batches), whatever happened on the way.
    trace = TraceBuffer(deps.trace)
    try:
        return _import_chunk(chunk, replace(deps, trace=trace), correlation_id=correlation_id, tags=tags)
    finally:
        trace.flush()


def _import_chunk(
    chunk: Sequence[ImportedMember], deps: ImportDeps, *, correlation_id: str, tags: TagBuffer | None
) -> ChunkReport:
    report = ChunkReport()
    now = deps.clock()
    list_id = deps.rules.list_id
    pending: list[_Pending] = []
    stored = _Known.read(chunk, deps)
    for member in chunk:
        if stored.erasure(member) is not None:
            # The export is older than the person's request: what they asked to have removed is not brought back.
            report.refused.append((row_label(member), "asked to be forgotten: not imported"))
            continue
        step = StepRecorder(
            deps.trace,
            email_subject(member.email) if member.email else identity_subject(member.identity.key),
            correlation_id,
            SOURCE,
        )
        known = stored.record(member)
        if known is not None and known.mailchimp_status is not None:
            deps.members.save_link(member.identity.key, known.member_id)
            report.unchanged += 1
            continue
        record = _store(member, deps, correlation_id)
        report.written += 1
        # The health report's log: a member since before the import (their join date unknown, or older than the log
        # keeps), so no later join of theirs counts as a first join.
        note(
            deps.activity,
            IMPORTED,
            member_id=record.member_id,
            platform=member.identity.platform.value,
            at=now,
            source_key=f"{SOURCE}:{correlation_id}:{record.member_id}",
            workspace=member.identity.workspace,
        )
        if not member.email:
            report.statuses["stored_without_email"] += 1
            step(Step.SKIPPED, Outcome.SKIPPED, f"imported from {member.identity.platform} without an email")
            continue
        key = f"{SOURCE}:{correlation_id}:{record.member_id}"
        basis = Basis(member.identity.platform.value, "member_imported", key, now)
        pending.append(_Pending(member, record, plan_status(member, record), step, basis))

    statuses = _subscribe(pending, deps, list_id, report)
    landed = [p for p in pending if statuses.get(_key(p.imported)) not in (None, *consent.OPTED_OUT)]
    buffer = tags or TagBuffer(deps.bulk, list_id)
    by_tag: dict[str, list[str]] = {}
    for item in landed:
        for tag in member_tags(item.imported):
            by_tag.setdefault(tag, []).append(item.record.email or "")
    for tag, emails in by_tag.items():
        buffer.add(tag, emails)
    _welcome(landed, statuses, deps, now, report)
    if tags is None:
        buffer.flush()
    return report


def _key(member: ImportedMember) -> str:
    """How bulk outcomes name a member: the address, lower-cased."""
    return (member.email or "").lower()


def _store(member: ImportedMember, deps: ImportDeps, correlation_id: str) -> MemberRecord:
    member_id = member_id_for(member.identity, member.email)
    record = deps.members.record_join(
        MemberJoin(
            member_id=member_id,
            identity_key=member.identity.key,
            platform=member.identity.platform.value,
            joined_at=member.joined_at,
            correlation_id=correlation_id,
            email=member.email,
            name=member.name,
            marketing_consent=member.marketing_consent,
            address_verified=member.email_verified and bool(member.email),
            active_before_join=member.last_active_at,
        )
    )
    deps.members.save_link(member.identity.key, member_id)
    return record


def _subscribe(pending: list[_Pending], deps: ImportDeps, list_id: str, report: ChunkReport) -> dict[str, str]:
    """Address -> the Mailchimp status the member has now (refused members are absent)."""
    if not pending:
        return {}
    by_email = {_key(p.imported): p for p in pending}
    wanted = [_bulk_member(p, p.wanted, deps) for p in pending]
    answer = deps.bulk.subscribe_many(list_id, wanted, update_existing=False)
    statuses = {
        email.lower(): by_email[email.lower()].wanted
        for email in answer.created + answer.updated
        if email.lower() in by_email
    }
    retry = [
        by_email[email.lower()]
        for email, refusal in answer.refused.items()
        if refusal.kind is RefusalKind.COMPLIANCE_STATE and by_email[email.lower()].wanted == consent.SUBSCRIBED
    ]
    refused = {email: refusal for email, refusal in answer.refused.items() if by_email[email.lower()] not in retry}
    if retry:
        for item in retry:
            item.step(Step.MAILCHIMP_UPSERT, Outcome.REFUSED, "direct subscribe refused: asking for opt-in")
        second: BulkOutcome = deps.bulk.subscribe_many(
            list_id, [_bulk_member(p, consent.PENDING, deps) for p in retry], update_existing=False
        )
        statuses.update({email.lower(): consent.PENDING for email in second.created + second.updated})
        answer.existing.extend(second.existing)
        refused.update(second.refused)
    upgraded: set[str] = set()
    for email in answer.existing:
        existing = _existing_member(by_email[email.lower()], deps, list_id)
        if existing is not None:
            statuses[email.lower()], was_upgraded = existing
            if was_upgraded:
                upgraded.add(email.lower())
    for email, refusal in refused.items():
        item = by_email[email.lower()]
        _refuse(item, refusal, deps, report)
    for email, status in statuses.items():
        item = by_email[email.lower()]
        opted_out = status in consent.OPTED_OUT
        consent_ledger.settle(
            deps.ledger,
            deps.members,
            item.record.member_id,
            status,
            item.imported.marketing_consent,
            item.basis,
            deps.consent_rules,
            upgraded=email in upgraded,
            entries=NEVER_IN_MAILCHIMP,
        )
        report.statuses[status] += 1
        if opted_out:
            item.step(Step.SKIPPED, Outcome.SKIPPED, f"already {status} in Mailchimp (opted out): status kept")
        elif email in upgraded:
            item.step(
                Step.MAILCHIMP_UPSERT, Outcome.OK, f"in the audience without permission: consent given, now {status}"
            )
        else:
            item.step(Step.MAILCHIMP_UPSERT, Outcome.OK, f"imported as {status} (asked {item.wanted} if new)")
    return statuses


def _bulk_member(item: _Pending, status: str, deps: ImportDeps) -> BulkMember:
    """The member as batch subscribe takes them, with the signup and opt-in times their consent ledger will show
    (as a live join's upsert sends them; none invented)."""
    member = item.imported
    times = consent_ledger.upsert_provenance(
        deps.ledger,
        item.record.member_id,
        status,
        member.marketing_consent,
        item.basis,
        deps.consent_rules,
        entries=NEVER_IN_MAILCHIMP,
    )
    first, _, last = (member.name or "").partition(" ")
    fields = {"FNAME": first, "LNAME": last, "PLATFORM": member.identity.platform.value}
    if member.joined_at is not None:
        fields["JOINED"] = f"{member.joined_at:%Y-%m-%d}"
    return BulkMember(
        email=member.email or "",
        status=status,
        merge_fields={key: value for key, value in fields.items() if value},
        timestamp_signup=times.timestamp_signup,
        timestamp_opt=times.timestamp_opt,
    )


def _existing_member(item: _Pending, deps: ImportDeps, list_id: str) -> tuple[str, bool] | None:
    """A member the audience already held: their status (None: not in the audience after all), and whether the
    import upgraded it. Their status is read and kept; consent given on the platform upgrades a `transactional`
    member exactly as for a live join (double opt-in unless proven; never a resubscribe), with the same consent
    fields (the ledger's signup and opt-in times, the marketing permissions). An import never asks an unsubscribed
    member again: the platform's word that they consented is no new request (`consent.reopt_in_for_consent`)."""
    email = item.imported.email or ""
    status = deps.mailing_list.member_status(list_id, email)
    if status is None:
        return None
    upgrade = consent.upgrade_for_consent(status, facts(item.imported), opted_out_before=item.record.opted_out_before)
    if not upgrade:
        return status, False

    def consent_fields(wanted: str) -> dict[str, object]:
        return consent_ledger.mailchimp_fields(
            deps.ledger,
            item.record.member_id,
            wanted,
            item.imported.marketing_consent,
            item.basis,
            deps.consent_rules,
            entries=NEVER_IN_MAILCHIMP,
        )

    try:
        status = set_upgraded_status(deps.mailing_list, list_id, email, upgrade, consent_fields).status
    except ResourceGone:  # archived or deleted since its status was read: not in the audience after all
        return None
    return status, True


def _refuse(item: _Pending, refusal: MemberRefusal, deps: ImportDeps, report: ChunkReport) -> None:
    title = refusal.kind.value.replace("_", " ")
    deps.members.set_mailchimp_status(item.record.member_id, f"refused: {title}")
    item.step(Step.MAILCHIMP_UPSERT, Outcome.REFUSED, f"Mailchimp refused the member: {title} {refusal.text}".strip())
    report.refused.append((row_label(item.imported), f"Mailchimp: {title}"))


def _welcome(
    landed: list[_Pending], statuses: dict[str, str], deps: ImportDeps, now: datetime, report: ChunkReport
) -> None:
    """The welcome journey (and the drip) for subscribed members inside the window; the double opt-in wait for
    pending ones inside it. Everyone else is an existing member: no journey."""
    rules = deps.import_rules
    due: list[_Pending] = []
    for item in landed:
        status = statuses[_key(item.imported)]
        if not in_welcome_window(item.imported, rules, now):
            continue
        if status == consent.PENDING:
            deps.due_work.schedule(
                OPT_IN,
                item.record.member_id,
                now + OPT_IN_FIRST_CHECK,
                {"awaiting_since": now.isoformat()},
                keep_existing=True,
            )
        elif consent.receives_marketing(status):
            due.append(item)
    if not due:
        return
    if not rules.journey_tag:
        journey = deps.rules.welcome_journey
        for item in due:
            email = item.imported.email or ""
            try:
                started = start_welcome_journey(
                    item.record.member_id,
                    email,
                    journey,
                    deps.mailing_list,
                    deps.members,
                    item.step,
                    now,
                    list_id=deps.rules.list_id,
                )
            except ResourceGone as gone:  # archived or deleted since it landed: this member's, the chunk goes on
                item.step(Step.JOURNEY_STARTED, Outcome.REFUSED, f"Mailchimp refused the welcome journey: {gone}")
                continue
            report.journeys += started == "started"
            enter_drip(deps.due_work, item.record.member_id, deps.rules.drip_step_days, now)
        return
    claimed = [item for item in due if deps.members.claim_journey(item.record.member_id, now, JOURNEY_CLAIM_LEASE)]
    if not claimed:
        return
    try:
        deps.bulk.tag_many(deps.rules.list_id, rules.journey_tag, [item.imported.email or "" for item in claimed])
    except Exception:
        for item in claimed:
            deps.members.release_journey_claim(item.record.member_id)
        raise
    for item in claimed:
        deps.members.confirm_journey_started(item.record.member_id, now)
        item.step(Step.JOURNEY_STARTED, Outcome.OK, f"welcome journey started by the tag {rules.journey_tag}")
        enter_drip(deps.due_work, item.record.member_id, deps.rules.drip_step_days, now)
    report.journeys += len(claimed)
