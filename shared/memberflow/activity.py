"""The activity log's record: one compact line per member event, appended by every automation and read by the
community health report (Athena deployed, DuckDB locally, over the same files).

Schema version 1 (`v`). Every record has `v`, `id`, `kind`, `ts`, `member` and `platform`; the other fields are
present only for the kinds that carry them (absent or null otherwise). Never message text, names or addresses:
`member` is a keyed hash of the member id (`member_hash`), ids are the platforms' own ids of channels, threads,
posts, tickets, events and campaigns.

| field | type | meaning |
|---|---|---|
| `v` | int | schema version (1) |
| `id` | string | the record's id (the event's idempotency key and the kind): a record written twice is one |
| `kind` | string | one of `KINDS` below |
| `ts` | `YYYY-MM-DD HH:MM:SS` (UTC) | when it happened (the platform's time); the partition `dt` is its date |
| `member` | string | keyed hash (HMAC-SHA256, 32 hex) of the member id: one person across platforms |
| `platform` | string | `slack`, `discourse`, `discord`, `generic`, `mailchimp`, `zendesk`, `eventbrite`, ... |
| `workspace` | string | the Slack team, Discourse instance, Discord guild |
| `channel` | string | the Slack/Discord channel id |
| `thread` | string | the thread: Slack `thread_ts` (a thread opener's own `ts`), the Discourse topic id |
| `item` | string | the message or post: Slack `ts`, Discourse post number, Discord message id (reacted to) |
| `is_reply` | bool | a reply in a thread (Slack `thread_ts` differs from `ts`; a Discourse post after the first) |
| `opens_thread` | bool | opens a thread (a Slack top-level message, a Discourse topic's first post) |
| `question` | bool | a thread opener that asks something (a `?` in a Slack message; every new Discourse topic) |
| `category` | string | ticket category (escalation) |
| `ticket` | string | ticket id (escalation) |
| `event` | string | event id (event sync) |
| `campaign`, `tier`, `variant` | string | win-back campaign, member tier, `treatment` or `holdout` |
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from memberflow.privacy import keyed_hash

SCHEMA_VERSION = 1

# Member activity (intake, onboarding consumer)
MESSAGE = "message"
POST = "post"
REACTION = "reaction"
# Onboarding funnel
JOINED = "joined"
MAILCHIMP_ADDED = "mailchimp_added"
WELCOMED = "welcomed"
DRIP_FINISHED = "drip_finished"
ACTIVATED = "activated"
# Bulk import: a member who was there before memberflow (their join date unknown, or older than the log keeps)
IMPORTED = "imported"
# Escalation
TICKET_OPENED = "ticket_opened"
TICKET_FIRST_REPLY = "ticket_first_reply"
TICKET_SOLVED = "ticket_solved"
# Event sync
REGISTRATION = "registration"
ATTENDED = "attended"
NO_SHOW = "no_show"
# Win-back
WINBACK_CONTACTED = "winback_contacted"
WINBACK_HOLDOUT = "winback_holdout"

ACTIVITY_KINDS = (MESSAGE, POST, REACTION)
"""What makes a member active (DAU, WAU, MAU, activation, retention, churn risk)."""
FUNNEL_KINDS = (JOINED, MAILCHIMP_ADDED, WELCOMED, DRIP_FINISHED, ACTIVATED)
KINDS = frozenset(
    {
        *ACTIVITY_KINDS,
        *FUNNEL_KINDS,
        IMPORTED,
        TICKET_OPENED,
        TICKET_FIRST_REPLY,
        TICKET_SOLVED,
        REGISTRATION,
        ATTENDED,
        NO_SHOW,
        WINBACK_CONTACTED,
        WINBACK_HOLDOUT,
    }
)

# The columns, in order, with the SQL type both engines read them as (template.yaml's Glue table says the same;
# tests/unit/test_health_schema.py checks that the two agree).
COLUMNS: dict[str, str] = {
    "v": "int",
    "id": "string",
    "kind": "string",
    "ts": "timestamp",
    "member": "string",
    "platform": "string",
    "workspace": "string",
    "channel": "string",
    "thread": "string",
    "item": "string",
    "is_reply": "boolean",
    "opens_thread": "boolean",
    "question": "boolean",
    "category": "string",
    "ticket": "string",
    "event": "string",
    "campaign": "string",
    "tier": "string",
    "variant": "string",
}


@dataclass(frozen=True)
class ActivityRecord:
    id: str
    kind: str
    ts: datetime
    member: str
    platform: str
    workspace: str | None = None
    channel: str | None = None
    thread: str | None = None
    item: str | None = None
    is_reply: bool | None = None
    opens_thread: bool | None = None
    question: bool | None = None
    category: str | None = None
    ticket: str | None = None
    event: str | None = None
    campaign: str | None = None
    tier: str | None = None
    variant: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown activity kind {self.kind!r}")

    @property
    def day(self) -> str:
        """The partition (`dt=YYYY-MM-DD`): the UTC date of `ts`."""
        return f"{utc(self.ts):%Y-%m-%d}"

    def to_json(self) -> dict[str, Any]:
        """The line as written: absent fields left out (both engines read them as null)."""
        fields = {name: value for name, value in asdict(self).items() if value is not None}
        fields["ts"] = f"{utc(self.ts):%Y-%m-%d %H:%M:%S}"
        return {"v": SCHEMA_VERSION, **fields}


def record_id(source_key: str, kind: str) -> str:
    """A record's id from what identifies the event (its idempotency key) and the kind: stable across retries."""
    return hashlib.sha256(f"{source_key}|{kind}".encode()).hexdigest()[:32]


def member_hash(key: bytes, member_id: str) -> str:
    """The member as the log names them: a keyed hash of the member id, so the log holds no address nor platform
    id, while a holder of the key and the member id (win-back) can find the member in a list the report gives."""
    return keyed_hash(key, f"activity:{member_id}")[:32]


def utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


class Appends(Protocol):
    def append(self, record: ActivityRecord) -> None: ...


def note(
    log: Appends | None,
    kind: str,
    *,
    member_id: str,
    platform: str,
    at: datetime,
    source_key: str,
    **fields: Any,
) -> None:
    """Append one record to the log (`ports.ActivityLog`) if the function has one; `source_key` identifies the event
    (its idempotency key, a run and member), so a record written twice has one id."""
    if log is None:
        return
    log.append(
        ActivityRecord(
            id=record_id(source_key, kind), kind=kind, ts=utc(at), member=member_id, platform=platform, **fields
        )
    )
