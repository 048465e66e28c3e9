"""Win-back's rules on in-memory ports: campaign files, selection and exclusions, assignment, the bulk run with its
checkpoint, and the results."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta

import pytest
from tests.support.winback import FakeBulkTags, MemoryResults, MemoryWinbackStore

from memberflow import activity
from memberflow.bulk import refusal_from
from memberflow.errors import RateLimited, Transient
from memberflow.winback.assignment import HOLDOUT, assign
from memberflow.winback.campaign import CampaignError, parse_campaigns
from memberflow.winback.preview import preview
from memberflow.winback.results import lift
from memberflow.winback.run import WinbackDeps, run_campaign, write_results
from support.fakes import MemoryActivityLog

TODAY = date(2026, 11, 30)


def campaign_file(**overrides: object) -> str:
    campaign = {
        "id": "winback",
        "tiers": [
            {"days": 30, "tag": "winback-30"},
            {"days": 60, "tag": "winback-60"},
            {"days": 90, "tag": "winback-90"},
        ],
        "cooldown_days": 30,
        "max_contacts_per_quarter": 1,
        "holdout_share": 0.1,
        **overrides,
    }
    return json.dumps({"version": 1, "campaigns": [campaign]})


def campaign(**overrides: object):  # type: ignore[no-untyped-def]
    return parse_campaigns(campaign_file(**overrides)).get("winback")


def deps(store: MemoryWinbackStore, tags: FakeBulkTags, **options: object) -> WinbackDeps:
    options.setdefault("sleep", lambda seconds: None)
    return WinbackDeps(store, tags, MemoryResults(), "list1", **options)  # type: ignore[arg-type]


# -- campaign files ------------------------------------------------------------------------------------------------


def selections_per_tier(wb, quiet_since: date, days: int = 100) -> dict[int, int]:  # type: ignore[no-untyped-def]
    """100 members who go quiet on the same day and stay quiet, a daily run for `days`: selections per tier."""
    store, tags = MemoryWinbackStore(), FakeBulkTags()
    for i in range(100):
        store.add(f"m{i}", quiet_since)
    for day in range(days):
        run_campaign(wb, quiet_since + timedelta(days=day), deps(store, tags))
    found: dict[int, int] = {}
    for record in store.records_by_key.values():
        found[record["tier_days"]] = found.get(record["tier_days"], 0) + 1
    return found


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"tiers": [{"days": 30, "tag": "bad/tag"}]}, "campaigns.0.tiers.0.tag"),
        ({"holdout_share": 1.5}, "campaigns.0.holdout_share"),
        ({"cooldown_days": 7}, "campaigns.0.cooldown_days"),
        ({"tiers": []}, "campaigns.0.tiers"),
        (
            {"tiers": [{"days": 60, "tag": "a"}, {"days": 30, "tag": "b"}]},
            "tiers: days must be distinct and increasing",
        ),
        ({"variants": [{"name": "a", "share": 0.5}]}, "variants: give none, or at least two"),
        ({"variants": [{"name": "a", "share": 0}, {"name": "b", "share": 1}]}, "campaigns.0.variants.0.share"),
        ({"colour": "red"}, "campaigns.0.colour"),
        ({"id": "Win Back"}, "campaigns.0.id"),
    ],
)
def test_a_bad_campaign_file_fails_loudly_naming_the_field(overrides: dict, field: str) -> None:
    with pytest.raises(CampaignError, match=field.replace(".", r"\.")):
        parse_campaigns(campaign_file(**overrides), "campaigns.json")


def test_the_file_format_version_and_json_are_checked() -> None:
    with pytest.raises(CampaignError, match="version"):
        parse_campaigns(json.dumps({"version": 2, "campaigns": []}))
    with pytest.raises(CampaignError, match="not valid JSON"):
        parse_campaigns("{")
    with pytest.raises(CampaignError, match="no campaign 'other'"):
        parse_campaigns(campaign_file()).get("other")


def test_the_shipped_campaign_file_is_valid() -> None:
    from pathlib import Path

    text = (Path(__file__).parents[2] / "functions" / "winback" / "campaigns.json").read_text()
    assert parse_campaigns(text).campaigns


@pytest.mark.parametrize(
    ("tiers", "cooldown", "named"),
    [
        # 90 is reached 60 days after the selection at 30: only 60 is unreachable.
        ([30, 60, 90], 45, ["the 60-day tier (winback-60) comes 30 days after the 30-day tier (winback-30)"]),
        ([30, 40, 50, 100], 30, ["the 40-day tier", "the 50-day tier (winback-50) comes 20 days after the 30-day"]),
        ([30, 90, 100], 30, ["the 100-day tier (winback-100) comes 10 days after the 90-day tier (winback-90)"]),
    ],
)
def test_tiers_closer_than_the_cooldown_are_refused_naming_the_unreachable_tier(
    tiers: list[int], cooldown: int, named: list[str]
) -> None:
    with pytest.raises(CampaignError, match=r"campaigns\.0: .*closer than cooldown_days") as refused:
        parse_campaigns(
            campaign_file(tiers=[{"days": d, "tag": f"winback-{d}"} for d in tiers], cooldown_days=cooldown),
            "campaigns.json",
        )
    for text in named:
        assert text in str(refused.value)
    if tiers == [30, 60, 90]:
        assert "90-day tier" not in str(refused.value)


def test_tiers_as_far_apart_as_the_cooldown_are_each_reached_by_a_member_who_stays_quiet() -> None:
    wb = campaign(holdout_share=0.0, cooldown_days=30, max_contacts_per_quarter=3)
    assert selections_per_tier(wb, date(2026, 1, 5)) == {30: 100, 60: 100, 90: 100}


@pytest.mark.parametrize("quiet_since", [date(2026, 1, 5), date(2026, 2, 20), date(2026, 3, 31), date(2026, 12, 31)])
def test_every_tier_of_the_shipped_campaign_file_is_reached_by_a_member_who_stays_quiet(quiet_since: date) -> None:
    from pathlib import Path

    text = (Path(__file__).parents[2] / "functions" / "winback" / "campaigns.json").read_text()
    wb = parse_campaigns(text).get("winback")
    found = selections_per_tier(wb, quiet_since, days=max(t.days for t in wb.tiers) + 10)
    assert found == {tier.days: 100 for tier in wb.tiers}


# -- assignment ----------------------------------------------------------------------------------------------------


def test_assignment_is_stable_and_follows_the_shares() -> None:
    ab = campaign(variants=[{"name": "a", "share": 1}, {"name": "b", "share": 3}])
    groups = [assign(f"m{i}", ab) for i in range(20000)]
    assert groups == [assign(f"m{i}", ab) for i in range(20000)]  # same answer on every re-run
    share = {g: groups.count(g) / len(groups) for g in set(groups)}
    assert abs(share[HOLDOUT] - 0.10) < 0.01
    assert abs(share["a"] - 0.225) < 0.015 and abs(share["b"] - 0.675) < 0.015
    # Another campaign draws its own holdout.
    other = parse_campaigns(campaign_file(id="other")).get("other")
    assert [assign(f"m{i}", other) for i in range(2000)] != groups[:2000]


def test_holdout_members_are_recorded_not_contacted_and_stay_held_out_across_runs() -> None:
    store, tags = MemoryWinbackStore(), FakeBulkTags()
    wb = campaign()
    for i in range(400):
        store.add(f"m{i}", TODAY - timedelta(days=30))
    run_campaign(wb, TODAY, deps(store, tags))
    holdout = {m for (_, _, m), r in store.records_by_key.items() if r["group"] == HOLDOUT}
    assert 20 < len(holdout) < 70
    assert not {f"{m}@example.org" for m in holdout} & tags.tagged()
    # They cross the next tier later: same assignment, still not contacted.
    for day in range(1, 61):
        run_campaign(wb, TODAY + timedelta(days=day), deps(store, tags))
    later = {m for (_, d, m), r in store.records_by_key.items() if r["group"] == HOLDOUT and d != TODAY.isoformat()}
    assert later == holdout
    assert not {f"{m}@example.org" for m in holdout} & tags.tagged()


# -- exclusions ----------------------------------------------------------------------------------------------------


def test_no_unsubscribed_cleaned_or_otherwise_excluded_member_is_ever_tagged() -> None:
    store, tags = MemoryWinbackStore(), FakeBulkTags()
    crossed = TODAY - timedelta(days=30)
    excluded = {
        "unsub": {"mailchimp_status": "unsubscribed"},
        "cleaned": {"mailchimp_status": "cleaned"},
        "optedout": {"opted_out_before": True},
        "pending": {"mailchimp_status": "pending"},
        "transactional": {"mailchimp_status": "transactional"},
        "noemail": {"email": None},
        "drip": {"in_drip": True},
        "bot": {"staff": True},
        "staffid": {},
        "nowinback": {"winback_opt_out": True},
    }
    for name, fields in excluded.items():
        for i in range(30):
            store.add(f"{name}{i}", crossed, **fields)
    for i in range(100):
        store.add(f"ok{i}", crossed)
    wb = campaign(exclusions={"staff_member_ids": [f"staffid{i}" for i in range(30)]})
    report = run_campaign(wb, TODAY, deps(store, tags))
    assert all(email.startswith("ok") for email in tags.tagged())
    assert report.excluded == {
        "unsubscribed": 90, "not_subscribed": 60, "no_address": 30, "in_onboarding": 30,
        "staff_or_bot": 60, "opted_out_of_winback": 30,
    }  # fmt: skip
    assert report.contacted + report.held_out == 100
    assert {r["member_id"][:2] for r in store.records_by_key.values()} == {"ok"}


def test_cooldown_and_quarterly_cap_hold_across_repeated_daily_runs() -> None:
    store, tags = MemoryWinbackStore(), FakeBulkTags()
    # Members who went quiet on different days cross 30, 90 and 150 days in turn; every 40 days a third of them
    # post once and go quiet again, so they cross the 30-day tier again, some within the cooldown.
    for i in range(300):
        store.add(f"m{i}", TODAY - timedelta(days=25 + i % 40))
    wb = campaign(
        holdout_share=0.0,
        tiers=[{"days": 30, "tag": "winback-30"}, {"days": 90, "tag": "winback-90"}, {"days": 150, "tag": "wb-150"}],
        cooldown_days=45,
        max_contacts_per_quarter=1,
    )
    excluded: dict[str, int] = {}
    for day in range(0, 200):
        today = TODAY + timedelta(days=day)
        if day and day % 40 == 0:
            for i in range(day // 40 % 3, 300, 3):
                store.activity(f"m{i}", datetime.combine(today, datetime.min.time(), UTC))
        report = run_campaign(wb, today, deps(store, tags))
        for reason, n in report.excluded.items():
            excluded[reason] = excluded.get(reason, 0) + n
    per_member: dict[str, list[date]] = {}
    for (_, day, member), _record in store.records_by_key.items():
        per_member.setdefault(member, []).append(date.fromisoformat(day))
    for days in per_member.values():
        days.sort()
        assert all(b - a >= timedelta(days=45) for a, b in zip(days, days[1:], strict=False))
        quarters = [(d.year, (d.month - 1) // 3) for d in days]
        assert len(quarters) == len(set(quarters))
    # Each contact is one tag-added event; a member selected again for a tag they got before had it removed first.
    assert len(tags.tag_added) == len(store.contacted())
    assert len(tags.tag_added) - len(set(tags.tag_added)) == len(tags.tag_removed)
    # The rules were exercised, not vacuous.
    assert max(len(days) for days in per_member.values()) >= 2
    assert excluded.get("cooldown", 0) > 0 and excluded.get("quarterly_cap", 0) > 0


def test_a_member_active_again_is_not_selected() -> None:
    store, tags = MemoryWinbackStore(), FakeBulkTags()
    store.add("back", TODAY - timedelta(days=30))
    store.activity("back", datetime(2026, 11, 29, tzinfo=UTC))
    run_campaign(campaign(), TODAY, deps(store, tags))
    assert not store.records_by_key and not tags.calls


# -- the bulk run --------------------------------------------------------------------------------------------------


def test_calls_stay_within_ceil_of_contacted_over_500_plus_one_per_tag() -> None:
    store, tags = MemoryWinbackStore(), FakeBulkTags()
    for i in range(5000):
        store.add(f"m{i:05}", TODAY - timedelta(days=30 if i % 2 else 60))
    wb = campaign(variants=[{"name": "a", "share": 1}, {"name": "b", "share": 1}])
    report = run_campaign(wb, TODAY, deps(store, tags, page_size=100))
    assert report.completed and report.contacted == len(tags.tagged()) == len(store.contacted())
    assert all(size <= 500 for _, size in tags.calls)
    used_tags = {tag for tag, _ in tags.calls}
    assert len(tags.calls) <= math.ceil(report.contacted / 500) + len(used_tags)
    assert store.items_read == 5000  # one item read per candidate


def test_per_member_refusals_are_recorded_and_do_not_fail_the_run() -> None:
    store, tags = MemoryWinbackStore(), FakeBulkTags()
    for i in range(50):
        store.add(f"m{i}", TODAY - timedelta(days=30))
    wb = campaign(holdout_share=0.0)
    tags.refuse = {"m3@example.org": refusal_from("ERROR_GENERIC", "m3@example.org is in a compliance state")}
    report = run_campaign(wb, TODAY, deps(store, tags))
    assert report.completed and report.refused == 1 and report.contacted == 49
    refused = store.records_by_key[("winback", TODAY.isoformat(), "m3")]
    assert refused["status"] == "refused" and refused["refusal"].startswith("compliance_state: ERROR_GENERIC")
    assert "m3@example.org" not in refused["refusal"]


def quiet_again(store: MemoryWinbackStore, member_id: str, back: date) -> None:
    """The member posts once on `back` and is quiet from then on."""
    store.activity(member_id, datetime.combine(back, datetime.min.time(), UTC))


def test_a_member_selected_again_for_a_tag_they_got_before_is_tagged_anew_and_mailed_again() -> None:
    store, tags, results = MemoryWinbackStore(), FakeBulkTags(), MemoryResults()
    wb = campaign(holdout_share=0.0, tiers=[{"days": 30, "tag": "winback-30"}], cooldown_days=60)
    first = date(2026, 1, 31)
    store.add("m1", first - timedelta(days=30))
    store.add("m2", first - timedelta(days=30))
    assert run_campaign(wb, first, deps(store, tags)).contacted == 2
    # m1 comes back, then is quiet 30 days again: past the cooldown, in a new quarter, the tier selects them again.
    quiet_again(store, "m1", date(2026, 3, 10))
    second = date(2026, 4, 9)
    report = run_campaign(wb, second, WinbackDeps(store, tags, results, "list1", sleep=lambda seconds: None))
    # The tag was removed, then added: a second "tag added" event, so the journey mails them again.
    assert tags.tag_added == [
        ("winback-30", "m1@example.org"),
        ("winback-30", "m2@example.org"),
        ("winback-30", "m1@example.org"),
    ]
    assert tags.tag_removed == [("winback-30", "m1@example.org")]
    assert report.contacted == 1 and report.tags_cleared == 1 and report.untag_calls == 1
    assert "m1@example.org" in tags.segments["winback-30"]
    write_results(wb, second + timedelta(days=31), store, results)
    assert results.files["winback"]["tiers"][0]["groups"][0]["contacted"] == 3


def test_a_return_counts_for_its_selection_when_the_member_is_selected_again_before_its_window_closed() -> None:
    store, tags, results = MemoryWinbackStore(), FakeBulkTags(), MemoryResults()
    wb = campaign(holdout_share=0.0, tiers=[{"days": 30, "tag": "winback-30"}], max_contacts_per_quarter=3)
    store.add("m1", TODAY - timedelta(days=30))
    for day in range(31):  # back on the day of the contact, quiet again: selected again 30 days later
        run_campaign(wb, TODAY + timedelta(days=day), deps(store, tags))
        if day == 0:
            store.activity("m1", datetime.combine(TODAY, datetime.min.time(), UTC) + timedelta(hours=10))
    assert sorted(day for (_, day, _) in store.records_by_key) == [TODAY.isoformat(), "2026-12-30"]
    write_results(wb, TODAY + timedelta(days=31), store, results)
    (default, _held) = results.files["winback"]["tiers"][0]["groups"]
    assert default["contacted"] == 2 and default["measured_30d"] == 1 and default["reactivated_30d"] == 1


def test_a_member_mailchimp_added_no_tag_for_is_not_contacted() -> None:
    store, tags, log = MemoryWinbackStore(), FakeBulkTags(), MemoryActivityLog()
    wb = campaign(holdout_share=0.0)
    for name in ("ok", "gone", "tagged"):
        store.add(name, TODAY - timedelta(days=30))
    tags.not_in_audience = {"gone@example.org"}  # deleted from the audience by hand: Mailchimp ignores it
    tags.segments["winback-30"] = {"tagged@example.org"}  # tagged by hand, never selected by win-back
    results = MemoryResults()
    report = run_campaign(wb, TODAY, WinbackDeps(store, tags, results, "list1", activity=log))
    assert report.completed and report.contacted == 1 and report.not_tagged == 2 and report.refused == 0
    status = {member: record["status"] for (_, _, member), record in store.records_by_key.items()}
    assert status == {"ok": "tagged", "gone": "not_tagged", "tagged": "not_tagged"}
    assert store.records_by_key[("winback", TODAY.isoformat(), "gone")]["refusal"].startswith("Mailchimp added no tag")
    assert [record.member for record in log.buffered if record.kind == activity.WINBACK_CONTACTED] == ["ok"]
    write_results(wb, TODAY + timedelta(days=31), store, results)
    (default, _held) = results.files["winback"]["tiers"][0]["groups"]
    assert (default["contacted"], default["not_tagged"], default["refused"]) == (1, 2, 0)
    assert default["lift_30d"]["variant"]["n"] == 1


def test_a_tag_answer_lost_after_mailchimp_added_it_counts_the_member_once_on_resume() -> None:
    store, tags = MemoryWinbackStore(), FakeBulkTags()
    wb = campaign(holdout_share=0.0, tiers=[{"days": 30, "tag": "winback-30"}], cooldown_days=60)
    for i in range(10):
        store.add(f"m{i}", date(2026, 1, 1))
    assert run_campaign(wb, date(2026, 1, 31), deps(store, tags)).contacted == 10
    for i in range(10):
        quiet_again(store, f"m{i}", date(2026, 3, 10))
    # The run that selects them again: Mailchimp adds the tags, but the answer is lost (a timeout after it acted).
    tags.crash_after_tagging = True
    with pytest.raises(RuntimeError, match="crash"):
        run_campaign(wb, date(2026, 4, 9), deps(store, tags))
    report = run_campaign(wb, date(2026, 4, 9), deps(store, tags))
    # Each member's tag was removed once and added once in that run: one email each, and none twice.
    assert len(tags.tag_added) == 20 and len(set(tags.tag_added)) == 10 and len(tags.tag_removed) == 10
    assert report.completed and report.resumed_pending == 10 and report.contacted == 10 and report.not_tagged == 0
    assert report.tags_cleared == 0  # the resumed attempt left their tags alone


def test_a_crash_after_the_tags_were_removed_removes_them_again_harmlessly() -> None:
    store, tags = MemoryWinbackStore(), FakeBulkTags()
    wb = campaign(holdout_share=0.0, tiers=[{"days": 30, "tag": "winback-30"}], cooldown_days=60)
    for i in range(10):
        store.add(f"m{i}", date(2026, 1, 1))
    run_campaign(wb, date(2026, 1, 31), deps(store, tags))
    for i in range(10):
        quiet_again(store, f"m{i}", date(2026, 3, 10))
    store.crash_after_records = 4  # tags removed, four selections recorded, then a crash
    with pytest.raises(RuntimeError, match="crash"):
        run_campaign(wb, date(2026, 4, 9), deps(store, tags))
    store.crash_after_records = None
    report = run_campaign(wb, date(2026, 4, 9), deps(store, tags))
    assert report.completed and report.contacted == 10
    assert len(tags.tag_added) == 20 and len(set(tags.tag_added)) == 10  # each mailed once per selection
    assert report.tags_cleared == 6  # only those not recorded yet: a recorded member's tag is never removed again


def test_rate_limits_and_5xx_are_retried_with_backoff() -> None:
    store, tags = MemoryWinbackStore(), FakeBulkTags()
    for i in range(10):
        store.add(f"m{i}", TODAY - timedelta(days=30))
    tags.failures = [RateLimited("Mailchimp 429"), Transient("Mailchimp 503")]
    pauses: list[float] = []
    report = run_campaign(
        campaign(holdout_share=0.0), TODAY, deps(store, tags, sleep=pauses.append, retry_base_seconds=1.0)
    )
    assert report.completed and report.contacted == 10 and report.tag_calls == 3
    assert len(pauses) == 2 and pauses[1] > pauses[0] >= 1.0


def test_an_outage_defers_the_run_and_the_next_invocation_finishes_it_without_double_contact() -> None:
    store, tags = MemoryWinbackStore(), FakeBulkTags()
    for i in range(1200):
        store.add(f"m{i:04}", TODAY - timedelta(days=30))
    wb = campaign(holdout_share=0.0)
    tags.failures = [Transient("Mailchimp 503")] * 5  # every attempt of the first chunk
    first = run_campaign(wb, TODAY, deps(store, tags))
    assert not first.completed and first.deferred and not tags.tagged()
    second = run_campaign(wb, TODAY, deps(store, tags))
    assert second.completed and second.resumed_pending > 0
    assert len(tags.tagged()) == 1200 and len(tags.tag_added) == 1200
    assert all(r["status"] == "tagged" for r in store.records_by_key.values())


@pytest.mark.parametrize("crash", ["records", "tag_calls"])
def test_a_crash_half_way_and_a_rerun_contact_nobody_twice(crash: str) -> None:
    store, tags = MemoryWinbackStore(), FakeBulkTags()
    for i in range(2600):
        store.add(f"m{i:04}", TODAY - timedelta(days=30 if i % 3 else 60))
    wb = campaign(variants=[{"name": "a", "share": 1}, {"name": "b", "share": 1}])
    if crash == "records":
        store.crash_after_records = 1300
    else:
        tags.crash_after_calls = 2
    with pytest.raises(RuntimeError, match="crash"):
        run_campaign(wb, TODAY, deps(store, tags, page_size=200))
    assert store.states["winback"].done_through is None  # interrupted
    store.crash_after_records, tags.crash_after_calls = None, None
    report = run_campaign(wb, TODAY, deps(store, tags, page_size=200))
    assert report.completed
    # Every selected member recorded once; every contacted member tagged exactly once (one tag-added event).
    contacted = store.contacted("winback")
    assert len(contacted) == len(set(contacted))
    assert sorted(email for _, email in tags.tag_added) == sorted(f"{m}@example.org" for m in contacted)
    assert all(r["status"] in ("tagged", "holdout") for r in store.records_by_key.values())
    # And the next day's run contacts none of them again.
    run_campaign(wb, TODAY + timedelta(days=1), deps(store, tags))
    assert len(tags.tag_added) == len(contacted)


def test_a_run_continues_across_invocations_when_time_runs_out() -> None:
    store, tags = MemoryWinbackStore(), FakeBulkTags()
    for i in range(3000):
        store.add(f"m{i:04}", TODAY - timedelta(days=30))
    wb = campaign(holdout_share=0.0)
    invocations = 0
    while True:
        invocations += 1
        budget = iter([True, True, False])  # two pages per invocation
        report = run_campaign(wb, TODAY, deps(store, tags, page_size=500), time_left=lambda budget=budget: next(budget))
        if report.completed:
            break
        assert invocations < 10
    assert invocations == 4  # six pages of the 30-day tier, one (empty) page each for 60 and 90 days
    assert len(tags.tag_added) == 3000 == len(set(tags.tag_added))
    assert run_campaign(wb, TODAY, deps(store, tags)).already_done


def test_days_missed_are_caught_up_and_a_run_is_never_repeated() -> None:
    store, tags = MemoryWinbackStore(), FakeBulkTags()
    wb = campaign(holdout_share=0.0)
    run_campaign(wb, TODAY, deps(store, tags))
    for offset in range(1, 4):  # crossed 30 days on each of the three days the runs missed
        store.add(f"late{offset}", TODAY + timedelta(days=offset) - timedelta(days=30))
    report = run_campaign(wb, TODAY + timedelta(days=3), deps(store, tags))
    assert report.contacted == 3
    assert run_campaign(wb, TODAY + timedelta(days=3), deps(store, tags)).already_done


# -- preview and results -------------------------------------------------------------------------------------------


def test_preview_lists_who_and_why_and_contacts_nobody() -> None:
    store, tags = MemoryWinbackStore(), FakeBulkTags()
    for i in range(200):
        store.add(f"m{i}", TODAY - timedelta(days=30), mailchimp_status="unsubscribed" if i < 20 else "subscribed")
    shown = preview(campaign(), TODAY, store)
    assert shown["counts"]["excluded"] == 20 and shown["excluded_by_reason"] == {"unsubscribed": 20}
    assert shown["counts"]["contacted"] + shown["counts"]["held_out"] == 180
    assert {m["outcome"] for m in shown["members"]} == {"excluded", "held_out", "contacted"}
    assert all("@example.org" not in m["email"] for m in shown["members"])  # masked
    assert not store.records_by_key and not tags.calls and "winback" not in store.states
    # The run then does what the preview said.
    run_campaign(campaign(), TODAY, deps(store, tags))
    would = {m["member_id"] for m in shown["members"] if m["outcome"] == "contacted"}
    assert set(store.contacted()) == would


def test_lift_is_the_difference_of_proportions_with_newcombes_95_percent_interval() -> None:
    result = lift(120, 1000, 8, 100)
    assert result["difference"] == pytest.approx(0.04)
    # Newcombe's hybrid score interval: wider than the normal approximation's [-0.017, 0.097] on 8 of 100.
    assert result["ci95"] == pytest.approx([-0.032437, 0.084505], abs=1e-6)
    assert result["significant"] is False and result["verdict"] == "not_shown"
    assert result["relative"] == pytest.approx(0.5)
    assert lift(300, 1000, 100, 1000)["significant"] is True and lift(300, 1000, 100, 1000)["verdict"] == "works"
    assert lift(100, 1000, 300, 1000)["verdict"] == "worse"
    assert lift(3, 10, 0, 0)["difference"] is None


@pytest.mark.parametrize(
    ("counts", "ci95"),
    [
        # Newcombe (1998), Statistics in Medicine 17:873-890, table II, method 10.
        ((56, 70, 48, 80), (0.0524, 0.3339)),
        ((9, 10, 3, 10), (0.1705, 0.8090)),
        ((6, 7, 2, 7), (0.0582, 0.8062)),
        ((5, 56, 0, 29), (-0.0381, 0.1926)),
        # The audit's case: nobody of a 20-member holdout came back, which happens 12% of the time at a 10% rate.
        ((20, 200, 0, 20), (-0.0647, 0.1494)),
    ],
)
def test_the_lifts_interval_is_newcombes_hybrid_score_interval(
    counts: tuple[int, ...], ci95: tuple[float, ...]
) -> None:
    assert lift(*counts)["ci95"] == pytest.approx(list(ci95), abs=5e-5)


@pytest.mark.parametrize(
    "counts",
    [(1, 1, 0, 1), (3, 3, 0, 2), (9, 10, 0, 3), (20, 200, 0, 20), (29, 29, 0, 29), (0, 100, 29, 29)],
)
def test_a_rate_of_0_or_1_or_a_small_group_never_gives_a_verdict(counts: tuple[int, int, int, int]) -> None:
    result = lift(*counts)
    low, high = result["ci95"]
    assert -1.0 <= low <= result["difference"] <= high <= 1.0
    assert low < high  # never a zero-width interval
    assert result["significant"] is None and result["verdict"] == "too_few"


def test_a_large_enough_holdout_where_nobody_came_back_can_still_prove_a_lift() -> None:
    result = lift(200, 2000, 0, 200)
    assert result["verdict"] == "works" and 0 < result["ci95"][0] < 0.1 < result["ci95"][1] < 1


def test_results_count_members_active_again_within_14_and_30_days_per_tier_and_variant() -> None:
    store, tags = MemoryWinbackStore(), FakeBulkTags()
    for i in range(1000):
        store.add(f"m{i:04}", TODAY - timedelta(days=30))
    wb = campaign()
    results = MemoryResults()
    assert run_campaign(wb, TODAY, WinbackDeps(store, tags, results, "list1")).completed
    contacted, holdout = (
        store.contacted(),
        [r["member_id"] for r in store.records_by_key.values() if r["group"] == HOLDOUT],
    )
    for member in contacted[:200]:
        store.activity(member, datetime(2026, 12, 5, tzinfo=UTC))  # within 14 days
    for member in contacted[200:300]:
        store.activity(member, datetime(2026, 12, 20, tzinfo=UTC))  # within 30 days
    for member in holdout[:5]:
        store.activity(member, datetime(2026, 12, 5, tzinfo=UTC))
    write_results(wb, TODAY + timedelta(days=31), store, results)
    tier30 = results.files["winback"]["tiers"][0]
    default, held = tier30["groups"]
    assert default["contacted"] == len(contacted) and held["held_out"] == len(holdout)
    assert default["reactivated_14d"] == 200 and default["reactivated_30d"] == 300
    assert held["reactivated_14d"] == held["reactivated_30d"] == 5
    assert default["lift_30d"]["variant"] == {"n": len(contacted), "reactivated": 300}
    assert default["lift_30d"]["holdout"] == {"n": len(holdout), "reactivated": 5}
    assert default["lift_30d"]["significant"] is True


def test_rates_and_lift_count_only_members_whose_window_has_closed() -> None:
    from memberflow.winback.ports import AssignmentRecord
    from memberflow.winback.results import summarise

    wb = campaign(tiers=[{"days": 30, "tag": "winback-30"}])
    today = date(2026, 12, 31)
    old, recent = date(2026, 11, 1), date(2026, 12, 21)  # 60 and 10 days before the results' day

    def at(day: date, after: int) -> datetime:
        return datetime.combine(day + timedelta(days=after), datetime.min.time(), UTC)

    records = [
        # 100 contacted two months ago: 20 back within 14 days, 10 more within 30.
        *(AssignmentRecord(f"o{i}", "winback", 30, "", old, "tagged", at(old, 5 if i < 20 else 20)) for i in range(30)),
        *(AssignmentRecord(f"o{i}", "winback", 30, "", old, "tagged") for i in range(30, 100)),
        # 100 contacted ten days ago: 10 back already, the others may yet come back.
        *(AssignmentRecord(f"r{i}", "winback", 30, "", recent, "tagged", at(recent, 3)) for i in range(10)),
        *(AssignmentRecord(f"r{i}", "winback", 30, "", recent, "tagged") for i in range(10, 100)),
        # 40 held out two months ago (4 back within 14 days), 40 ten days ago (none back yet).
        *(AssignmentRecord(f"h{i}", "winback", 30, HOLDOUT, old, HOLDOUT, at(old, 2)) for i in range(4)),
        *(AssignmentRecord(f"h{i}", "winback", 30, HOLDOUT, old, HOLDOUT) for i in range(4, 40)),
        *(AssignmentRecord(f"k{i}", "winback", 30, HOLDOUT, recent, HOLDOUT) for i in range(40)),
    ]  # fmt: skip
    (default, held) = summarise(wb, records, today)["tiers"][0]["groups"]
    assert default["contacted"] == 200 and held["held_out"] == 80
    for window, back in ((14, 20), (30, 30)):
        assert default[f"measured_{window}d"] == 100 and default[f"window_open_{window}d"] == 100
        assert default[f"reactivated_{window}d"] == back and default[f"rate_{window}d"] == back / 100
        assert held[f"measured_{window}d"] == 40 and held[f"window_open_{window}d"] == 40
        assert held[f"rate_{window}d"] == 0.1
        assert default[f"lift_{window}d"]["variant"] == {"n": 100, "reactivated": back}
        assert default[f"lift_{window}d"]["holdout"] == {"n": 40, "reactivated": 4}
        assert default[f"lift_{window}d"]["difference"] == pytest.approx(back / 100 - 0.1)
    # A window closes the day after its last day: a return on day 30 still counts.
    edge = [AssignmentRecord("e", "winback", 30, "", today - timedelta(days=30), "tagged")]
    (row, _) = summarise(wb, edge, today)["tiers"][0]["groups"]
    assert (row["window_open_30d"], row["measured_30d"], row["rate_30d"]) == (1, 0, None)
    assert row["lift_30d"]["difference"] is None and row["window_open_14d"] == 0


def test_two_campaigns_never_select_one_member_on_the_same_day() -> None:
    store, tags = MemoryWinbackStore(), FakeBulkTags()
    for i in range(100):
        store.add(f"m{i}", TODAY - timedelta(days=30))
    first = campaign(holdout_share=0.0)
    second = parse_campaigns(campaign_file(id="spring", holdout_share=0.0, tiers=[{"days": 30, "tag": "spring-30"}]))
    assert run_campaign(first, TODAY, deps(store, tags)).contacted == 100
    report = run_campaign(second.get("spring"), TODAY, deps(store, tags))
    assert report.contacted == 0 and report.excluded == {"cooldown": 100}
    assert "spring-30" not in tags.segments


def test_a_results_file_that_could_not_be_written_is_written_by_the_next_invocation() -> None:
    from memberflow.errors import ServiceUnavailable
    from memberflow.runtime.winback import results_if_due

    class FlakyResults(MemoryResults):
        failures = 1

        def put(self, campaign_id: str, results: dict) -> str:  # type: ignore[override]
            if self.failures:
                self.failures -= 1
                raise ServiceUnavailable("S3 unreachable")
            return super().put(campaign_id, results)

    store, tags, results = MemoryWinbackStore(), FakeBulkTags(), FlakyResults()
    store.add("m1", TODAY - timedelta(days=30))
    run_deps = WinbackDeps(store, tags, results, "list1")
    assert run_campaign(campaign(), TODAY, run_deps).completed
    assert results_if_due(campaign(), run_deps) == "" and "winback" not in results.files  # failed, kept due
    assert results_if_due(campaign(), run_deps) == "memory://winback.json"
    assert results.files["winback"]["as_of"] == TODAY.isoformat()
    assert results_if_due(campaign(), run_deps) == ""  # written: not again
