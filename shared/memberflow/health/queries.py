"""The report's SQL: one file per metric in `sql/` (its definition in its opening comment), and one per step several
metrics share (`SHARED_STEPS`), written in the dialect both Athena (Trino) and DuckDB run. Each file reads the
activity log through `{table}`, restricted to the day partitions the period needs (`dt BETWEEN '{scan_from}' AND
'{scan_last}'`: Athena reads no other partition), and the period's bounds as timestamp literals. The "first ever"
figures (new members and cohorts: a member's first join; first-time event attendees: no earlier attendance) also read
the joins or attendance of the whole retained log, in one further scan bounded the same way (`dt BETWEEN
'{history_from}' AND '{scan_last}'`: `RETAINED_DAYS`).

Portability rules the files keep: `date_diff(unit, a, b)`, `date_trunc('week', ts)` (ISO weeks, Monday), `INTERVAL
'n' DAY`, `GROUPING SETS`, `approx_percentile(x, p)` (DuckDB gets it as a macro over the exact `quantile_disc`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from importlib import resources
from typing import Any, Literal, Protocol

QUERIES = (
    "daily_active",
    "active_members",
    "weekly_active",
    "activation",
    "cohorts",
    "churn_risk",
    "questions",
    "unanswered",
    "tickets",
    "events",
    "winback",
    "funnel",
)
TREND_WEEKS = 8
CHURN_LOOKBACK_DAYS = 44
MONTH_DAYS = 30
RETAINED_DAYS = 400
"""How long the activity log is kept by default (`ActivityRetentionDays`, template.yaml; a period's `retained_days`):
how far back a "first ever" look reads, the day partitions of those days up to the period's last day."""
LOOKBACK: dict[str, str] = {
    "daily_active": "period",
    "questions": "period",
    "activation": "period",
    "events": "period",
    "active_members": "month",
    "unanswered": "month",
    "churn_risk": "churn",
}
"""How far back before the period's end a query's main scan reads (the day partitions Athena scans): the period
itself (activation's and events' other records matter only from the period's start: what came before is in their
history scan), the 30 days of MAU and of unanswered questions, the 44 days of churn risk; every other query reads the
eight trend weeks (cohorts, the funnel's steps, win-back, tickets)."""
HISTORY = frozenset({"activation", "cohorts", "funnel", "events"})
"""The queries with a second, narrow scan over the retained log (`retained_days`): the joins and imports (activation,
cohorts, funnel) or the attendance (events) of every member, so that "first" means first in the whole log, not first
in the weeks the main scan reads. Athena reads each named day's objects whole (gzip JSON lines: no column pruning),
so this scan costs the bytes of the retained days, once per query; nothing else reads them."""

SHARED_STEPS = ("first_joins",)
"""Steps several queries share, one file each in `sql/` (common table expressions after an opening comment): a query
names one where it belongs in its WITH list (`{first_joins}`), and `render` puts the step's SQL there, so the queries
cannot drift apart on what they have in common."""

_WEEK = re.compile(r"(\d{4})-W(\d{2})")
_MONTH = re.compile(r"(\d{4})-(\d{2})")


class QueryEngine(Protocol):
    """Runs one query; rows as dicts with Python values (int, float, str, bool, date, datetime, None)."""

    def run(self, name: str, sql: str) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class Period:
    kind: Literal["week", "month"]
    label: str
    """`2026-W47` or `2026-11`."""
    start: date
    end: date
    """The day after the period (exclusive)."""
    retained_days: int = RETAINED_DAYS
    """How long the activity log is kept (the deployment's `ActivityRetentionDays`): where "first ever" looks from."""

    @classmethod
    def parse(cls, text: str) -> Period:
        """`2026-W47` (an ISO week) or `2026-11` (a month)."""
        week = _WEEK.fullmatch(text.strip())
        if week:
            try:
                start = date.fromisocalendar(int(week[1]), int(week[2]), 1)
            except ValueError as error:
                raise ValueError(f"{text!r} is no ISO week") from error
            return cls.week_of(start)
        month = _MONTH.fullmatch(text.strip())
        if month and 1 <= int(month[2]) <= 12:
            return cls.month_of(date(int(month[1]), int(month[2]), 1))
        raise ValueError(f"{text!r}: give an ISO week (2026-W47) or a month (2026-11)")

    @classmethod
    def week_of(cls, day: date) -> Period:
        start = day - timedelta(days=day.weekday())
        year, week, _ = start.isocalendar()
        return cls("week", f"{year}-W{week:02d}", start, start + timedelta(days=7))

    @classmethod
    def month_of(cls, day: date) -> Period:
        start = day.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
        return cls("month", f"{start:%Y-%m}", start, end)

    def previous(self) -> Period:
        if self.kind == "week":
            before = Period.week_of(self.start - timedelta(days=7))
        else:
            before = Period.month_of(self.start - timedelta(days=1))
        return replace(before, retained_days=self.retained_days)

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days)]

    @property
    def trend_from(self) -> date:
        """The Monday of the first of the eight ISO weeks up to the period's last day."""
        last = self.end - timedelta(days=1)
        return last - timedelta(days=last.weekday()) - timedelta(weeks=TREND_WEEKS - 1)

    @property
    def history_from(self) -> date:
        """The first day partition of the retained log as of the period's end: where "first ever" looks from."""
        return self.scan_last - timedelta(days=self.retained_days - 1)

    @property
    def scan_from(self) -> date:
        """The first day partition any query of the period reads (the history scans': the retained log)."""
        return min(self.start, self.trend_from, self.end - timedelta(days=CHURN_LOOKBACK_DAYS), self.history_from)

    @property
    def scan_last(self) -> date:
        return self.end - timedelta(days=1)

    def scan_from_for(self, name: str) -> date:
        """The first day partition query `name`'s main scan reads (`{scan_from}`)."""
        reach = LOOKBACK.get(name, "trend")
        if reach == "period":
            return self.start
        if reach == "month":
            return min(self.start, self.end - timedelta(days=MONTH_DAYS))
        if reach == "churn":
            return min(self.start, self.end - timedelta(days=CHURN_LOOKBACK_DAYS))
        return min(self.start, self.trend_from)

    def scans(self, name: str) -> list[tuple[date, date]]:
        """The day partitions (first, last) each scan of query `name` reads: its main scan, and the retained log's
        for the queries in `HISTORY`. Athena bills each scan's partitions."""
        ranges = [(self.scan_from_for(name), self.scan_last)]
        if name in HISTORY:
            ranges.append((self.history_from, self.scan_last))
        return ranges

    def weeks(self) -> list[date]:
        """The Mondays of the trend's weeks."""
        return [self.trend_from + timedelta(weeks=n) for n in range(TREND_WEEKS)]


