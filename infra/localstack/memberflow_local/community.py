"""A synthetic community's activity log, for the demo's health report (a 12-week history so the charts have shape)
and the benchmark (100,000 members, 1,000,000 records): members joining week by week on Slack, Discourse and
Discord, onboarding, writing, asking and answering in threads, drifting away; support tickets, a weekly meetup and
a win-back campaign. Deterministic for a seed. Written as the S3 adapter writes the log (JSON lines per day)."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from memberflow.activity import ActivityRecord, record_id
from memberflow.adapters.activity_log import EXTENSION, PREFIX, encode_object

PLATFORMS = (("slack", 0.55), ("discourse", 0.35), ("discord", 0.10))
WORKSPACES = {"slack": "T0DEMO", "discourse": "https://forum.example.org", "discord": "900000000000000001"}
CHANNELS = {"slack": ("C0GENERAL", "C0HELP", "C0EVENTS"), "discord": ("1000000000000000001", "1000000000000000002")}
CATEGORIES = ("access", "billing", "events", "code of conduct")


def generate(
    *, members: int, end: date, weeks: int = 12, records: int | None = None, seed: int = 7
) -> Iterator[ActivityRecord]:
    """Records of `members` people over the `weeks` weeks before `end` (exclusive); with `records`, exactly that
    many (activity is scaled to reach it)."""
    rng = random.Random(seed)
    start = datetime(end.year, end.month, end.day, tzinfo=UTC) - timedelta(weeks=weeks)
    span = (weeks * 7) * 86400
    budget = records
    per_member = (records / members) if records else 10.0
    count = 0
    serial = 0

    def make(kind: str, member: str, platform: str, at: datetime, **fields: Any) -> ActivityRecord:
        nonlocal serial
        serial += 1
        return ActivityRecord(
            id=record_id(f"synthetic-{seed}-{serial}", kind),
            kind=kind,
            ts=at,
            member=member,
            platform=platform,
            workspace=WORKSPACES.get(platform),
            **fields,
        )

    for n in range(members):
        member = f"member-{seed}-{n}"
        platform = _pick(rng, PLATFORMS)
        newcomer = rng.random() < 0.45
        joined = (
            start + timedelta(seconds=rng.random() * span) if newcomer else start - timedelta(days=rng.random() * 200)
        )
        out: list[ActivityRecord] = []
        if newcomer:
            out.append(make("joined", member, platform, joined))
            if rng.random() < 0.92:
                out.append(make("mailchimp_added", member, platform, joined + timedelta(minutes=1)))
                if rng.random() < 0.75:
                    out.append(make("welcomed", member, platform, joined + timedelta(minutes=2)))
        # Engagement: how many active days, and until when the member stays around.
        engaged = rng.random() < (0.55 if newcomer else 0.7)
        active_days = max(1, int(rng.expovariate(1 / max(per_member / 2.2, 0.5)))) if engaged else 0
        leaves = joined + timedelta(days=rng.expovariate(1 / 60)) if rng.random() < 0.5 else None
        first = max(joined, start) + timedelta(hours=rng.expovariate(1 / 30))
        last_active = None
        for _ in range(active_days):
            at = first + timedelta(
                seconds=rng.random() * max((start + timedelta(seconds=span) - first).total_seconds(), 1)
            )
            if leaves and at > leaves:
                continue
            for _ in range(1 + int(rng.expovariate(1.2))):
                at = at + timedelta(minutes=rng.expovariate(1 / 20))
                out.extend(_activity(rng, make, members, seed, member, platform, at))
                last_active = max(last_active or at, at)
        if newcomer:
            activities = sorted(r.ts for r in out if r.kind in ("message", "post", "reaction") and r.ts >= joined)
            if activities:
                out.append(make("activated", member, platform, activities[0]))
            elif rng.random() < 0.8 and joined + timedelta(days=7) < start + timedelta(seconds=span):
                out.append(make("drip_finished", member, platform, joined + timedelta(days=7, minutes=5)))
        for record in out:
            if budget is not None and count >= budget:
                return
            count += 1
            yield record
        # Tickets, meetups and win-back, for a share of the members.
        for record in _extras(rng, make, member, joined, start, span, last_active):
            if budget is not None and count >= budget:
                return
            count += 1
            yield record
    # Filling up to the exact count: more everyday activity by the members seen.
    while budget is not None and count < budget:
        member = f"member-{seed}-{rng.randrange(members)}"
        platform = _pick(rng, PLATFORMS)
        at = start + timedelta(seconds=rng.random() * span)
        for record in _activity(rng, make, members, seed, member, platform, at):
            if count < budget:
                count += 1
                yield record


def _activity(
    rng: random.Random, make: Any, members: int, seed: int, member: str, platform: str, at: datetime
) -> list[ActivityRecord]:
    """One message, post or reaction; a question gets its answer (three in four, usually within hours) by
    another member with it."""
    roll = rng.random()
    channel = rng.choice(CHANNELS[platform]) if platform in CHANNELS else None
    if roll < 0.25 and platform != "discord":
        thread = (
            f"{int(at.timestamp())}.{rng.randrange(10**6):06d}" if platform == "slack" else str(rng.randrange(10**7))
        )
        question = rng.random() < 0.5
        kind = "message" if platform == "slack" else "post"
        opener = make(kind, member, platform, at, channel=channel, thread=thread,
                      item=thread if platform == "slack" else "1", is_reply=False, opens_thread=True,
                      question=question)  # fmt: skip
        if rng.random() > 0.75:
            return [opener]
        replied = at + timedelta(minutes=rng.expovariate(1 / 150))
        other = f"member-{seed}-{rng.randrange(members)}"
        item = f"{int(replied.timestamp())}.{rng.randrange(10**6):06d}" if platform == "slack" else "2"
        reply = make(kind, other, platform, replied, channel=channel, thread=thread, item=item, is_reply=True,
                     opens_thread=False, question=False)  # fmt: skip
        return [opener, reply]
    if roll < 0.8:
        kind = "message" if platform != "discourse" else "post"
        return [make(kind, member, platform, at, channel=channel, is_reply=False, opens_thread=False, question=False)]
    return [make("reaction", member, platform, at, channel=channel)]


def _extras(
    rng: random.Random, make: Any, member: str, joined: datetime, start: datetime, span: int, last: datetime | None
) -> Iterator[ActivityRecord]:
    end = start + timedelta(seconds=span)
    if rng.random() < 0.03:
        opened = start + timedelta(seconds=rng.random() * span)
        ticket = f"Z{rng.randrange(10**7)}"
        category = rng.choice(CATEGORIES)
        yield make("ticket_opened", member, "zendesk", opened, ticket=ticket, category=category)
        replied = opened + timedelta(minutes=rng.expovariate(1 / 180))
        if replied < end:
            yield make("ticket_first_reply", member, "zendesk", replied, ticket=ticket, category=category)
        solved = replied + timedelta(hours=rng.expovariate(1 / 30))
        if solved < end:
            yield make("ticket_solved", member, "zendesk", solved, ticket=ticket, category=category)
    if rng.random() < 0.06:
        week = rng.randrange(int(span / 604800))
        meetup = start + timedelta(weeks=week, days=3, hours=18)
        event = f"meetup-{meetup:%Y-%m-%d}"
        yield make("registration", member, "eventbrite", meetup - timedelta(days=2), event=event)
        yield make("attended" if rng.random() < 0.62 else "no_show", member, "eventbrite", meetup, event=event)
    if last is not None and rng.random() < 0.04 and (end - last) > timedelta(days=14):
        contact = last + timedelta(days=20)
        if contact < end:
            variant = "holdout" if rng.random() < 0.2 else "treatment"
            kind = "winback_holdout" if variant == "holdout" else "winback_contacted"
            yield make(kind, member, "mailchimp", contact, campaign="quiet-members", tier="regular", variant=variant)


def _pick(rng: random.Random, weights: tuple[tuple[str, float], ...]) -> str:
    roll, total = rng.random(), 0.0
    for name, weight in weights:
        total += weight
        if roll < total:
            return name
    return weights[-1][0]


def write(root: Path, records: Iterator[ActivityRecord], key: bytes, *, name: str = "history") -> dict[str, int]:
    """The records under `root` as the S3 adapter lays them out (one file per day); records per day."""
    by_day: dict[str, list[ActivityRecord]] = defaultdict(list)
    for record in records:
        by_day[record.day].append(record)
    for day, day_records in by_day.items():
        folder = root / PREFIX / f"dt={day}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}{EXTENSION}").write_bytes(encode_object(day_records, key))
    return {day: len(day_records) for day, day_records in sorted(by_day.items())}


def upload(s3: Any, bucket: str, records: Iterator[ActivityRecord], key: bytes, *, name: str = "history") -> int:
    """The records into a bucket (the local stack's), one object per day; how many."""
    by_day: dict[str, list[ActivityRecord]] = defaultdict(list)
    for record in records:
        by_day[record.day].append(record)
    for day, day_records in by_day.items():
        s3.put_object(Bucket=bucket, Key=f"{PREFIX}/dt={day}/{name}{EXTENSION}", Body=encode_object(day_records, key))
    return sum(len(day_records) for day_records in by_day.values())
