"""What a bulk import records in the activity log: one `imported` record per member it stores (when memberflow learnt
of them, whatever their join date), so the health report never counts an imported member as new: not in the import's
week, and not when they later join a second platform."""

from __future__ import annotations

from datetime import UTC, datetime

from memberflow.activity import IMPORTED, ActivityRecord
from memberflow.events import ImportedMember
from memberflow.health import figures
from memberflow.health.queries import Period
from memberflow.members import member_id_for
from memberflow.models import MemberIdentity, Platform
from memberflow.onboarding.imports import ImportDeps, import_chunk
from memberflow.onboarding.rules import OnboardingRules, WelcomeJourney
from memberflow_local.health import DuckDBEngine
from support.fakes import (
    FakeBulkMailingList,
    MemoryActivityLog,
    MemoryDueWork,
    MemoryLedger,
    MemoryMembers,
    MemorySuppressions,
    MemoryTrace,
)
from support.health_seed import rec, write_log

NOW = datetime(2026, 10, 5, 12, tzinfo=UTC)  # the import: six weeks before the report week 2026-W47


def imported(n: int, *, platform: str = "slack", email: bool = True, joined: datetime | None = None) -> ImportedMember:
    return ImportedMember(
        identity=MemberIdentity(platform=Platform(platform), workspace="T1", user_id=f"U{n}"),
        email=f"m{n}@example.org" if email else None,
        name=f"Member {n}",
        joined_at=joined,
        marketing_consent=True,
        email_verified=True,
    )


def deps(log: MemoryActivityLog | None) -> ImportDeps:
    audience, members = FakeBulkMailingList(), MemoryMembers()
    return ImportDeps(
        bulk=audience,
        mailing_list=audience,
        members=members,
        due_work=MemoryDueWork(members),
        trace=MemoryTrace(),
        suppressions=MemorySuppressions(),
        rules=OnboardingRules(list_id="list1", welcome_journey=WelcomeJourney("j1", "s1")),
        ledger=MemoryLedger(members),
        clock=lambda: NOW,
        activity=log,
    )


def test_an_import_records_each_member_it_stores_as_imported_once():
    log = MemoryActivityLog()
    people = [
        imported(1),  # Slack: no join date
        imported(2, platform="discourse", joined=datetime(2019, 3, 1, tzinfo=UTC)),  # a veteran of 2019
        imported(3, email=False),  # stored without an address
    ]
    world = deps(log)
    import_chunk(people, world, correlation_id="import-1")

    assert [record.kind for record in log.buffered] == [IMPORTED] * 3
    assert [(r.member, r.platform, r.workspace, r.ts) for r in log.buffered] == [
        (member_id_for(p.identity, p.email), p.identity.platform.value, "T1", NOW) for p in people
    ]
    # A re-run leaves the members it already handed to Mailchimp alone, and records nothing for them.
    log.buffered.clear()
    again = import_chunk(people[:2], world, correlation_id="import-2")
    assert again.unchanged == 2 and log.buffered == []


def test_no_activity_log_no_record():
    assert import_chunk([imported(1)], deps(None), correlation_id="import-1").written == 1


def test_an_imported_member_who_joins_a_second_platform_is_no_new_member(tmp_path):
    log = MemoryActivityLog()
    veteran, newcomer = imported(1), imported(2)
    import_chunk([veteran], deps(log), correlation_id="import-1")
    # In W47 the veteran joins Discourse under the same address; someone else joins Slack for the first time.
    joins: list[ActivityRecord] = [
        rec("joined", member_id_for(veteran.identity, veteran.email), "discourse", "2026-11-17T09:00"),
        rec("joined", member_id_for(newcomer.identity, newcomer.email), "slack", "2026-11-18T09:00"),
    ]
    engine = DuckDBEngine(write_log(tmp_path, [*log.buffered, *joins]))
    try:
        week = figures.compute(engine, Period.parse("2026-W47"), only=("activation", "cohorts"))
        import_week = figures.compute(engine, Period.week_of(NOW.date()), only=("activation",))
    finally:
        engine.close()
    assert week["activation"]["all"]["new_members"] == 1
    assert [(c["week"], c["size"]) for c in week["cohorts"]["all"]] == [("2026-11-16", 1)]
    assert import_week["activation"] == {}  # the import's own week: nobody new
