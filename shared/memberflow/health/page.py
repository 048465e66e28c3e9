"""The report as one self-contained HTML page: inline CSS, charts drawn as inline SVG, no scripts, no fonts, images
or styles fetched from anywhere (readable offline and in a mail client's browser view). Every chart is an
`<svg class="chart">` whose data points are the elements of class `mark` (what the browser test checks)."""

from __future__ import annotations

from html import escape
from typing import Any

from memberflow.health.callouts import hours

COLOURS = {"all": "#3b5bdb", "slack": "#e8590c", "discourse": "#2b8a3e", "discord": "#7048e8", "generic": "#868e96"}
TONES = {"alert": "#c92a2a", "warn": "#e67700", "good": "#2b8a3e", "info": "#1c7ed6"}

CSS = """
body{font:15px/1.45 -apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;color:#212529;margin:0;
background:#f8f9fa}
main{max-width:980px;margin:0 auto;padding:24px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:32px 0 8px;border-bottom:1px solid #dee2e6;padding-bottom:4px}
.sub{color:#495057;margin:0 0 16px}
.callouts{list-style:none;padding:0;margin:0}
.callouts li{background:#fff;border-left:6px solid;padding:10px 14px;margin:8px 0;border-radius:4px}
.callouts a{color:inherit;font-weight:600;text-decoration:none}.callouts p{margin:2px 0 0;color:#495057}
.tiles{display:flex;flex-wrap:wrap;gap:10px;margin:8px 0}
.tile{background:#fff;border-radius:6px;padding:10px 14px;min-width:120px}
.tile b{display:block;font-size:22px}.tile span{color:#495057;font-size:13px}
table{border-collapse:collapse;background:#fff;margin:8px 0;font-size:14px}
th,td{padding:5px 10px;border-bottom:1px solid #e9ecef;text-align:right}th:first-child,td:first-child{text-align:left}
svg.chart{background:#fff;border-radius:6px;display:block;margin:8px 0}
svg text{font:12px -apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;fill:#495057}
.def{color:#495057;font-size:13px;margin:4px 0}.empty{color:#868e96;font-style:italic}
code{font-size:12px}
"""


def render(report: dict[str, Any], definitions: dict[str, str]) -> str:
    figures = report["figures"]
    period = figures["period"]
    title = f"{report['community']}: community health, {period['label']}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # Nothing may be fetched: no scripts, and images, fonts, styles only from the page itself.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
        'img-src data:">',
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body><main>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="sub">{escape(period["start"])} to {escape(_last_day(period))} (UTC) · compared with '
        f"{escape(report['previous']['period']['label'])} · generated {escape(report['generated_at'])}</p>",
        _callouts(report["callouts"]),
        _active(figures, definitions),
        _activation(figures, definitions),
        _funnel(figures, definitions),
        _cohorts(figures, definitions),
        _churn(figures, definitions),
        _questions(figures, definitions),
        _tickets(figures, definitions),
        _events(figures, definitions),
        _winback(figures, definitions),
        "</main></body></html>",
    ]
    return "\n".join(parts)


# ---------------------------------------------------------------------------------------------------- sections


def _callouts(callouts: list[dict[str, Any]]) -> str:
    if not callouts:
        return '<h2 id="callouts">What to look at</h2><p class="empty">Nothing stands out this period.</p>'
    items = "".join(
        f'<li style="border-color:{TONES[c["tone"]]}"><a href="{escape(c["anchor"])}">{c["priority"]}. '
        f"{escape(c['title'])}</a><p>{escape(c['detail'])}</p></li>"
        for c in callouts
    )
    return f'<h2 id="callouts">What to look at</h2><ol class="callouts">{items}</ol>'


def _active(figures: dict[str, Any], defs: dict[str, str]) -> str:
    active = figures.get("active", {})
    everyone = active.get("all")
    if not everyone:
        return _section("active", "Active members", '<p class="empty">No activity recorded.</p>', defs, "daily_active")
    tiles = _tiles(
        [
            (f"{everyone['dau']:g}", "average DAU"),
            (str(everyone["wau"]), "WAU"),
            (str(everyone["mau"]), "MAU"),
            (_pct(everyone["stickiness"]), "stickiness (DAU/MAU)"),
        ]
    )
    rows = [[p, f"{a['dau']:g}", a["wau"], a["mau"], _pct(a["stickiness"])] for p, a in _by_platform(active, figures)]
    table = _table(["platform", "avg DAU", "WAU", "MAU", "stickiness"], rows)
    daily = bar_chart(
        "daily-active", [(d["day"][5:], d["members"]) for d in everyone["daily"]], "members active per day (all)"
    )
    weekly = line_chart(
        "weekly-active",
        {p: [(w["week"][5:], w["members"]) for w in series] for p, series in figures.get("weekly_active", {}).items()},
        "members active per week",
    )
    body = tiles + daily + weekly + table
    return _section("active", "Active members", body, defs, "daily_active", "active_members", "weekly_active")


