"""A community small enough to count by hand, for the health report's figures (tests/unit/test_health_figures.py
says what each figure must be, and why). The report week is 2026-W47: Monday 2026-11-16 to Sunday 2026-11-22.

Slack workspace T1 (channels C1, C2), Discourse forum https://forum.example.org.

- ada: joins Slack 11-10 09:00 (W46) and Discourse 11-16 09:00; asks Q1 on Discourse 11-16 12:00 (topic 100), answers
  bob's Q2 in Slack 11-17 17:30, replies in topic 200 11-18 10:00; attended an event 11-05 and E1.
- hal, jon: join Slack in W46 and write within the hour; ivy joins Slack in W46 and never writes.
- bob: joins Slack 11-17 10:00; asks Q2 in C1 16:00; reacts 11-20; asks Q3 in C2 11-21 11:00 and replies to
  himself 12:00 (Q3 stays unanswered).
- cy: joins Slack 11-18 08:00, welcomed, never writes. dee: joins Discourse 11-19 12:00, asks Q4 11-22 20:00.
- eve: joined Slack 09-30; writes 10-10, 10-12, 10-15, 10-20, then silence. fay: writes in Slack 10-11, 10-13, 10-14,
  answers Q1 on Discourse 11-20 15:00. gus: writes 10-14 and 10-17. lee: only held out of win-back.
- Tickets: T1 billing (opened 11-16 10:00, first reply 11:00, solved 11-17 10:00), T2 billing (opened 11-18 09:00,
  first reply 09:30), T3 access (opened 11-10, solved 11-19).
- Event E1 (11-19): ada, bob and cy registered; ada and bob came, cy did not. Event E0 (11-05): ada came.
- Win-back campaign "autumn" 10-01 10:00: eve and gus contacted, fay and lee held out.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from memberflow.activity import ActivityRecord, record_id
from memberflow.adapters.activity_log import EXTENSION, PREFIX, encode_object

KEY = b"health-seed-key"
FORUM = "https://forum.example.org"

_n = 0


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text + ":00+00:00")


def rec(kind: str, member: str, platform: str, at: str, **fields: Any) -> ActivityRecord:
    global _n
    _n += 1
    workspace = fields.pop("workspace", FORUM if platform == "discourse" else "T1" if platform == "slack" else None)
    return ActivityRecord(
        id=record_id(f"seed-{_n}", kind), kind=kind, ts=_at(at), member=member, platform=platform,
        workspace=workspace, **fields,
    )  # fmt: skip


def msg(member: str, at: str, channel: str, thread: str, item: str, **flags: bool) -> ActivityRecord:
    return rec("message", member, "slack", at, channel=channel, thread=thread, item=item, **_flags(flags))


def post(member: str, at: str, topic: str, number: str, **flags: bool) -> ActivityRecord:
    return rec("post", member, "discourse", at, thread=topic, item=number, **_flags(flags))


def _flags(flags: dict[str, bool]) -> dict[str, bool]:
    return {"is_reply": False, "opens_thread": False, "question": False, **flags}


def simple(member: str, day: str) -> ActivityRecord:
    """A Slack message in C1 that opens a thread and asks nothing."""
    ts = str(int(_at(day + "T10:00").timestamp())) + ".000100"
    return msg(member, day + "T10:00", "C1", ts, ts, opens_thread=True)


Q2 = "1763395200.000200"
Q3 = "1763722800.000400"


def records() -> list[ActivityRecord]:
    q1 = post("ada", "2026-11-16T12:00", "100", "1", opens_thread=True, question=True)
    return [
        # W46
        rec("joined", "ada", "slack", "2026-11-10T09:00"),
        rec("mailchimp_added", "ada", "slack", "2026-11-10T09:01"),
        rec("welcomed", "ada", "slack", "2026-11-10T09:02"),
        msg("ada", "2026-11-10T10:00", "C1", "1762768800.000100", "1762768800.000100", opens_thread=True),
        rec("joined", "hal", "slack", "2026-11-11T09:00"),
        msg("hal", "2026-11-11T09:30", "C1", "1762853400.000100", "1762853400.000100", opens_thread=True),
        rec("joined", "ivy", "slack", "2026-11-12T09:00"),
        rec("joined", "jon", "slack", "2026-11-13T09:00"),
        msg("jon", "2026-11-13T09:10", "C1", "1763025000.000100", "1763025000.000100", opens_thread=True),
        # W47
        rec("joined", "ada", "discourse", "2026-11-16T09:00"),
        q1,
        q1,  # written twice (a retried flush): one record
        rec("joined", "bob", "slack", "2026-11-17T10:00"),
        rec("mailchimp_added", "bob", "slack", "2026-11-17T10:01"),
        msg("bob", "2026-11-17T16:00", "C1", Q2, Q2, opens_thread=True, question=True),
        msg("ada", "2026-11-17T17:30", "C1", Q2, "1763400600.000300", is_reply=True),
        post("ada", "2026-11-18T10:00", "200", "2", is_reply=True),
        rec("joined", "cy", "slack", "2026-11-18T08:00"),
        rec("mailchimp_added", "cy", "slack", "2026-11-18T08:01"),
        rec("welcomed", "cy", "slack", "2026-11-18T08:02"),
        rec("joined", "dee", "discourse", "2026-11-19T12:00"),
        rec("mailchimp_added", "dee", "discourse", "2026-11-19T12:01"),
        rec("welcomed", "dee", "discourse", "2026-11-19T12:02"),
        post("fay", "2026-11-20T15:00", "100", "2", is_reply=True),
        rec("reaction", "bob", "slack", "2026-11-20T09:00", channel="C1", item=Q2),
        msg("bob", "2026-11-21T11:00", "C2", Q3, Q3, opens_thread=True, question=True),
        msg("bob", "2026-11-21T12:00", "C2", Q3, "1763726400.000500", is_reply=True),
        post("dee", "2026-11-22T20:00", "300", "1", opens_thread=True, question=True),
        # The regulars of October
        rec("joined", "eve", "slack", "2026-09-30T10:00"),
        *[simple("eve", day) for day in ("2026-10-10", "2026-10-12", "2026-10-15", "2026-10-20")],
        *[simple("fay", day) for day in ("2026-10-11", "2026-10-13", "2026-10-14")],
        *[simple("gus", day) for day in ("2026-10-14", "2026-10-17")],
        # Tickets
        rec("ticket_opened", "ada", "zendesk", "2026-11-16T10:00", ticket="T1", category="billing"),
        rec("ticket_first_reply", "ada", "zendesk", "2026-11-16T11:00", ticket="T1", category="billing"),
        rec("ticket_solved", "ada", "zendesk", "2026-11-17T10:00", ticket="T1", category="billing"),
        rec("ticket_opened", "bob", "zendesk", "2026-11-18T09:00", ticket="T2", category="billing"),
        rec("ticket_first_reply", "bob", "zendesk", "2026-11-18T09:30", ticket="T2", category="billing"),
        rec("ticket_opened", "hal", "zendesk", "2026-11-10T12:00", ticket="T3", category="access"),
        rec("ticket_solved", "hal", "zendesk", "2026-11-19T12:00", ticket="T3", category="access"),
        # Events
        rec("attended", "ada", "eventbrite", "2026-11-05T19:00", event="E0"),
        rec("registration", "ada", "eventbrite", "2026-11-16T08:00", event="E1"),
        rec("registration", "bob", "eventbrite", "2026-11-17T11:00", event="E1"),
        rec("registration", "cy", "eventbrite", "2026-11-18T09:00", event="E1"),
        rec("attended", "ada", "eventbrite", "2026-11-19T18:00", event="E1"),
        rec("attended", "bob", "eventbrite", "2026-11-19T18:00", event="E1"),
        rec("no_show", "cy", "eventbrite", "2026-11-19T18:00", event="E1"),
        # Win-back
        *[
            rec(kind, member, "mailchimp", "2026-10-01T10:00", campaign="autumn", tier="regular", variant=variant)
            for kind, member, variant in (
                ("winback_contacted", "eve", "treatment"),
                ("winback_contacted", "gus", "treatment"),
                ("winback_holdout", "fay", "holdout"),
                ("winback_holdout", "lee", "holdout"),
            )
        ],
    ]


def write_log(root: Path, items: list[ActivityRecord], key: bytes = KEY, name: str = "seed") -> Path:
    """The records as the S3 adapter writes them, one file per day partition under `root`."""
    by_day: dict[str, list[ActivityRecord]] = {}
    for record in items:
        by_day.setdefault(record.day, []).append(record)
    for day, day_records in by_day.items():
        folder = root / PREFIX / f"dt={day}"
        folder.mkdir(parents=True, exist_ok=True)
        # A record repeated in the list goes to a second file, as a retried flush would write it.
        first, again = [], []
        for record in day_records:
            (again if record in first else first).append(record)
        (folder / f"{name}{EXTENSION}").write_bytes(encode_object(first, key))
        if again:
            (folder / f"{name}-again{EXTENSION}").write_bytes(encode_object(again, key))
    return root
