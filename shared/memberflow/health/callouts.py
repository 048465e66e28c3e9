"""The few things a community manager should look at first, with the numbers behind them: comparisons with the
previous period and what waits for someone (unanswered questions, members drifting away). Most urgent first."""

from __future__ import annotations

from collections import Counter
from typing import Any

from memberflow.stats import MIN_GROUP_FOR_VERDICT, Verdict

MAX_CALLOUTS = 5


def callouts(figures: dict[str, Any], previous: dict[str, Any]) -> list[dict[str, Any]]:
    """Each: `title` (the sentence, with its numbers), `detail`, `anchor` (the section of the page), `tone`
    (`alert`, `warn`, `good`, `info`) and `priority` (1 first)."""
    span = "week on week" if figures["period"]["kind"] == "week" else "month on month"
    found: list[tuple[int, dict[str, Any]]] = []

    def add(score: int, tone: str, title: str, detail: str, anchor: str) -> None:
        found.append((score, {"tone": tone, "title": title, "detail": detail, "anchor": anchor}))

    unanswered = figures.get("unanswered") or []
    if unanswered:
        where = Counter(_place(item) for item in unanswered).most_common(1)[0]
        oldest = max(item["hours_waiting"] for item in unanswered)
        add(
            60 + len(unanswered),
            "alert",
            f"{_n(len(unanswered), 'question')} unanswered for more than a day",
            f"{where[1]} in {where[0]}; the oldest has waited {oldest} h.",
            "#questions",
        )

    now_churn = _count(figures, "churn_risk")
    before_churn = _count(previous, "churn_risk")
    if now_churn and before_churn:
        change = (now_churn - before_churn) / before_churn
        if abs(change) >= 0.1:
            up = change > 0
            add(
                55 if up else 15,
                "alert" if up else "good",
                f"churn risk {'up' if up else 'down'} {abs(change):.0%}: {_n(now_churn, 'member')}, list attached",
                f"{before_churn} the {span.split()[0]} before; regulars of the previous 30 days silent for 14.",
                "#churn",
            )
    elif now_churn:
        add(
            50,
            "warn",
            f"{_n(now_churn, 'member')} at churn risk, list attached",
            "Regularly active in the 30 days before the last 14, silent since.",
            "#churn",
        )

    rate, before_rate = _get(figures, "activation", "rate"), _get(previous, "activation", "rate")
    if rate is not None and before_rate is not None and abs(rate - before_rate) >= 0.05:
        fell = rate < before_rate
        new = _get(figures, "activation", "new_members")
        add(
            50 if fell else 12,
            "alert" if fell else "good",
            f"activation {'fell' if fell else 'rose'} from {before_rate:.0%} to {rate:.0%} {span}",
            f"{_get(figures, 'activation', 'activated')} of {new} new members took part within 7 days.",
            "#activation",
        )

    wau, before_wau = _get(figures, "active", "wau"), _get(previous, "active", "wau")
    if wau is not None and before_wau:
        change = (wau - before_wau) / before_wau
        if abs(change) >= 0.1:
            down = change < 0
            add(
                40 if down else 10,
                "warn" if down else "good",
                f"weekly active members {'down' if down else 'up'} {abs(change):.0%}: {before_wau} to {wau}",
                f"MAU {_get(figures, 'active', 'mau')}, stickiness {(_get(figures, 'active', 'stickiness') or 0):.0%}.",
                "#active",
            )

    reply = _get(figures, "questions", "median_seconds_to_first_reply")
    before_reply = _get(previous, "questions", "median_seconds_to_first_reply")
    if reply is not None and before_reply and abs(reply - before_reply) / before_reply >= 0.25:
        slower = reply > before_reply
        add(
            35 if slower else 8,
            "warn" if slower else "good",
            f"median time to first reply {'rose' if slower else 'fell'} from {hours(before_reply)} to {hours(reply)}",
            f"p90 {hours(_get(figures, 'questions', 'p90_seconds_to_first_reply'))}.",
            "#questions",
        )

    for campaign in figures.get("winback") or []:
        if campaign["lift"] is None:
            continue
        name, verdict = campaign["campaign"], campaign.get("verdict")
        interval = f"95% interval {campaign['lift_low'] * 100:+.0f} to {campaign['lift_high'] * 100:+.0f} pts"
        counts = (
            f"{campaign['contacted_reactivated']} of {campaign['contacted_measured']} contacted came back, "
            f"{campaign['holdout_reactivated']} of {campaign['holdout_measured']} held out"
        )
        if verdict == Verdict.WORKS:
            add(
                20,
                "good",
                f"win-back '{name}' works: {campaign['lift'] * 100:+.0f} pts reactivation",
                f"{counts}; {interval}.",
                "#winback",
            )
        elif verdict == Verdict.WORSE:
            add(
                30,
                "warn",
                f"win-back '{name}' does worse than no contact: {campaign['lift'] * 100:+.0f} pts reactivation",
                f"{counts}; {interval}.",
                "#winback",
            )
        elif verdict == Verdict.TOO_FEW:
            add(
                18,
                "info",
                f"win-back '{name}': lift {campaign['lift'] * 100:+.0f} pts, too few members to tell yet",
                f"{counts}; {interval}; a verdict needs at least {MIN_GROUP_FOR_VERDICT} measured in each group.",
                "#winback",
            )
        else:
            add(
                18,
                "info",
                f"win-back '{name}': lift {campaign['lift'] * 100:+.0f} pts, not yet proven",
                f"{interval}: more members (or a longer campaign) are needed to tell.",
                "#winback",
            )

    for event in figures.get("events") or []:
        if event["attendance_rate"] is not None and event["attendance_rate"] < 0.5:
            add(
                25,
                "warn",
                f"event {event['event']}: {event['attendance_rate']:.0%} of registrants came",
                f"{event['no_shows']} no-shows of {event['registrations']} registrations.",
                "#events",
            )

    tickets = [ticket for ticket in figures.get("tickets") or [] if ticket["opened"]]
    if tickets:
        busiest = max(tickets, key=lambda ticket: (ticket["opened"], ticket["category"]))
        add(
            5,
            "info",
            f"most support tickets: {busiest['category']} ({busiest['opened']} opened)",
            f"median first response {hours(busiest['median_first_response_seconds'])}.",
            "#tickets",
        )

    ranked = [callout for _, callout in sorted(found, key=lambda item: -item[0])][:MAX_CALLOUTS]
    return [{"priority": n, **callout} for n, callout in enumerate(ranked, start=1)]


def hours(seconds: int | float | None) -> str:
    if seconds is None:
        return "n/a"
    if seconds < 3600:
        return f"{round(seconds / 60)} min"
    value = seconds / 3600
    return f"{value:.1f} h" if value < 10 else f"{value:.0f} h"


def _place(item: dict[str, Any]) -> str:
    if item["platform"] == "slack" and item.get("channel"):
        return f"Slack channel {item['channel']}"
    return item["platform"].capitalize()


def _count(figures: dict[str, Any], key: str) -> int:
    return int((figures.get(key) or {}).get("all", {}).get("count", 0))


def _get(figures: dict[str, Any], key: str, field: str) -> Any:
    return (figures.get(key) or {}).get("all", {}).get(field)


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
