"""`memberflow import slack|discourse|csv FILE`: bring the members a community already has into memberflow and
Mailchimp, in bulk, by the consent rules of a live join.

Sources (each a file, read without calling the platform):
- `slack FILE`: Slack `users.list` answers as JSON: one answer, a JSON list of answers (one per cursor page), or one
  answer per line. Bots, deleted users and guests are skipped unless asked (--include-guests, --include-deleted).
  A list whose last page says more follow (an interrupted fetch), or in which nobody has an address (a token
  without users:read.email), is refused with the reason and what to do.
- `discourse FILE`: Discourse's user export CSV (Admin -> Users -> Export), with --consent-field naming the user field
  column in which members give marketing consent; --admin-users adds `GET /admin/users/list/active.json` pages
  (refused when the last one is a full page of 100: an interrupted fetch).
- `csv FILE`: memberflow's CSV format, header `email,name,platform,user_id,joined,last_active,consent` (optional
  `workspace`, `email_verified`).

The import runs here (chunks of at most 500 members, tags gathered across chunks) or, with --via-queue, in AWS:
the chunks go through the stack's import queue to its bulk consumer. Either way a checkpoint file
(FILE.memberflow-import.json) records how far it got: an interrupted import resumes from it, a finished one is not
run again (--restart runs it again, which changes nothing for members already imported). --dry-run says what would
happen and changes nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

CHUNK = 500
SERVICE_ATTEMPTS = 6
"""Tries of a chunk while Mailchimp throttles or fails as a whole, waiting longer each time (its Retry-After when
it gives one); then the import stops at its checkpoint, to be resumed."""
SUMMARY_REFUSALS = 20
"""Refusals listed one by one in the summary; the rest are counted by reason."""


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "import", help="bring existing members in from a Slack, Discourse or CSV export (bulk, consent as for joins)"
    )
    parser.add_argument("source", choices=("slack", "discourse", "csv"))
    parser.add_argument("file", type=Path)
    parser.add_argument("--stack", help="a deployed CloudFormation stack name (default: the local stack)")
    parser.add_argument("--dry-run", action="store_true", help="say what would happen; change nothing")
    parser.add_argument("--via-queue", action="store_true", help="send chunks to the stack's import queue (AWS)")
    parser.add_argument("--restart", action="store_true", help="ignore the checkpoint and run from the start")
    parser.add_argument("--checkpoint", type=Path, help="checkpoint file (default: FILE.memberflow-import.json)")
    parser.add_argument("--workspace", default="import", help="csv: workspace of rows without one")
    parser.add_argument("--instance", help="discourse: the forum's URL, e.g. https://forum.example.org")
    parser.add_argument("--consent-field", default="", help="discourse: the export's consent user field column")
    parser.add_argument("--admin-users", type=Path, help="discourse: admin users list pages (JSON)")
    parser.add_argument(
        "--fetch",
        action="store_true",
        help="first save the platform's list from its API (slack: FILE, from SLACK_BOT_TOKEN; discourse: "
        "--admin-users, from DISCOURSE_API_KEY and DISCOURSE_API_USERNAME), then import",
    )
    parser.add_argument(
        "--calls-per-minute",
        type=_calls_per_minute,
        help="discourse --fetch: admin API calls a minute (default 30: half of the site's 60, which member replies "
        "and the forum's other admin tools share; about 20 s per 1,000 users)",
    )
    parser.add_argument("--include-guests", action="store_true", help="slack: import guests too")
    parser.add_argument("--include-deleted", action="store_true", help="slack: import deactivated users too")
    parser.add_argument(
        "--welcome-window-days",
        type=int,
        help="members who joined at most this many days ago get the welcome journey (default: the stack's)",
    )
    parser.set_defaults(run=run)


def _calls_per_minute(value: str) -> float:
    from memberflow_cli.fetch import discourse_pace

    try:
        rate = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value}") from None
    try:
        discourse_pace(rate)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return rate


def read_members(args: argparse.Namespace) -> list[Any]:
    """Every row of the file, as an ImportedMember or a RowRefusal. A file that must not be imported as it is (an
    interrupted fetch, a Slack list without addresses) stops the command with the reason."""
    from memberflow.onboarding import import_sources

    path: Path = args.file
    if args.source == "csv":
        with path.open(newline="", encoding="utf-8-sig") as lines:
            return list(import_sources.read_csv(lines, workspace=args.workspace))
    if args.source == "discourse":
        if not args.instance:
            raise SystemExit("discourse: --instance (the forum's URL) is needed: it names the members' identities")
        admin: list[dict] = []
        if args.admin_users:
            pages = _admin_pages(args.admin_users)
            problem = import_sources.discourse_admin_pages_problem(pages)
            if problem:
                raise SystemExit(f"{args.admin_users.name} is not imported: {problem}")
            admin = [user for page in pages for user in page]
        with path.open(newline="", encoding="utf-8-sig") as lines:
            return list(
                import_sources.read_discourse_export(
                    lines, instance=args.instance.rstrip("/"), consent_field=args.consent_field, admin_users=admin
                )
            )
    slack_pages = [page for page in _json_pages(path) if isinstance(page, dict)]
    problem = import_sources.slack_pages_problem(slack_pages)
    if problem:
        raise SystemExit(f"{path.name} is not imported: {problem}")
    return list(
        import_sources.read_slack_users(
            slack_pages, include_guests=args.include_guests, include_deleted=args.include_deleted
        )
    )


def _json_pages(path: Path) -> Iterator[dict]:
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except ValueError:
        data = [json.loads(line) for line in text.splitlines() if line.strip()]
    yield from data if isinstance(data, list) else [data]


def _users(page: Any) -> list[dict]:
    """An admin users list page is a JSON list of users (or a dict holding one)."""
    if isinstance(page, dict):
        return list(page.get("users", [page]))
    return list(page) if isinstance(page, list) else []


def _admin_pages(path: Path) -> list[list[dict]]:
    """The admin users list pages of a file: one page per line (as --fetch saves them), a JSON list of pages, one
    page (a JSON list of users, or a dict holding one)."""
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except ValueError:
        return [_users(json.loads(line)) for line in text.splitlines() if line.strip()]
    if isinstance(data, list) and data and all(isinstance(page, list | dict) and not _is_user(page) for page in data):
        return [_users(page) for page in data]
    return [_users(data)]


def _is_user(value: Any) -> bool:
    return isinstance(value, dict) and "users" not in value


@dataclass
class Checkpoint:
    """How far an import got: members done (in file order), what they gave, tags still to send."""

    path: Path
    fingerprint: str
    done: int = 0
    finished: bool = False
    report: dict = field(default_factory=dict)
    pending_tags: dict[str, list[str]] = field(default_factory=dict)
    correlation_id: str = ""

    @classmethod
    def load(cls, path: Path, fingerprint: str) -> Checkpoint:
        if path.exists():
            data = json.loads(path.read_text())
            if data.get("fingerprint") == fingerprint:
                return cls(path, fingerprint, **{k: v for k, v in data.items() if k != "fingerprint"})
        return cls(path, fingerprint, correlation_id=f"import-{uuid.uuid4().hex[:16]}")

    def save(self) -> None:
        data = {
            "fingerprint": self.fingerprint,
            "done": self.done,
            "finished": self.finished,
            "report": self.report,
            "pending_tags": self.pending_tags,
            "correlation_id": self.correlation_id,
        }
        temporary = self.path.with_suffix(self.path.suffix + ".tmp")
        temporary.write_text(json.dumps(data))
        temporary.replace(self.path)  # atomic: an interrupted write leaves the previous checkpoint


def fingerprint(args: argparse.Namespace) -> str:
    digest = hashlib.sha256(args.source.encode())
    digest.update(args.file.read_bytes())
    digest.update(b"queue" if args.via_queue else b"here")
    return digest.hexdigest()


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    from memberflow.onboarding.import_sources import ImportedMember, RowRefusal
    from memberflow.onboarding.imports import ChunkReport
    from memberflow_local.story import Story

    out = out or sys.stdout
    story = Story(out)
    if getattr(args, "fetch", False):
        fetched = _fetch(args, story)
        if fetched:
            return fetched
    if not args.file.exists():
        print(f"no such file: {args.file}", file=sys.stderr)
        return 2
    rows = read_members(args)
    members = [row for row in rows if isinstance(row, ImportedMember)]
    unreadable = [row for row in rows if isinstance(row, RowRefusal)]
    story.line(f"{args.file.name}: {len(rows)} row(s), {len(members)} member(s) to import, {len(unreadable)} refused")

    checkpoint_path = args.checkpoint or args.file.with_name(args.file.name + ".memberflow-import.json")
    checkpoint = Checkpoint.load(checkpoint_path, fingerprint(args))
    if args.restart:
        checkpoint = Checkpoint(checkpoint_path, checkpoint.fingerprint, correlation_id=checkpoint.correlation_id)
    if checkpoint.finished and not args.dry_run:
        story.line(f"already imported (checkpoint {checkpoint_path.name}): nothing to do; --restart runs it again")
        _summary(story, ChunkReport.from_dict(checkpoint.report), unreadable, members=len(members))
        return 0

    target = _target(args.stack)
    importer = _LocalImport(target, args) if not args.via_queue else None
    if args.dry_run:
        assert importer is not None or args.via_queue
        report = (importer or _LocalImport(target, args)).dry_run(members)
        story.line("dry run: nothing was changed")
        _summary(story, report, unreadable, members=len(members))
        return 0

    report = ChunkReport.from_dict(checkpoint.report)
    if checkpoint.done:
        story.line(f"resuming after {checkpoint.done} member(s) (checkpoint {checkpoint_path.name})")
    bar = story.progress("", len(members))
    sender = _QueueImport(target, checkpoint.correlation_id) if args.via_queue else None

    def show() -> None:
        bar.label = (
            f"read {checkpoint.done}, written {report.written + report.unchanged}, "
            f"refused {len(report.refused) + len(unreadable)}"
        )
        bar.update(checkpoint.done)

    show()
    try:
        for start in range(checkpoint.done, len(members), CHUNK):
            chunk = members[start : start + CHUNK]
            if sender is not None:
                sender.send(start // CHUNK, chunk)
                report.written += len(chunk)
            else:
                assert importer is not None
                done = _patiently(story, lambda chunk=chunk: importer.chunk(chunk, checkpoint))
                if done is None:
                    bar.finish()
                    story.line(
                        f"Mailchimp keeps failing: stopped after {checkpoint.done} member(s); "
                        "run the same command again to resume"
                    )
                    return 75
                report.add(done)
            checkpoint.done = start + len(chunk)
            checkpoint.report = report.as_dict()
            checkpoint.save()
            show()
        if importer is not None:
            importer.finish(checkpoint)
        checkpoint.finished = True
        checkpoint.save()
    except KeyboardInterrupt:
        bar.finish()
        story.line(f"interrupted after {checkpoint.done} member(s): run the same command again to resume")
        return 130
    bar.finish()
    if sender is not None:
        story.line(f"{sender.sent} chunk(s) queued for the stack's import function ({checkpoint.correlation_id})")
    _summary(story, report, unreadable, members=len(members))
    return 0


def _patiently(story: Any, work: Any, sleep: Any = None) -> Any:
    """`work()`, waited out while Mailchimp throttles (429) or fails as a whole: an import slows down rather than
    giving up on members. None when it still fails after `SERVICE_ATTEMPTS` tries. A chunk tried again changes
    nothing for the members it already brought in."""
    import time

    from memberflow.errors import Transient

    sleep = sleep or time.sleep
    for attempt in range(SERVICE_ATTEMPTS):
        try:
            return work()
        except Transient as failure:
            if attempt == SERVICE_ATTEMPTS - 1:
                return None
            wait = min(60.0, failure.retry_after or 2.0**attempt)
            story.line(f"Mailchimp is throttling or failing ({type(failure).__name__}): waiting {wait:.0f} s")
            sleep(wait)
    return None


def _fetch(args: argparse.Namespace, story: Any) -> int:
    """Save the platform's member list from its API where the import reads it; an exit code on failure, else 0."""
    import os

    from memberflow_cli.fetch import (
        DISCOURSE_CALLS_PER_MINUTE,
        DISCOURSE_PAGE,
        DISCOURSE_SITE_LIMIT,
        SLACK_API,
        FetchError,
        fetch_discourse_users,
        fetch_slack_users,
    )

    try:
        if args.source == "slack":
            token = os.environ.get("SLACK_BOT_TOKEN", "")
            if not token:
                print("--fetch: set SLACK_BOT_TOKEN (users:read, users:read.email)", file=sys.stderr)
                return 2
            pages = fetch_slack_users(
                token, args.file, base_url=os.environ.get("SLACK_API_URL", "") or SLACK_API, say=story.line
            )
            story.line(f"saved {pages} page(s) of Slack users.list to {args.file.name}")
        elif args.source == "discourse":
            key = os.environ.get("DISCOURSE_API_KEY", "")
            if not key or not args.instance or not args.admin_users:
                print("--fetch: set DISCOURSE_API_KEY and give --instance and --admin-users", file=sys.stderr)
                return 2
            username = os.environ.get("DISCOURSE_API_USERNAME", "system")
            rate = getattr(args, "calls_per_minute", None) or DISCOURSE_CALLS_PER_MINUTE
            story.line(
                f"fetching Discourse's admin users list at {rate:g} of the site's {DISCOURSE_SITE_LIMIT} admin calls a "
                f"minute: about {1000 / DISCOURSE_PAGE * 60 / rate:.0f} s per 1,000 users"
            )
            users = fetch_discourse_users(
                args.instance, key, username, args.admin_users, calls_per_minute=rate, say=story.line
            )
            story.line(f"saved {users} Discourse user(s) to {args.admin_users.name}; consent comes from the export")
        else:
            print("--fetch: a CSV is not fetched", file=sys.stderr)
            return 2
    except (FetchError, OSError) as error:
        saved = args.file if args.source == "slack" else args.admin_users
        print(
            f"--fetch failed: {error}\nnothing was saved: {saved} is as it was before the fetch (nothing is imported); "
            "run the same command again to fetch the whole list",
            file=sys.stderr,
        )
        return 1
    return 0


