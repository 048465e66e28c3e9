"""Every figure of the health report on a community counted by hand (tests/support/health_seed.py), computed by the
report's own SQL on DuckDB over files laid out as the S3 adapter writes them."""

from __future__ import annotations

import pytest

from memberflow.activity import member_hash
from memberflow.health import figures
from memberflow.health.queries import QUERIES, Period, definition, render
from memberflow_local.health import DuckDBEngine
from support.health_seed import KEY, records, write_log

W47 = Period.parse("2026-W47")


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    engine = DuckDBEngine(write_log(tmp_path_factory.mktemp("log"), records()))
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def week(engine):
    return figures.compute(engine, W47)


def hashed(*names: str) -> list[str]:
    return [member_hash(KEY, name) for name in names]


def test_periods_are_iso_weeks_or_months_and_name_the_partitions_they_read():
    assert (W47.start.isoformat(), W47.end.isoformat()) == ("2026-11-16", "2026-11-23")
    assert W47.previous().label == "2026-W46"
    month = Period.parse("2026-11")
    assert (month.start.isoformat(), month.end.isoformat(), month.previous().label) == (
        "2026-11-01",
        "2026-12-01",
        "2026-10",
    )
    # Eight trend weeks from 2026-09-28, and the retained log's 400 days (first joins, first attendance) from
    # 2025-10-19, up to 2026-11-22: nothing later, nothing earlier.
    assert (W47.trend_from.isoformat(), W47.scan_from.isoformat(), W47.scan_last.isoformat()) == (
        "2026-09-28",
        "2025-10-19",
        "2026-11-22",
    )
    # Each query reads only the day partitions it needs: the week, MAU's 30 days, churn's 44, the trend's 8 weeks
    # (tests/unit/test_health_history.py: the retained log's scans).
    assert "dt BETWEEN '2026-11-16' AND '2026-11-22'" in render("daily_active", W47)
    assert "dt BETWEEN '2026-10-24' AND '2026-11-22'" in render("active_members", W47)
    assert "dt BETWEEN '2026-10-10' AND '2026-11-22'" in render("churn_risk", W47)
    assert "dt BETWEEN '2026-09-28' AND '2026-11-22'" in render("cohorts", W47)
    for bad in ("2026-W54", "2026-13", "last week"):
        with pytest.raises(ValueError):
            Period.parse(bad)


def test_every_query_says_what_it_counts():
    for name in QUERIES:
        assert len(definition(name)) > 40, name


def test_daily_weekly_and_monthly_active_members_and_stickiness(week):
    everyone, slack, forum = (week["active"][p] for p in ("all", "slack", "discourse"))
    # ada 16th; bob and ada 17th; ada 18th; nobody 19th; fay and bob 20th; bob 21st; dee 22nd.
    assert [day["members"] for day in everyone["daily"]] == [1, 2, 1, 0, 2, 1, 1]
    assert [day["members"] for day in slack["daily"]] == [0, 2, 0, 0, 1, 1, 0]
    assert [day["members"] for day in forum["daily"]] == [1, 0, 1, 0, 1, 0, 1]
    assert everyone["dau"] == round(8 / 7, 2) and slack["dau"] == round(4 / 7, 2)
    # ada is active on both platforms: once in "all".
    assert (everyone["wau"], slack["wau"], forum["wau"]) == (4, 2, 3)
    # Since 10-24: ada, hal, jon, bob, fay, dee (eve and gus went quiet in October).
    assert (everyone["mau"], slack["mau"], forum["mau"]) == (6, 4, 3)
    assert everyone["stickiness"] == round((8 / 7) / 6, 4)
    assert [w["members"] for w in week["weekly_active"]["all"]] == [0, 2, 3, 1, 0, 0, 3, 4]


def test_new_members_activation_and_time_to_first_activity(week):
    activation = week["activation"]
    # All platforms: bob, cy, dee are new (ada first joined in W46); bob after 6 h, dee after 3 d 8 h, cy never.
    assert activation["all"] == {
        "new_members": 3,
        "activated": 2,
        "rate": 0.6667,
        "median_seconds_to_first_activity": 6 * 3600,
        "p90_seconds_to_first_activity": 80 * 3600,
    }
    # Discourse: ada (3 h after joining the forum) and dee; Slack: bob and cy.
    assert (activation["discourse"]["new_members"], activation["discourse"]["activated"]) == (2, 2)
    assert activation["discourse"]["median_seconds_to_first_activity"] == 3 * 3600
    assert (activation["slack"]["new_members"], activation["slack"]["activated"], activation["slack"]["rate"]) == (
        2,
        1,
        0.5,
    )


