"""The report's "first ever" figures look back over the whole retained log, not only the weeks it shows: new members
and cohorts (a member's first join: per platform, there; for "all", anywhere), first-time event attendees (no
earlier attendance). Every scan stays bounded by day partitions: the retained log's 400 days at most. A member a
bulk import brought in is never new. A platform's cohort counts activity on that platform only.

The report week is 2026-W47 (Monday 2026-11-16 to Sunday 2026-11-22); its eight trend weeks begin 2026-09-28."""

from __future__ import annotations

import re

import pytest

from memberflow.health import figures
from memberflow.health.queries import HISTORY, QUERIES, RETAINED_DAYS, SHARED_STEPS, Period, render, sql_text
from memberflow_local.health import DuckDBEngine
from support.health_seed import msg, rec, simple, write_log

W47 = Period.parse("2026-W47")


def compute(tmp_path, log, only=None):
    engine = DuckDBEngine(write_log(tmp_path, log))
    try:
        return figures.compute(engine, W47, only=only)
    finally:
        engine.close()


def veteran_and_newcomer():
    """old joined Slack in August (15 weeks before W47) and has written since; in W47 old joins Discourse and
    writes there an hour later, and new joins Slack and never writes."""
    return [
        rec("joined", "old", "slack", "2026-08-03T10:00"),
        *[simple("old", f"2026-{month}-{day:02d}") for month, day in (("08", 4), ("09", 14), ("10", 20), ("11", 10))],
        rec("joined", "old", "discourse", "2026-11-17T09:00"),
        rec("post", "old", "discourse", "2026-11-17T10:00", thread="1", item="1"),
        rec("joined", "new", "slack", "2026-11-18T09:00"),
    ]


def test_a_member_who_joined_before_the_trend_weeks_is_not_new_when_joining_another_platform(tmp_path):
    week = compute(tmp_path, veteran_and_newcomer(), only=("activation", "funnel", "cohorts"))
    # All platforms: only new is new (old's first join anywhere was in August).
    assert (week["activation"]["all"]["new_members"], week["activation"]["all"]["activated"]) == (1, 0)
    assert week["funnel"]["all"]["joined"] == 1
    assert [(c["week"], c["size"]) for c in week["cohorts"]["all"]] == [("2026-11-16", 1)]
    # Per platform, old's first join on Discourse is in W47: new there, activated within the hour.
    assert week["activation"]["discourse"] == {
        "new_members": 1,
        "activated": 1,
        "rate": 1.0,
        "median_seconds_to_first_activity": 3600,
        "p90_seconds_to_first_activity": 3600,
    }
    assert week["activation"]["slack"]["new_members"] == 1
    assert [(c["week"], c["size"]) for c in week["cohorts"]["discourse"]] == [("2026-11-16", 1)]


def test_a_returning_attendee_is_not_first_time_however_long_ago_they_came(tmp_path):
    log = [
        rec("attended", "old", "eventbrite", "2026-08-25T18:00", event="E-aug"),  # 12 weeks before W47
        rec("attended", "old", "eventbrite", "2026-11-19T18:00", event="E-nov"),
        rec("attended", "new", "eventbrite", "2026-11-19T18:00", event="E-nov"),
    ]
    (event,) = compute(tmp_path, log, only=("events",))["events"]
    assert (event["event"], event["attended"], event["first_time"], event["returning"]) == ("E-nov", 2, 1, 1)


def test_the_look_back_is_the_retained_log_and_no_further(tmp_path):
    # 2026-11-22 is W47's last day: the retained log's 400 days begin 2025-10-19.
    assert (W47.history_from.isoformat(), RETAINED_DAYS) == ("2025-10-19", 400)
    log = [
        rec("joined", "kept", "slack", "2025-10-19T00:00"),  # the retained log's first day: seen
        rec("joined", "gone", "slack", "2025-10-18T23:59"),  # the day before: past retention, not read
        rec("attended", "kept", "eventbrite", "2025-10-19T18:00", event="E-old"),
        rec("attended", "gone", "eventbrite", "2025-10-18T18:00", event="E-older"),
        *(rec("joined", who, "discourse", "2026-11-17T09:00") for who in ("kept", "gone")),
        *(rec("attended", who, "eventbrite", "2026-11-19T18:00", event="E-nov") for who in ("kept", "gone")),
    ]
    week = compute(tmp_path, log, only=("activation", "events"))
    assert week["activation"]["all"]["new_members"] == 1  # gone's join of 2025-10-18 is past what the log keeps
    (event,) = [e for e in week["events"] if e["event"] == "E-nov"]
    assert (event["first_time"], event["returning"]) == (1, 1)