def sql_text(name: str) -> str:
    return resources.files("memberflow.health").joinpath("sql", f"{name}.sql").read_text()


def definition(name: str) -> str:
    """The metric's definition: the opening comment of its file, without the name."""
    lines = [line[2:].strip() for line in sql_text(name).splitlines() if line.startswith("--")]
    return " ".join(lines).split(":", 1)[1].strip()


def render(name: str, period: Period, table: str = "activity") -> str:
    values: Mapping[str, str] = {
        "table": table,
        "scan_from": f"{period.scan_from_for(name):%Y-%m-%d}",
        "scan_last": f"{period.scan_last:%Y-%m-%d}",
        "history_from": f"{period.history_from:%Y-%m-%d}",
        "start": _timestamp(period.start),
        "end": _timestamp(period.end),
        "trend_from": _timestamp(period.trend_from),
    }
    with_steps = re.sub(
        r"\{(\w+)\}", lambda match: _step(match[1]) if match[1] in SHARED_STEPS else match[0], sql_text(name)
    )
    return re.sub(r"\{(\w+)\}", lambda match: values[match.group(1)], with_steps)


def _step(name: str) -> str:
    """A shared step's SQL, without its opening comment (the reader of the query finds it in the step's file)."""
    return "\n".join(line for line in sql_text(name).splitlines() if not line.startswith("--"))


def _timestamp(day: date) -> str:
    return f"TIMESTAMP '{datetime(day.year, day.month, day.day):%Y-%m-%d %H:%M:%S}'"