def test_weekly_cohorts_by_weeks_retained(week):
    cohorts = {cohort["week"]: cohort for cohort in week["cohorts"]["all"]}
    # eve joined 09-30 and wrote in the three weeks after; weeks up to the report's end only.
    assert cohorts["2026-09-28"] == {"week": "2026-09-28", "size": 1, "retained": [0, 1, 1, 1, 0, 0, 0, 0]}
    # ada, hal, ivy, jon: three wrote in their join week, ada again in W47.
    assert cohorts["2026-11-09"] == {"week": "2026-11-09", "size": 4, "retained": [3, 1, *[None] * 6]}
    assert cohorts["2026-11-16"] == {"week": "2026-11-16", "size": 3, "retained": [2, *[None] * 7]}
    assert [c["size"] for c in week["cohorts"]["discourse"]] == [2]


def test_churn_risk_counts_and_lists_regulars_gone_silent(week):
    churn = week["churn_risk"]
    # eve: 4 active days, silent since 10-20. fay: 3 days in Slack but answered on Discourse on 11-20, so at risk
    # in Slack only. gus: 2 days, not a regular.
    assert churn["all"]["count"] == 1
    assert [m["member"] for m in churn["all"]["members"]] == hashed("eve")
    assert churn["all"]["members"][0] == {
        "member": hashed("eve")[0],
        "active_days": 4,
        "last_active": "2026-10-20T10:00:00Z",
    }
    assert sorted(m["member"] for m in churn["slack"]["members"]) == sorted(hashed("eve", "fay"))
    assert "discourse" not in churn


def test_questions_time_to_first_reply_and_unanswered_ones_with_links(week):
    questions = week["questions"]
    # Q1 (ada, forum) answered by fay after 99 h; Q2 (bob, Slack) by ada after 1.5 h; Q3 only by its asker; Q4 new.
    assert questions["all"] == {
        "questions": 4,
        "answered": 2,
        "median_seconds_to_first_reply": 5400,
        "p90_seconds_to_first_reply": 99 * 3600,
    }
    assert questions["slack"]["median_seconds_to_first_reply"] == 5400
    assert questions["discourse"]["median_seconds_to_first_reply"] == 99 * 3600
    # Q4 waits 4 h: not yet a day.
    assert week["unanswered"] == [
        {
            "platform": "slack",
            "channel": "C2",
            "thread": "1763722800.000400",
            "asked_at": "2026-11-21T11:00:00Z",
            "hours_waiting": 37,
            "link": "https://slack.com/archives/C2/p1763722800000400",
        }
    ]
    assert figures.thread_link("discourse", "https://forum.example.org", None, "100", "1") == (
        "https://forum.example.org/t/100/1"
    )


def test_tickets_events_win_back_and_the_funnel(week):
    assert week["tickets"] == [
        {
            "category": "access",
            "opened": 0,
            "solved": 1,
            "median_first_response_seconds": None,
            "median_resolution_seconds": None,
        },
        {
            "category": "billing",
            "opened": 2,
            "solved": 1,
            "median_first_response_seconds": 1800,
            "median_resolution_seconds": 86400,
        },
    ]
    assert week["events"] == [
        {
            "event": "E1",
            "registrations": 3,
            "attended": 2,
            "no_shows": 1,
            "first_time": 1,
            "returning": 1,
            "attendance_rate": 0.6667,
        }
    ]
    (autumn,) = week["winback"]
    # eve and gus wrote within 14 days of the contact; of the holdout, fay did and lee did not.
    assert (autumn["contacted"], autumn["contacted_reactivated"], autumn["holdout"], autumn["holdout_reactivated"]) == (
        2,
        2,
        2,
        1,
    )
    # Newcombe's hybrid score interval (Wilson per group) of 2/2 - 1/2: no verdict on two members a group.
    assert (autumn["lift"], autumn["lift_low"], autumn["lift_high"]) == (0.5, *newcombe(2, 2, 1, 2))
    assert autumn["verdict"] == "too_few"
    assert week["funnel"]["all"] == {"joined": 3, "mailchimp_added": 3, "welcomed": 2, "drip_finished": 0, "active": 2}
    assert week["funnel"]["slack"] == {
        "joined": 2,
        "mailchimp_added": 2,
        "welcomed": 1,
        "drip_finished": 0,
        "active": 1,
    }


def test_the_previous_week_for_comparisons(engine):
    previous = figures.compute(engine, W47.previous(), only=figures.HEADLINE_QUERIES)
    # W46: ada, hal, jon, ivy joined; all but ivy wrote within the hour.
    assert (previous["activation"]["all"]["new_members"], previous["activation"]["all"]["activated"]) == (4, 3)
    # eve and fay were both regulars gone silent by 11-16.
    assert sorted(m["member"] for m in previous["churn_risk"]["all"]["members"]) == sorted(hashed("eve", "fay"))
    assert "cohorts" not in previous