def _activation(figures: dict[str, Any], defs: dict[str, str]) -> str:
    activation = figures.get("activation", {})
    rows = [
        [
            p,
            a["new_members"],
            a["activated"],
            _pct(a["rate"]),
            hours(a["median_seconds_to_first_activity"]),
            hours(a["p90_seconds_to_first_activity"]),
        ]
        for p, a in _by_platform(activation, figures)
    ]
    if not rows:
        return _section("activation", "New members and activation", '<p class="empty">Nobody joined.</p>', defs)
    chart = bar_chart(
        "activation",
        [(p, round((a["rate"] or 0) * 100)) for p, a in _by_platform(activation, figures)],
        "activated within 7 days (%)",
        unit="%",
    )
    table = _table(["platform", "new members", "activated", "rate", "median to 1st activity", "p90"], rows)
    return _section("activation", "New members and activation", chart + table, defs, "activation")


def _funnel(figures: dict[str, Any], defs: dict[str, str]) -> str:
    funnel = figures.get("funnel", {}).get("all")
    if not funnel or not funnel["joined"]:
        return _section("funnel", "Onboarding funnel", '<p class="empty">Nobody joined.</p>', defs, "funnel")
    steps = [
        ("joined", funnel["joined"]),
        ("in Mailchimp", funnel["mailchimp_added"]),
        ("welcomed", funnel["welcomed"]),
        ("drip finished", funnel["drip_finished"]),
        ("active", funnel["active"]),
    ]
    rows = [
        [p, f["joined"], f["mailchimp_added"], f["welcomed"], f["drip_finished"], f["active"]]
        for p, f in _by_platform(figures.get("funnel", {}), figures)
    ]
    table = _table(["platform", "joined", "in Mailchimp", "welcomed", "drip finished", "active"], rows)
    return _section("funnel", "Onboarding funnel", hbar_chart("funnel", steps) + table, defs, "funnel")


def _cohorts(figures: dict[str, Any], defs: dict[str, str]) -> str:
    cohorts = figures.get("cohorts", {}).get("all", [])
    if not cohorts:
        return _section("cohorts", "Weekly cohorts", '<p class="empty">No joins in the last eight weeks.</p>', defs)
    return _section("cohorts", "Weekly cohorts × weeks retained", heatmap("cohorts", cohorts), defs, "cohorts")


def _churn(figures: dict[str, Any], defs: dict[str, str]) -> str:
    churn = figures.get("churn_risk", {})
    everyone = churn.get("all", {"count": 0, "members": []})
    counts = [(p, c["count"]) for p, c in _by_platform(churn, figures)]
    body = _tiles([(str(everyone["count"]), "members at churn risk")])
    if counts:
        body += bar_chart("churn-risk", counts, "members at churn risk by platform")
    if everyone["members"]:
        rows = [[m["member"], m["active_days"], m["last_active"][:10]] for m in everyone["members"]]
        body += "<p>The list for win-back (members as the activity log names them):</p>"
        body += _table(["member (keyed hash)", "active days", "last active"], rows, code_first=True)
    return _section("churn", "Churn risk", body, defs, "churn_risk")


