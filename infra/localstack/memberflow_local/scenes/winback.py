"""The win-back scene: a seeded community of 2,500+ members with varied activity (some unsubscribed or cleaned,
some still in onboarding, some contacted recently, a few staff), the preview, the daily run, some members coming
back, and the results; then Mailchimp is read back through the official client: the win-back tags sit exactly on
the contacted members, on no holdout and no excluded member.

The community is seeded straight into moto (BatchWriteItem, 25 profiles a call) and the sandbox's state, as the
member store and Mailchimp would hold it after months of onboarding: replaying 2,500 joins over HTTP would take
minutes and show nothing new. Seeding helpers are shared with the integration tests and the benchmark."""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import SceneContext

PREVIEW_FUNCTION = "WinbackPreviewFunction"
CAMPAIGN = "winback"
SEEDED = "seeded-by-demo-scene"
"""The `last_correlation_id` of the profiles this scene seeds: no event brought them, so the demo's summary of the
scenario's members leaves them out."""


@dataclass
class SeedMember:
    member_id: str
    email: str
    active_day: date
    mailchimp_status: str = "subscribed"
    in_drip: bool = False
    staff: bool = False
    winback_history: list[date] = field(default_factory=list)

    def ledger_item(self) -> dict[str, Any]:
        """Their consent ledger's entry, as their join onboarded them: consent given (subscribed), none
        (transactional), or Mailchimp's opt-out kept (unsubscribed, cleaned)."""
        from memberflow.adapters.consent_ledger import item_from_entry
        from memberflow.ledger import Change, ConsentEntry

        joined = datetime.combine(self.active_day, datetime.min.time(), UTC) - timedelta(days=30)
        change, platform, detail = {
            "subscribed": (Change.GIVEN, "discourse", "consent given, on an address the platform verified"),
            "transactional": (Change.NOT_GIVEN, "discourse", "no marketing consent from the platform"),
        }.get(self.mailchimp_status, (Change.WITHDRAWN, "mailchimp", f"{self.mailchimp_status} in Mailchimp"))
        entry = ConsentEntry(
            self.member_id,
            change,
            platform,
            "member_joined",
            f"{SEEDED}:{self.member_id}",
            joined,
            self.mailchimp_status,
            detail,
        )
        return item_from_entry(entry)

    def profile_item(self) -> dict[str, Any]:
        from memberflow.adapters.active_days import active_day_key
        from memberflow.adapters.due_work import DUE_ATTRIBUTE, QUEUE_ATTRIBUTE, QUEUES

        active_at = datetime.combine(self.active_day, datetime.min.time(), UTC) + timedelta(hours=12)
        item: dict[str, Any] = {
            "pk": f"MEMBER#{self.member_id}",
            "sk": "PROFILE",
            "member_id": self.member_id,
            "email": self.email,
            "joined_at": (active_at - timedelta(days=30)).isoformat(),
            "platforms": {"discourse"},
            "identities": {f"discourse:forum:{self.member_id[:12]}"},
            "marketing_consent": True,
            "mailchimp_status": self.mailchimp_status,
            "opted_out_before": self.mailchimp_status in ("unsubscribed", "cleaned"),
            "journey_started_at": (active_at - timedelta(days=30)).isoformat(),
            "activated_at": active_at.isoformat(),
            "last_active_at": active_at.isoformat(),
            "drip_steps_sent": 1 if self.in_drip else 3,
            "active_day": active_day_key(self.member_id, self.active_day),
            "last_correlation_id": SEEDED,
        }
        if self.in_drip:
            item.pop("activated_at")
            item[QUEUE_ATTRIBUTE] = QUEUES["drip"].index_value
            item[DUE_ATTRIBUTE] = (active_at + timedelta(days=40)).isoformat()
        if self.staff:
            item["staff"] = True
        if self.winback_history:
            item["winback_history"] = [day.isoformat() for day in self.winback_history]
        return item