def test_the_report_days_loaded_once_give_the_same_figures(tmp_path, week):
    from memberflow_local.report import report_days

    engine = DuckDBEngine(write_log(tmp_path, records()), days=report_days(W47))
    assert report_days(W47) == (W47.previous().history_from, W47.scan_last)
    assert figures.compute(engine, W47) == week


def wilson(hits: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * (p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5 / (1 + z * z / n)
    return centre - half, centre + half


def newcombe(a: int, n: int, b: int, m: int) -> tuple[float, float]:
    """Newcombe's hybrid score interval of a/n - b/m, written out here to check the report's."""
    (l1, u1), (l2, u2), p1, p2 = wilson(a, n), wilson(b, m), a / n, b / m
    low = p1 - p2 - ((p1 - l1) ** 2 + (u2 - p2) ** 2) ** 0.5
    high = p1 - p2 + ((u1 - p1) ** 2 + (p2 - l2) ** 2) ** 0.5
    return round(max(-1.0, low), 4), round(min(1.0, high), 4)


def test_win_back_rates_leave_out_members_whose_14_days_are_not_over(tmp_path):
    from support.health_seed import msg, rec

    def target(kind: str, member: str, at: str):
        return rec(kind, member, "mailchimp", at, campaign="spring", tier="30", variant="a")

    log = [
        # Contacted on 10-20 (window over by W47's end, 11-23): c1 back within 14 days, c2 and c3 not.
        *(target("winback_contacted", m, "2026-10-20T06:00") for m in ("c1", "c2", "c3")),
        msg("c1", "2026-10-25T10:00", "C1", "1.1", "1.1"),
        target("winback_holdout", "h1", "2026-10-20T06:00"),
        # Contacted on 11-20: their 14 days run until 12-04. n1 is back already, n2 may still come back.
        *(target("winback_contacted", m, "2026-11-20T06:00") for m in ("n1", "n2")),
        msg("n1", "2026-11-21T10:00", "C1", "2.1", "2.1"),
        target("winback_holdout", "h2", "2026-11-20T06:00"),
    ]
    engine = DuckDBEngine(write_log(tmp_path, log))
    try:
        (spring,) = figures.compute(engine, W47, only=("winback",))["winback"]
    finally:
        engine.close()
    assert (spring["contacted"], spring["contacted_open"], spring["contacted_measured"]) == (5, 2, 3)
    assert (spring["holdout"], spring["holdout_open"], spring["holdout_measured"]) == (2, 1, 1)
    assert (spring["contacted_reactivated"], spring["holdout_reactivated"]) == (1, 0)
    assert (spring["contacted_rate"], spring["holdout_rate"]) == (0.3333, 0.0)
    assert (spring["lift_low"], spring["lift_high"]) == newcombe(1, 3, 0, 1)


def winback_row(back: int, contacted: int, held_back: int, held: int) -> dict:
    return figures._winback(
        {
            "campaign": "spring",
            "contacted": contacted,
            "contacted_open": 0,
            "contacted_reactivated": back,
            "holdout": held,
            "holdout_open": 0,
            "holdout_reactivated": held_back,
        }
    )


@pytest.mark.parametrize(
    ("counts", "verdict", "title"),
    [
        # Everyone contacted came back, nobody held out: one member a group proves nothing.
        ((1, 1, 0, 1), "too_few", "too few members to tell yet"),
        ((20, 200, 0, 20), "too_few", "too few members to tell yet"),
        ((120, 1000, 8, 100), "not_shown", "not yet proven"),
        ((300, 1000, 10, 100), "works", "works: +20 pts reactivation"),
        ((100, 1000, 30, 100), "worse", "does worse than no contact"),
    ],
)
def test_the_win_back_callout_says_it_works_only_with_enough_members_and_an_interval_above_zero(counts, verdict, title):
    from memberflow.health.callouts import callouts

    row = winback_row(*counts)
    found = callouts({"period": {"kind": "week"}, "winback": [row]}, {})
    (said,) = [c for c in found if c["anchor"] == "#winback"]
    assert ("works" in said["title"]) == (verdict == "works")
    assert title in said["title"]
    assert row["verdict"] == verdict and -1 <= row["lift_low"] <= row["lift_high"] <= 1


def test_the_report_and_the_results_file_share_one_interval():
    from memberflow.winback.results import lift as results_lift

    for counts in ((1, 1, 0, 1), (20, 200, 0, 20), (56, 70, 48, 80), (300, 1000, 10, 100)):
        row, results = winback_row(*counts), results_lift(*counts)
        assert (row["lift_low"], row["lift_high"]) == tuple(round(x, 4) for x in results["ci95"])
        assert row["verdict"] == results["verdict"]