def _questions(figures: dict[str, Any], defs: dict[str, str]) -> str:
    questions = figures.get("questions", {})
    rows = [
        [
            p,
            q["questions"],
            q["answered"],
            hours(q["median_seconds_to_first_reply"]),
            hours(q["p90_seconds_to_first_reply"]),
        ]
        for p, q in _by_platform(questions, figures)
    ]
    body = ""
    if rows:
        body += grouped_bar_chart(
            "reply-times",
            [
                (p, [q["median_seconds_to_first_reply"] or 0, q["p90_seconds_to_first_reply"] or 0])
                for p, q in _by_platform(questions, figures)
            ],
            ["median", "p90"],
            "time to first reply (hours)",
            scale=1 / 3600,
        )
        body += _table(["platform", "questions", "answered", "median to 1st reply", "p90"], rows)
    else:
        body += '<p class="empty">No questions asked.</p>'
    unanswered = figures.get("unanswered", [])
    body += f"<h3>Unanswered for more than 24 hours ({len(unanswered)})</h3>"
    if unanswered:
        items = "".join(
            f"<li>{_link(u['link'], u['platform'] + (' ' + u['channel'] if u.get('channel') else ''))}, asked "
            f"{escape(u['asked_at'][:16].replace('T', ' '))}, waiting {u['hours_waiting']} h</li>"
            for u in unanswered
        )
        body += f"<ul>{items}</ul>"
    else:
        body += '<p class="empty">None.</p>'
    return _section("questions", "Questions and replies", body, defs, "questions", "unanswered")


def _tickets(figures: dict[str, Any], defs: dict[str, str]) -> str:
    tickets = figures.get("tickets", [])
    if not tickets:
        return _section("tickets", "Support tickets", '<p class="empty">No tickets.</p>', defs, "tickets")
    chart = grouped_bar_chart(
        "tickets", [(t["category"], [t["opened"], t["solved"]]) for t in tickets], ["opened", "solved"], "tickets"
    )
    rows = [
        [
            t["category"],
            t["opened"],
            t["solved"],
            hours(t["median_first_response_seconds"]),
            hours(t["median_resolution_seconds"]),
        ]
        for t in tickets
    ]
    table = _table(["category", "opened", "solved", "median first response", "median resolution"], rows)
    return _section("tickets", "Support tickets", chart + table, defs, "tickets")


def _events(figures: dict[str, Any], defs: dict[str, str]) -> str:
    events = figures.get("events", [])
    if not events:
        return _section("events", "Events", '<p class="empty">No events.</p>', defs, "events")
    chart = grouped_bar_chart(
        "events",
        [(e["event"], [e["registrations"], e["attended"], e["no_shows"]]) for e in events],
        ["registered", "attended", "no-show"],
        "registrations and attendance",
    )
    rows = [
        [
            e["event"],
            e["registrations"],
            e["attended"],
            e["no_shows"],
            _pct(e["attendance_rate"]),
            e["first_time"],
            e["returning"],
        ]
        for e in events
    ]
    table = _table(["event", "registered", "attended", "no-shows", "attendance", "first time", "returning"], rows)
    return _section("events", "Events", chart + table, defs, "events")


VERDICTS = {
    "works": "works",
    "worse": "worse than no contact",
    "not_shown": "not shown",
    "too_few": "too few to tell",
}
"""The lift's verdict (`memberflow.stats.Verdict`) as the page words it."""


def _winback(figures: dict[str, Any], defs: dict[str, str]) -> str:
    campaigns = figures.get("winback", [])
    if not campaigns:
        return _section("winback", "Win-back", '<p class="empty">No win-back campaign.</p>', defs, "winback")
    rows = [
        [
            c["campaign"],
            c["contacted"],
            f"{c['contacted_reactivated']} of {c['contacted_measured']}",
            c["holdout"],
            f"{c['holdout_reactivated']} of {c['holdout_measured']}",
            c["contacted_open"] + c["holdout_open"],
            _pts(c["lift"]),
            f"{_pts(c['lift_low'])} to {_pts(c['lift_high'])}" if c["lift"] is not None else "n/a",
            VERDICTS.get(c["verdict"], "n/a"),
        ]
        for c in campaigns
    ]
    table = _table(
        [
            "campaign",
            "contacted",
            "came back",
            "held out",
            "came back",
            "14 days not yet over",
            "lift",
            "95% interval",
            "verdict",
        ],
        rows,
    )
    return _section("winback", "Win-back", lift_chart("winback", campaigns) + table, defs, "winback")


# ---------------------------------------------------------------------------------------------------- charts

W, H, PAD_L, PAD_B, PAD_T = 900, 190, 44, 28, 24