def community(size: int, today: date, *, seed: int = 7, crossing_share: float | None = None) -> list[SeedMember]:
    """`size` members with varied activity. Without `crossing_share`: a quarter crossed a tier today (30, 60 or
    90 days), the others' last activity is spread over 120 days, with unsubscribed, cleaned, onboarding, staff and
    recently contacted members among them. With it: exactly that share crossed the 30-day threshold today and the
    rest were active within the last 29 days or crossed it earlier (a benchmark's community)."""
    from memberflow.privacy import email_key

    rng = random.Random(seed)
    members = []
    crossing = round(size * crossing_share) if crossing_share is not None else 0
    for i in range(size):
        email = f"member{i:06}@example.org"
        member_id = email_key(email)
        if crossing_share is not None:
            # Nobody else is on a threshold today (30, 60 or 90 days).
            inactive = 30 if i < crossing else rng.choice([d for d in range(0, 400) if d not in (30, 60, 90)])
            members.append(SeedMember(member_id, email, today - timedelta(days=inactive)))
            continue
        # A quarter are cohorts that went quiet together (after an event 30, 60 or 90 days ago): they cross a tier
        # today; the rest were last active on any of the last 120 days.
        inactive = rng.choice((30, 60, 90)) if rng.random() < 0.25 else rng.randrange(0, 120)
        member = SeedMember(member_id, email, today - timedelta(days=inactive))
        roll = rng.random()
        if roll < 0.08:
            member.mailchimp_status = "unsubscribed"
        elif roll < 0.11:
            member.mailchimp_status = "cleaned"
        elif roll < 0.14:
            member.mailchimp_status = "transactional"
        elif roll < 0.16:
            member.in_drip = True
        elif roll < 0.17:
            member.staff = True
        elif roll < 0.27:
            member.winback_history = [today - timedelta(days=rng.randrange(5, 40))]
        members.append(member)
    return members


def seed(ddb: Any, table_name: str, members: Iterable[SeedMember]) -> int:
    """Write the members' profiles straight into the members table, 25 a call; how many."""
    from boto3.dynamodb.types import TypeSerializer

    serialize = TypeSerializer().serialize
    batch: list[dict[str, Any]] = []
    count = 0

    def flush() -> None:
        pending = {table_name: batch[:]}
        while pending:
            pending = ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
        batch.clear()

    for member in members:
        for stored in (member.profile_item(), member.ledger_item()):
            item = {key: serialize(value) for key, value in stored.items()}
            batch.append({"PutRequest": {"Item": item}})
            if len(batch) == 25:
                flush()
        count += 1
    if batch:
        flush()
    return count


def seed_audience(state: Any, list_id: str, members: Iterable[SeedMember]) -> None:
    """The members in the sandbox audience with the status the member store has for them."""
    for member in members:
        status = member.mailchimp_status if member.mailchimp_status != "transactional" else "transactional"
        state.seed_member(list_id, member.email, status)


def tag_members(client: Any, list_id: str, tags: Iterable[str]) -> dict[str, set[str]]:
    """Tag -> addresses carrying it, read through the official client (the segments' member lists, paged)."""
    segments = {s["name"]: s["id"] for s in client.lists.list_segments(list_id, type="static", count=1000)["segments"]}
    found: dict[str, set[str]] = {}
    for tag in tags:
        found[tag] = set()
        if tag not in segments:
            continue
        offset = 0
        while True:
            page = client.lists.get_segment_members_list(list_id, str(segments[tag]), count=1000, offset=offset)
            found[tag].update(m["email_address"].lower() for m in page["members"])
            offset += 1000
            if offset >= page["total_items"]:
                break
    return found


