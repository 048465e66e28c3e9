"""Win-back writes the contacts and holdouts the health report's lift figure reads: one record per campaign, run day
and member, the tier and variant with it; a run interrupted and resumed adds no second record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from tests.support.winback import FakeBulkTags, MemoryWinbackStore

from memberflow import activity
from memberflow.winback.assignment import HOLDOUT
from memberflow.winback.run import run_campaign
from support.fakes import MemoryActivityLog
from unit.test_winback_domain import TODAY, campaign, deps

AT = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)


def test_contacts_and_holdouts_reach_the_activity_log_with_tier_and_variant() -> None:
    store, tags, log = MemoryWinbackStore(), FakeBulkTags(), MemoryActivityLog()
    for i in range(400):
        store.add(f"m{i:03}", TODAY - timedelta(days=30 if i % 2 else 60))
    wb = campaign(variants=[{"name": "a", "share": 1}, {"name": "b", "share": 1}])
    run_campaign(wb, TODAY, deps(store, tags, activity=log, clock=lambda: AT))

    by_member = {record.member: record for record in log.buffered}
    assert len(by_member) == len(log.buffered) == len(store.records_by_key)
    contacted = {m for m, r in by_member.items() if r.kind == activity.WINBACK_CONTACTED}
    held_out = {m for m, r in by_member.items() if r.kind == activity.WINBACK_HOLDOUT}
    assert {f"{m}@example.org" for m in contacted} == tags.tagged()
    assert held_out == {m for (_, _, m), r in store.records_by_key.items() if r["group"] == HOLDOUT}
    assert {r.variant for m, r in by_member.items() if m in contacted} == {"a", "b"}
    assert {r.variant for m, r in by_member.items() if m in held_out} == {HOLDOUT}
    assert {(r.campaign, r.tier, r.ts) for r in log.buffered} == {("winback", "30", AT), ("winback", "60", AT)}


@pytest.mark.parametrize("crash", ["records", "tags"])
def test_a_resumed_run_adds_no_second_record(crash: str) -> None:
    store, tags, log = MemoryWinbackStore(), FakeBulkTags(), MemoryActivityLog()
    for i in range(1300):
        store.add(f"m{i:04}", TODAY - timedelta(days=30))
    wb = campaign()
    if crash == "records":
        store.crash_after_records = 700
    else:
        tags.crash_after_calls = 1
    with pytest.raises(RuntimeError, match="crash"):
        run_campaign(wb, TODAY, deps(store, tags, page_size=200, activity=log))
    store.crash_after_records, tags.crash_after_calls = None, None
    run_campaign(wb, TODAY, deps(store, tags, page_size=200, activity=log))

    ids = {record.id: record for record in log.buffered}
    assert len({(r.member, r.kind) for r in ids.values()}) == len(store.records_by_key)
    assert {r.member for r in ids.values() if r.kind == activity.WINBACK_CONTACTED} == {
        email.removesuffix("@example.org") for email in tags.tagged()
    }