def bar_chart(name: str, points: list[tuple[str, float]], title: str, *, unit: str = "") -> str:
    top = max([value for _, value in points] + [1])
    slot = (W - PAD_L - 10) / max(len(points), 1)
    marks = []
    for n, (label, value) in enumerate(points):
        height = (H - PAD_B - PAD_T) * value / top
        x = PAD_L + n * slot + slot * 0.15
        y = H - PAD_B - height
        marks.append(
            f'<rect class="mark" data-value="{value}" x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" '
            f'height="{max(height, 1):.1f}" fill="{COLOURS["all"]}">'
            f"<title>{escape(label)}: {value}{unit}</title></rect>"
            f'<text x="{x + slot * 0.35:.1f}" y="{y - 4:.1f}" text-anchor="middle">{value:g}{unit}</text>'
            f'<text x="{x + slot * 0.35:.1f}" y="{H - 10}" text-anchor="middle">{escape(label)}</text>'
        )
    return _svg(name, title, "".join(marks), len(points))


def grouped_bar_chart(
    name: str, groups: list[tuple[str, list[float]]], series: list[str], title: str, *, scale: float = 1.0
) -> str:
    palette = ["#3b5bdb", "#f59f00", "#c92a2a"]
    top = max([value * scale for _, values in groups for value in values] + [1])
    slot = (W - PAD_L - 10) / max(len(groups), 1)
    width = slot * 0.7 / len(series)
    marks = []
    for n, (label, values) in enumerate(groups):
        for k, value in enumerate(values):
            shown = value * scale
            height = (H - PAD_B - PAD_T) * shown / top
            x = PAD_L + n * slot + slot * 0.15 + k * width
            marks.append(
                f'<rect class="mark" data-value="{value}" x="{x:.1f}" y="{H - PAD_B - height:.1f}" '
                f'width="{width * 0.9:.1f}" height="{max(height, 1):.1f}" fill="{palette[k % 3]}">'
                f"<title>{escape(label)} {escape(series[k])}: {shown:.1f}</title></rect>"
                f'<text x="{x + width * 0.45:.1f}" y="{H - PAD_B - height - 4:.1f}" text-anchor="middle">'
                f"{shown:.1f}</text>".replace(".0<", "<")
            )
        marks.append(
            f'<text x="{PAD_L + n * slot + slot / 2:.1f}" y="{H - 10}" text-anchor="middle">{escape(label)}</text>'
        )
    legend = "".join(
        f'<rect x="{PAD_L + 110 * k}" y="6" width="10" height="10" fill="{palette[k % 3]}"/>'
        f'<text x="{PAD_L + 110 * k + 14}" y="15">{escape(s)}</text>'
        for k, s in enumerate(series)
    )
    return _svg(name, title, legend + "".join(marks), len(groups) * len(series))


def line_chart(name: str, series: dict[str, list[tuple[str, float]]], title: str) -> str:
    ordered = sorted(series.items(), key=lambda item: (item[0] != "all", item[0]))
    top = max([value for _, points in ordered for _, value in points] + [1])
    count = max((len(points) for _, points in ordered), default=1)
    step = (W - PAD_L - 30) / max(count - 1, 1)
    body, marks = [], 0
    for k, (platform, points) in enumerate(ordered):
        colour = COLOURS.get(platform, "#868e96")
        xy = [
            (PAD_L + 10 + n * step, H - PAD_B - (H - PAD_B - PAD_T) * value / top)
            for n, (_, value) in enumerate(points)
        ]
        body.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2.5" points="'
            + " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
            + '"/>'
        )
        for (x, y), (label, value) in zip(xy, points, strict=True):
            marks += 1
            body.append(
                f'<circle class="mark" data-value="{value}" cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}">'
                f"<title>{escape(platform)} {escape(label)}: {value}</title></circle>"
            )
        body.append(f'<rect x="{PAD_L + 110 * k}" y="6" width="10" height="10" fill="{colour}"/>')
        body.append(f'<text x="{PAD_L + 110 * k + 14}" y="15">{escape(platform)}</text>')
    if ordered:
        for n, (label, _) in enumerate(ordered[0][1]):
            body.append(
                f'<text x="{PAD_L + 10 + n * step:.1f}" y="{H - 10}" text-anchor="middle">{escape(label)}</text>'
            )
    return _svg(name, title, "".join(body), marks)


