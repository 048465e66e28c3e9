"""The report's figures: each named query run once by the engine (Athena or DuckDB), shaped into one JSON-ready
dict, per platform and for all platforms together ("all", a person counted once). Times stay in seconds here;
the page shows them in hours and minutes."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from urllib.parse import quote

from memberflow import stats
from memberflow.health.queries import Period, QueryEngine, render

FIGURES_VERSION = 1
ALL = "all"
HEADLINE_QUERIES = ("daily_active", "active_members", "activation", "churn_risk", "questions", "unanswered")
"""What the previous period needs, for the week-on-week (month-on-month) comparisons."""


def compute(
    engine: QueryEngine, period: Period, *, table: str = "activity", only: tuple[str, ...] | None = None
) -> dict[str, Any]:
    """Every figure of `period` (or only those `only` names the queries of)."""

    def rows(name: str) -> list[dict[str, Any]] | None:
        if only is not None and name not in only:
            return None
        return engine.run(name, render(name, period, table))

    figures: dict[str, Any] = {"period": period_json(period)}
    daily, members = rows("daily_active"), rows("active_members")
    if daily is not None and members is not None:
        figures["active"] = _active(period, daily, members)
    weekly = rows("weekly_active")
    if weekly is not None:
        figures["weekly_active"] = _weekly(period, weekly)
    activation = rows("activation")
    if activation is not None:
        figures["activation"] = {row["platform"]: _activation(row) for row in activation}
    cohorts = rows("cohorts")
    if cohorts is not None:
        figures["cohorts"] = _cohorts(period, cohorts)
    churn = rows("churn_risk")
    if churn is not None:
        figures["churn_risk"] = _churn(churn)
    questions = rows("questions")
    if questions is not None:
        figures["questions"] = {row["platform"]: _questions(row) for row in questions}
    unanswered = rows("unanswered")
    if unanswered is not None:
        figures["unanswered"] = [_unanswered(row) for row in unanswered]
    for name, shape in (("tickets", _tickets), ("events", _events), ("winback", _winback)):
        found = rows(name)
        if found is not None:
            figures[name] = [shape(row) for row in found]
    funnel = rows("funnel")
    if funnel is not None:
        figures["funnel"] = {row["platform"]: _ints(row, exclude=("platform",)) for row in funnel}
    figures["platforms"] = _platforms(figures)
    return figures


def period_json(period: Period) -> dict[str, str]:
    return {
        "kind": period.kind,
        "label": period.label,
        "start": f"{period.start:%Y-%m-%d}",
        "end": f"{period.end:%Y-%m-%d}",
    }


def _active(period: Period, daily: list[dict[str, Any]], members: list[dict[str, Any]]) -> dict[str, Any]:
    by_platform: dict[str, dict[str, int]] = {}
    for row in daily:
        by_platform.setdefault(row["platform"], {})[_day(row["day"])] = int(row["members"])
    active: dict[str, Any] = {}
    for row in members:
        platform = row["platform"]
        days = by_platform.get(platform, {})
        counts = [days.get(f"{day:%Y-%m-%d}", 0) for day in period.days]
        series = [{"day": f"{day:%Y-%m-%d}", "members": n} for day, n in zip(period.days, counts, strict=True)]
        dau = sum(counts) / len(counts)
        mau = int(row["mau"])
        active[platform] = {
            "dau": round(dau, 2),
            "wau": int(row["wau"]),
            "mau": mau,
            "period_active": int(row["period_active"]),
            "stickiness": round(dau / mau, 4) if mau else None,
            "daily": series,
        }
    return active


def _weekly(period: Period, rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    counts: dict[str, dict[str, int]] = {}
    for row in rows:
        counts.setdefault(row["platform"], {})[_day(row["week"])] = int(row["members"])
    return {
        platform: [{"week": f"{week:%Y-%m-%d}", "members": weeks.get(f"{week:%Y-%m-%d}", 0)} for week in period.weeks()]
        for platform, weeks in counts.items()
    }


def _activation(row: dict[str, Any]) -> dict[str, Any]:
    new, activated = int(row["new_members"]), int(row["activated"])
    return {
        "new_members": new,
        "activated": activated,
        "rate": round(activated / new, 4) if new else None,
        "median_seconds_to_first_activity": _int(row["median_seconds_to_first_activity"]),
        "p90_seconds_to_first_activity": _int(row["p90_seconds_to_first_activity"]),
    }


def _cohorts(period: Period, rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Cells for weeks that have not begun by the period's end are None (not 0)."""
    cohorts: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        week = row["cohort_week"]
        week = week if isinstance(week, date) else date.fromisoformat(str(week)[:10])
        elapsed = (period.end - week).days
        retained = [int(row[f"week_{k}"]) if k * 7 < elapsed else None for k in range(8)]
        cohorts.setdefault(row["platform"], []).append(
            {"week": f"{week:%Y-%m-%d}", "size": int(row["size"]), "retained": retained}
        )
    return cohorts