def _target(stack: str | None) -> Any:
    from memberflow_cli.target import resolve

    return resolve(stack)


class _LocalImport:
    """The import run from here: the stack's Mailchimp key, tables and settings."""

    def __init__(self, target: Any, args: argparse.Namespace) -> None:
        from memberflow.adapters.consent_ledger import DynamoConsentLedger
        from memberflow.adapters.due_work import DynamoDueWorkIndex
        from memberflow.adapters.mailchimp import MailchimpList
        from memberflow.adapters.member_profiles import DynamoMemberRepository
        from memberflow.adapters.trace_store import DynamoTraceStore
        from memberflow.config import ConsentSettings
        from memberflow.onboarding.imports import ImportDeps, ImportRules
        from memberflow.onboarding.rules import OnboardingRules, WelcomeJourney
        from memberflow.runtime.container import consent_rules_from
        from memberflow_cli.forget import suppression_list
        from memberflow_cli.target import secret

        parameters = target.parameters
        mailchimp = MailchimpList(
            lambda fresh: str(secret(target, "MailchimpApiSecret")["api_key"]), target.mailchimp_url
        )
        window = args.welcome_window_days
        if window is None:
            window = int(parameters.get("ImportWelcomeWindowDays") or 0)
        trigger = parameters.get("WelcomeJourneyTrigger", "api")
        members_table = target.physical("MembersTable")
        self.deps = ImportDeps(
            bulk=mailchimp,
            mailing_list=mailchimp,
            members=DynamoMemberRepository(members_table),
            due_work=DynamoDueWorkIndex(members_table),
            trace=DynamoTraceStore(target.physical("TraceTable")),
            suppressions=suppression_list(target),
            rules=OnboardingRules(
                list_id=parameters["MailchimpListId"],
                welcome_journey=WelcomeJourney(
                    parameters["MailchimpWelcomeJourneyId"], parameters["MailchimpWelcomeJourneyStepId"]
                ),
                drip_step_days=tuple(int(day) for day in parameters.get("DripStepDays", "1,3,7").split(",")),
            ),
            ledger=DynamoConsentLedger(members_table),
            consent_rules=consent_rules_from(
                ConsentSettings.model_validate(
                    {
                        "CONSENT_WORDING": parameters.get("ConsentWording", ""),
                        "MAILCHIMP_MARKETING_PERMISSION_IDS": parameters.get("MailchimpMarketingPermissionIds", ""),
                    }
                )
            ),
            import_rules=ImportRules(
                welcome_window_days=window,
                journey_tag=parameters.get("WelcomeJourneyTag", "") if trigger == "tag" else "",
            ),
        )
        self.mailchimp = mailchimp
        self._buffer: Any = None

    def dry_run(self, members: list[Any]) -> Any:
        from memberflow.onboarding.imports import ChunkReport, dry_run

        report = ChunkReport()
        for start in range(0, len(members), CHUNK):
            report.add(dry_run(members[start : start + CHUNK], self.deps))
        return report

    def chunk(self, chunk: list[Any], checkpoint: Checkpoint) -> Any:
        from memberflow.onboarding.imports import TagBuffer, import_chunk

        if self._buffer is None:
            self._buffer = TagBuffer(self.deps.bulk, self.deps.rules.list_id, checkpoint.pending_tags)
        report = import_chunk(chunk, self.deps, correlation_id=checkpoint.correlation_id, tags=self._buffer)
        checkpoint.pending_tags = self._buffer.pending
        return report

    def finish(self, checkpoint: Checkpoint) -> None:
        from memberflow.onboarding.imports import TagBuffer

        if self._buffer is None:
            self._buffer = TagBuffer(self.deps.bulk, self.deps.rules.list_id, checkpoint.pending_tags)
        self._buffer.flush()
        checkpoint.pending_tags = {}