def hbar_chart(name: str, steps: list[tuple[str, int]]) -> str:
    top = max([value for _, value in steps] + [1])
    row = 34
    height = row * len(steps) + 16
    body = []
    for n, (label, value) in enumerate(steps):
        width = (W - 260) * value / top
        y = 8 + n * row
        body.append(
            f'<text x="8" y="{y + 20}">{escape(label)}</text>'
            f'<rect class="mark" data-value="{value}" x="130" y="{y}" width="{max(width, 1):.1f}" height="26" '
            f'fill="{COLOURS["all"]}" fill-opacity="{1 - n * 0.12:.2f}"><title>{escape(label)}: {value}</title></rect>'
            f'<text x="{136 + width:.1f}" y="{y + 18}">{value} ({value / steps[0][1]:.0%})</text>'
        )
    return _svg(
        name, "onboarding funnel of the period's new members (all platforms)", "".join(body), len(steps), height
    )


def heatmap(name: str, cohorts: list[dict[str, Any]]) -> str:
    cell_w, cell_h, left, top_pad = 88, 28, 150, 30
    body = [f'<text x="{left + k * cell_w + cell_w / 2}" y="20" text-anchor="middle">week {k}</text>' for k in range(8)]
    marks = 0
    for n, cohort in enumerate(cohorts):
        y = top_pad + n * cell_h
        body.append(f'<text x="8" y="{y + 19}">{escape(cohort["week"])} ({cohort["size"]})</text>')
        for k, value in enumerate(cohort["retained"]):
            if value is None:
                continue
            share = value / cohort["size"] if cohort["size"] else 0
            marks += 1
            body.append(
                f'<rect class="mark" data-value="{value}" x="{left + k * cell_w}" y="{y}" width="{cell_w - 2}" '
                f'height="{cell_h - 2}" fill="{COLOURS["all"]}" fill-opacity="{0.08 + 0.92 * share:.2f}">'
                f"<title>{escape(cohort['week'])} week {k}: {value} of {cohort['size']}</title></rect>"
                f'<text x="{left + k * cell_w + cell_w / 2}" y="{y + 18}" text-anchor="middle" '
                f'style="fill:{"#fff" if share > 0.5 else "#212529"}">{value} · {share:.0%}</text>'
            )
    height = top_pad + cell_h * len(cohorts) + 8
    return _svg(name, "members of each join week active in the weeks after", "".join(body), marks, height)


def lift_chart(name: str, campaigns: list[dict[str, Any]]) -> str:
    """Reactivation of the contacted and of the holdout per campaign, and the lift's 95% interval."""
    groups = [
        (c["campaign"], [round((c["contacted_rate"] or 0) * 100), round((c["holdout_rate"] or 0) * 100)])
        for c in campaigns
    ]
    return grouped_bar_chart(name, groups, ["contacted came back %", "holdout came back %"], "win-back reactivation")


def _svg(name: str, title: str, body: str, marks: int, height: int = H) -> str:
    return (
        f'<svg class="chart" data-chart="{escape(name)}" data-marks="{marks}" role="img" '
        f'aria-label="{escape(title)}" viewBox="0 0 {W} {height}" width="100%" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>{body}</svg>'
    )


# ---------------------------------------------------------------------------------------------------- pieces


def _section(anchor: str, title: str, body: str, defs: dict[str, str], *queries: str) -> str:
    definitions = "".join(f'<p class="def"><b>{escape(q)}</b>: {escape(defs[q])}</p>' for q in queries if q in defs)
    return f'<section id="{anchor}"><h2>{escape(title)}</h2>{body}{definitions}</section>'


def _tiles(tiles: list[tuple[str, str]]) -> str:
    return (
        '<div class="tiles">'
        + "".join(
            f'<div class="tile"><b>{escape(value)}</b><span>{escape(label)}</span></div>' for value, label in tiles
        )
        + "</div>"
    )


def _table(head: list[str], rows: list[list[Any]], *, code_first: bool = False) -> str:
    header = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td><code>{escape(str(cell))}</code></td>" if code_first and n == 0 else f"<td>{escape(str(cell))}</td>"
            for n, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>"


def _by_platform(values: dict[str, Any], figures: dict[str, Any]) -> list[tuple[str, Any]]:
    return [(p, values[p]) for p in figures.get("platforms", ["all"]) if p in values]


def _link(url: str, text: str) -> str:
    if not url:
        return escape(text)
    return f'<a href="{escape(url)}">{escape(text)}</a>'


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _pts(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:+.0f} pts"


def _last_day(period: dict[str, str]) -> str:
    from datetime import date, timedelta

    return f"{date.fromisoformat(period['end']) - timedelta(days=1):%Y-%m-%d}"