def _churn(rows: list[dict[str, Any]]) -> dict[str, Any]:
    churn: dict[str, Any] = {}
    for row in rows:
        entry = churn.setdefault(row["platform"], {"count": 0, "members": []})
        entry["count"] += 1
        entry["members"].append(
            {
                "member": row["member"],
                "active_days": int(row["active_days"]),
                "last_active": _moment(row["last_active"]),
            }
        )
    return churn


def _questions(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "questions": int(row["questions"]),
        "answered": int(row["answered"]),
        "median_seconds_to_first_reply": _int(row["median_seconds_to_first_reply"]),
        "p90_seconds_to_first_reply": _int(row["p90_seconds_to_first_reply"]),
    }


def _unanswered(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "platform": row["platform"],
        "channel": row["channel"],
        "thread": row["thread"],
        "asked_at": _moment(row["asked_at"]),
        "hours_waiting": int(row["hours_waiting"]),
        "link": thread_link(row["platform"], row["workspace"], row["channel"], row["thread"], row["item"]),
    }


def thread_link(platform: str, workspace: str | None, channel: str | None, thread: str | None, item: str | None) -> str:
    """Where a question can be opened: the Slack thread (slack.com/archives redirects into the workspace), the
    Discourse topic on its instance; empty when the log does not say enough."""
    if platform == "slack" and channel and thread:
        return f"https://slack.com/archives/{quote(channel)}/p{thread.replace('.', '')}"
    if platform == "discourse" and workspace and thread and workspace.startswith(("https://", "http://")):
        return f"{workspace.rstrip('/')}/t/{quote(thread)}/{quote(item or '1')}"
    if platform == "discord" and workspace and channel:
        return f"https://discord.com/channels/{quote(workspace)}/{quote(channel)}"
    return ""


def _tickets(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "category": row["category"],
        "opened": int(row["opened"]),
        "solved": int(row["solved"]),
        "median_first_response_seconds": _int(row["median_first_response_seconds"]),
        "median_resolution_seconds": _int(row["median_resolution_seconds"]),
    }


def _events(row: dict[str, Any]) -> dict[str, Any]:
    shaped = _ints(row, exclude=("event",))
    seen = shaped["attended"] + shaped["no_shows"]
    return {"event": row["event"], **shaped, "attendance_rate": round(shaped["attended"] / seen, 4) if seen else None}


def _winback(row: dict[str, Any]) -> dict[str, Any]:
    """A campaign's counts, and its rates and lift over the members whose 14-day window has closed."""
    shaped = _ints(row, exclude=("campaign",))
    contacted = shaped["contacted"] - shaped["contacted_open"]
    held = shaped["holdout"] - shaped["holdout_open"]
    return {
        "campaign": row["campaign"],
        **shaped,
        "contacted_measured": contacted,
        "holdout_measured": held,
        **lift(shaped["contacted_reactivated"], contacted, shaped["holdout_reactivated"], held),
    }


def lift(treated_hits: int, treated: int, held_hits: int, held: int) -> dict[str, Any]:
    """Reactivation rate of the contacted minus the holdout's, with its 95% interval (Newcombe's hybrid score
    interval, within -1..1: `memberflow.stats`) and its verdict (`works`, `worse`, `not_shown`, or `too_few` while
    a group has fewer than `stats.MIN_GROUP_FOR_VERDICT` members); None where a group is empty."""
    measured = stats.lift(treated_hits, treated, held_hits, held)
    if measured is None:
        return {
            "contacted_rate": None,
            "holdout_rate": None,
            "lift": None,
            "lift_low": None,
            "lift_high": None,
            "verdict": None,
        }
    return {
        "contacted_rate": round(measured.rate, 4),
        "holdout_rate": round(measured.holdout_rate, 4),
        "lift": round(measured.difference, 4),
        "lift_low": round(measured.low, 4),
        "lift_high": round(measured.high, 4),
        "verdict": measured.verdict.value,
    }


def _platforms(figures: dict[str, Any]) -> list[str]:
    seen = {platform for key in ("active", "activation", "questions", "funnel") for platform in figures.get(key, {})}
    return [ALL, *sorted(seen - {ALL})]


def _ints(row: dict[str, Any], *, exclude: tuple[str, ...]) -> dict[str, int]:
    return {key: int(value or 0) for key, value in row.items() if key not in exclude}


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _day(value: Any) -> str:
    return f"{value:%Y-%m-%d}" if isinstance(value, date) else str(value)[:10]


def _moment(value: Any) -> str:
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%dT%H:%M:%SZ}"
    return str(value).replace(" ", "T")[:19] + "Z"