MAX_MESSAGE_BYTES = 200_000
"""SQS takes 256 KiB a message, attributes included: a chunk of members with long names and addresses is split."""


class _QueueImport:
    """The import run in AWS: each chunk is one `member_import_chunk` event on the stack's import queue (two or more
    when its members would not fit in one message)."""

    def __init__(self, target: Any, correlation_id: str, router: Any = None) -> None:
        if router is None:
            from memberflow.adapters.sqs import SqsEventRouter
            from memberflow.events import CATALOG, MEMBER_IMPORTS

            router = SqsEventRouter({MEMBER_IMPORTS: target.physical("MemberImportQueue")}, CATALOG)
        self._router = router
        self._correlation_id = correlation_id
        self.sent = 0

    def send(self, index: int, chunk: list[Any], part: str = "") -> None:
        from memberflow.events import MemberImportChunk
        from memberflow.pipeline.envelope import QueuedEvent

        queued = QueuedEvent(
            # One key per chunk (and part) of this import: a chunk sent twice (a resumed run) is imported once.
            idempotency_key=f"import:{self._correlation_id}:{index}{part}",
            correlation_id=self._correlation_id,
            source="import",
            event=MemberImportChunk(members=chunk),
        )
        if len(chunk) > 1 and len(queued.model_dump_json().encode()) > MAX_MESSAGE_BYTES:
            half = len(chunk) // 2
            self.send(index, chunk[:half], f"{part}.0")
            self.send(index, chunk[half:], f"{part}.1")
            return
        self._router.send(queued)
        self.sent += 1


def _summary(story: Any, report: Any, unreadable: list[Any], *, members: int) -> None:
    from collections import Counter

    statuses = ", ".join(f"{status} {count}" for status, count in sorted(report.statuses.items())) or "none"
    story.line(
        f"summary: {members} member(s) read, {report.written} written, {report.unchanged} already imported "
        f"(unchanged), {len(report.refused) + len(unreadable)} refused; welcome journeys started: {report.journeys}"
    )
    story.line(f"Mailchimp statuses: {statuses}", indent=True)
    refusals = [(f"row {row.row}", f"{row.field}: {row.reason}") for row in unreadable] + list(report.refused)
    if not refusals:
        return
    story.line("refused:", indent=True)
    for who, why in refusals[:SUMMARY_REFUSALS]:
        story.line(f"  {who}: {why}", indent=True)
    if len(refusals) > SUMMARY_REFUSALS:
        story.line(f"  ... and {len(refusals) - SUMMARY_REFUSALS} more:", indent=True)
        reasons = Counter(why.split(":")[0] for _, why in refusals[SUMMARY_REFUSALS:])
        for reason, count in reasons.most_common():
            story.line(f"    {count} x {reason}", indent=True)
