"""The community health report of one week or month: the figures (and the previous period's, for comparisons),
the callouts, the page and the JSON for BI tools. The engine (Athena deployed, DuckDB locally) is passed in."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from memberflow.health import callouts, figures, page
from memberflow.health.queries import QUERIES, Period, QueryEngine, definition

REPORTS_PREFIX = "reports"


@dataclass(frozen=True)
class Report:
    period: Period
    data: dict[str, Any]
    """The JSON: `community`, `generated_at`, `figures`, `previous` (headline figures), `callouts`, `definitions`."""
    html: str

    @property
    def json_bytes(self) -> bytes:
        return json.dumps(self.data, indent=2, sort_keys=False).encode()

    @property
    def html_key(self) -> str:
        return report_key(self.period, "html")

    @property
    def json_key(self) -> str:
        return report_key(self.period, "json")


def report_key(period: Period, extension: str) -> str:
    """Where the page and its JSON live in the reports bucket: `reports/week/2026-W47.html`."""
    return f"{REPORTS_PREFIX}/{period.kind}/{period.label}.{extension}"


def build_report(
    engine: QueryEngine,
    period: Period,
    *,
    community: str,
    now: datetime | None = None,
    table: str = "activity",
) -> Report:
    current = figures.compute(engine, period, table=table)
    previous = figures.compute(engine, period.previous(), table=table, only=figures.HEADLINE_QUERIES)
    definitions = {name: definition(name) for name in QUERIES}
    data = {
        "version": figures.FIGURES_VERSION,
        "community": community,
        "generated_at": f"{(now or datetime.now(UTC)).astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}",
        "figures": current,
        "previous": previous,
        "callouts": callouts.callouts(current, previous),
        "definitions": definitions,
    }
    return Report(period, data, page.render(data, definitions))


def headline(report: Report, link: str) -> str:
    """The Slack announcement (mrkdwn): the headline figures, the first callouts and the link to the page."""
    current = report.data["figures"]
    active = current.get("active", {}).get("all", {})
    activation = current.get("activation", {}).get("all", {})
    churn = current.get("churn_risk", {}).get("all", {}).get("count", 0)
    questions = current.get("questions", {}).get("all", {})
    lines = [
        f"*Community health {report.period.label}* ({report.data['community']})",
        f"WAU {active.get('wau', 0)} · MAU {active.get('mau', 0)} · stickiness {_pct(active.get('stickiness'))} · "
        f"new members {activation.get('new_members', 0)}, activated {_pct(activation.get('rate'))} · "
        f"churn risk {churn} · median first reply {callouts.hours(questions.get('median_seconds_to_first_reply'))} · "
        f"unanswered > 24 h {len(current.get('unanswered', []))}",
    ]
    lines += [f"{c['priority']}. {c['title']}" for c in report.data["callouts"][:3]]
    if link:
        lines.append(f"<{link}|Open the report>")
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"