def play(scene: SceneContext) -> None:
    import json
    import time

    import mailchimp_marketing

    from memberflow.adapters.member_profiles import DynamoMemberRepository
    from memberflow.adapters.winback_store import DynamoWinbackStore
    from memberflow.winback.assignment import HOLDOUT

    began = time.perf_counter()
    stack, settings = scene.stack, scene.settings
    today = scene.started_at.date()
    table_name = stack.table_name("MembersTable")
    members = community(2600, today)
    scene.say(f"Seeding a community of {len(members):,} members with varied activity ...")
    seed(stack.client("dynamodb"), table_name, members)
    seed_audience(stack.mailchimp.state, settings.mailchimp_list_id, members)
    by_email = {m.email: m for m in members}
    statuses: dict[str, int] = {}
    for m in members:
        statuses[m.mailchimp_status] = statuses.get(m.mailchimp_status, 0) + 1
    scene.say(
        "  "
        + ", ".join(f"{n:,} {status}" for status, n in sorted(statuses.items()))
        + f"; {sum(m.in_drip for m in members)} in onboarding, {sum(m.staff for m in members)} staff, "
        f"{sum(bool(m.winback_history) for m in members)} contacted recently"
    )

    now = datetime.combine(today, datetime.min.time(), UTC) + timedelta(hours=6)
    tag_events = stack.mailchimp.state.audience(settings.mailchimp_list_id).tag_events
    tags_before = len(tag_events)
    preview = stack.invoke(PREVIEW_FUNCTION, _preview_request(CAMPAIGN, today))
    shown = json.loads(preview["body"])
    counts = shown["counts"]
    scene.say(
        f"Preview ({shown['campaign']}, nobody contacted): {counts['contacted']} to contact, "
        f"{counts['held_out']} held out, {counts['excluded']} excluded "
        f"({', '.join(f'{n} {why}' for why, n in sorted(shown['excluded_by_reason'].items()))})"
    )
    scene.check(
        preview["statusCode"] == 200 and len(tag_events) == tags_before,
        "the preview lists who would be contacted, held out and excluded, and contacts nobody",
    )

    answer = stack.fire_schedule("WinbackSchedule", at=now)
    (report,) = answer["runs"]
    scene.say(
        f"Daily run: {report['contacted']} tagged in {report['tag_calls']} Mailchimp calls, {report['held_out']} "
        f"held out, {sum(report['excluded'].values())} excluded; results at {report['results_location']}"
    )
    scene.check(
        report["completed"] and report["contacted"] == counts["contacted"] and report["held_out"] == counts["held_out"],
        "the run contacts and holds out exactly the members the preview named",
    )

    store = DynamoWinbackStore(table_name)
    records = list(store.records(CAMPAIGN, today))
    contacted = {r.member_id for r in records if r.group != HOLDOUT and r.status == "tagged"}
    held_out = {r.member_id for r in records if r.group == HOLDOUT}

    # Some come back: a third of the contacted, a tenth of the holdout, within the next two weeks.
    repository = DynamoMemberRepository(table_name)
    rng = random.Random(11)
    returned = 0
    for member_id in sorted(contacted):
        if rng.random() < 0.33:
            returned += repository.mark_active(member_id, now + timedelta(days=rng.randrange(1, 14)))
    for member_id in sorted(held_out):
        if rng.random() < 0.10:
            returned += repository.mark_active(member_id, now + timedelta(days=rng.randrange(1, 14)))
    scene.say(f"{returned} of them post again within two weeks")

    # Results as the campaign's file says them, and the same as `memberflow winback results` prints them.
    from memberflow.adapters.winback_store import S3ResultsStore
    from memberflow.winback.run import write_results
    from memberflow_cli.winback import campaign_file, results_table

    campaign = campaign_file().get(CAMPAIGN)
    results_store = S3ResultsStore(stack.physical["WinbackResultsBucket"].ref)
    write_results(campaign, today + timedelta(days=15), store, results_store)
    results = results_store.get(CAMPAIGN)
    assert results is not None
    for line in results_table(results).splitlines():
        scene.say(line)
    tier = results["tiers"][0]
    held = next(g for g in tier["groups"] if g["variant"] == HOLDOUT)
    variants = [g for g in tier["groups"] if g["variant"] != HOLDOUT]
    scene.check(
        all(g["lift_14d"]["difference"] is not None and g["lift_14d"]["ci95"] for g in variants)
        and held["held_out"] > 0,
        "the results give, per tier and variant, the 14- and 30-day reactivation and the lift against the holdout"
        " with its 95% confidence interval",
    )

    # Mailchimp, through the official client: the tags sit exactly on the contacted members.
    client = mailchimp_marketing.Client()
    client.set_config({"api_key": settings.mailchimp_api_key})
    client.api_client.host = stack.mailchimp.url
    all_tags = [tag for tier_ in campaign.tiers for tag in campaign.tier_tags(tier_).values()]
    tagged = set().union(*tag_members(client, settings.mailchimp_list_id, all_tags).values())
    contacted_emails = {m.email for m in members if m.member_id in contacted}
    held_emails = {m.email for m in members if m.member_id in held_out}
    excluded = {
        m.email
        for m in members
        if m.mailchimp_status != "subscribed"
        or m.in_drip
        or m.staff
        or any((today - day).days < campaign.cooldown_days for day in m.winback_history)
    }
    scene.say(
        f"Mailchimp (official client): {len(tagged)} members carry a win-back tag; {len(contacted_emails)} were "
        f"contacted, {len(held_emails)} held out"
    )
    scene.check(
        tagged == contacted_emails and not tagged & held_emails and not tagged & excluded,
        "Mailchimp holds the win-back tags exactly on the contacted members: none on the holdout, none on an "
        "unsubscribed, cleaned, onboarding, staff or recently contacted (still in the cooldown) member",
    )
    unsubscribed_tagged = [e for e in tagged if by_email[e].mailchimp_status in ("unsubscribed", "cleaned")]
    scene.check(not unsubscribed_tagged, "no unsubscribed or cleaned member is tagged")
    elapsed = time.perf_counter() - began
    scene.say(f"(seeded, previewed, run and read back in {elapsed:.0f} s)")


def _preview_request(campaign: str, day: date) -> dict[str, Any]:
    """An HTTP API (payload 2.0) request of an IAM-authenticated caller for the preview."""
    return {
        "version": "2.0",
        "routeKey": "GET /winback/preview",
        "rawPath": "/winback/preview",
        "queryStringParameters": {"campaign": campaign, "day": day.isoformat(), "limit": "20"},
        "requestContext": {"http": {"method": "GET", "path": "/winback/preview"}, "authorizer": {"iam": {}}},
    }