def test_every_scan_is_bounded_by_day_partitions_and_only_first_ever_figures_read_the_retained_log():
    bounds = re.compile(r"dt BETWEEN '(\d{4}-\d{2}-\d{2})' AND '(\d{4}-\d{2}-\d{2})'")
    for name in QUERIES:
        sql = render(name, W47)
        # Every read of the table names its days (a `FROM {table}` without a `dt` bound would read the whole log).
        assert sql.count("FROM activity") == len(bounds.findall(sql)) == len(W47.scans(name)), name
        assert [tuple(found) for found in bounds.findall(sql)] == [
            (f"{first:%Y-%m-%d}", f"{last:%Y-%m-%d}") for first, last in W47.scans(name)
        ], name
        assert ("'2025-10-19'" in sql) == (name in HISTORY), name
    assert HISTORY == {"activation", "cohorts", "funnel", "events"}
    # The history scan reads only the kinds it needs; activation's and events' main scans only the week itself.
    assert "dt BETWEEN '2025-10-19' AND '2026-11-22' AND kind IN ('joined', 'imported')" in render("activation", W47)
    assert "dt BETWEEN '2025-10-19' AND '2026-11-22' AND kind = 'attended'" in render("events", W47)
    assert W47.scans("activation") == [(W47.start, W47.scan_last), (W47.history_from, W47.scan_last)]
    assert W47.scans("events")[0] == (W47.start, W47.scan_last)
    assert W47.scans("cohorts")[0] == (W47.trend_from, W47.scan_last)
    # The month report looks back 400 days from its own last day.
    november = Period.parse("2026-11")
    assert november.history_from.isoformat() == "2025-10-27"


def test_activation_cohorts_and_the_funnel_find_first_joins_by_the_one_shared_step():
    assert SHARED_STEPS == ("first_joins",)
    for name in QUERIES:
        sql = render(name, W47)
        uses_step = "{first_joins}" in sql_text(name)
        assert uses_step == (name in ("activation", "cohorts", "funnel")), name
        # The step's SQL is in the rendered query once (never written out again beside it), without its comment.
        assert sql.count("firsts AS (") == sql.count("joins AS (") == sql.count("known AS (") == uses_step, name
        assert "{" not in sql and "-- first_joins" not in sql, name


@pytest.mark.parametrize("platform", ["slack", "discourse"])
def test_a_member_a_bulk_import_brought_in_is_never_new(tmp_path, platform):
    log = [
        # imported from Slack in October (their join date unknown: Slack keeps none)
        rec("imported", "vet", "slack", "2026-10-05T12:00"),
        # ... joins in W47: Discourse (a second platform), or Slack again (the live join arriving after the import)
        rec("joined", "vet", platform, "2026-11-17T09:00"),
        # an import in W47 itself adds no new member either
        rec("imported", "batch", "slack", "2026-11-18T12:00"),
        rec("joined", "new", "slack", "2026-11-18T09:00"),
    ]
    week = compute(tmp_path, log, only=("activation", "funnel", "cohorts"))
    assert week["activation"]["all"]["new_members"] == 1
    assert week["funnel"]["all"]["joined"] == 1
    assert [(c["week"], c["size"]) for c in week["cohorts"]["all"]] == [("2026-11-16", 1)]
    # Per platform: on Discourse vet's join is their first there (as for any member joining a second platform); on
    # Slack, where the import found them, it is not: Slack's new member is new alone.
    expected = {"all": 1, "slack": 1, **({"discourse": 1} if platform == "discourse" else {})}
    assert {name: row["new_members"] for name, row in week["activation"].items()} == expected


def test_a_member_who_joined_before_being_imported_was_new_when_they_joined(tmp_path):
    log = [
        rec("joined", "ann", "discourse", "2026-11-16T09:00"),  # a live join, then the import of the forum
        rec("imported", "ann", "discourse", "2026-11-20T12:00"),
    ]
    week = compute(tmp_path, log, only=("activation",))
    assert (week["activation"]["all"]["new_members"], week["activation"]["discourse"]["new_members"]) == (1, 1)


def test_a_platforms_cohort_counts_activity_on_that_platform_only(tmp_path):
    log = [
        # W45 (2026-11-02): ann joins Discourse and Slack, writes on Discourse in W45, then only in Slack.
        rec("joined", "ann", "discourse", "2026-11-02T09:00"),
        rec("joined", "ann", "slack", "2026-11-02T10:00"),
        rec("post", "ann", "discourse", "2026-11-03T10:00", thread="1", item="1"),
        msg("ann", "2026-11-10T10:00", "C1", "1.1", "1.1"),
        msg("ann", "2026-11-17T10:00", "C1", "2.1", "2.1"),
        # bob joins Discourse in W45 and writes there in W46.
        rec("joined", "bob", "discourse", "2026-11-04T09:00"),
        rec("post", "bob", "discourse", "2026-11-11T10:00", thread="2", item="1"),
    ]
    cohorts = compute(tmp_path, log, only=("cohorts",))["cohorts"]
    (forum,) = cohorts["discourse"]
    (chat,) = cohorts["slack"]
    (everyone,) = cohorts["all"]
    assert forum == {"week": "2026-11-02", "size": 2, "retained": [1, 1, 0, *[None] * 5]}
    assert chat == {"week": "2026-11-02", "size": 1, "retained": [0, 1, 1, *[None] * 5]}
    assert everyone == {"week": "2026-11-02", "size": 2, "retained": [1, 2, 1, *[None] * 5]}


def test_the_report_days_the_local_report_loads_cover_the_look_back(tmp_path):
    from memberflow_local.report import report_days

    log = veteran_and_newcomer()
    assert report_days(W47) == (W47.previous().history_from, W47.scan_last)
    engine = DuckDBEngine(write_log(tmp_path, log), days=report_days(W47))
    try:
        loaded = figures.compute(engine, W47, only=("activation",))
    finally:
        engine.close()
    assert loaded["activation"]["all"]["new_members"] == 1
