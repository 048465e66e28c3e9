"""A campaign's results: per tier and variant, how many were contacted and came back, against the holdout.

A member counts as contacted only when Mailchimp confirmed their tag was added by the run (`tagged`); one it refused
(`refused`) or left as it was (`not_tagged`: not in the audience, or carrying the tag already) was sent nothing and
is counted apart, in neither group. A rate counts only the members whose window has closed (selected more than 14,
or 30, days before the results' day): a member selected last week may still come back within 30 days, so counting
them as "not back" would understate the rate. How many windows are still open is given beside each rate.

The lift is the difference of two proportions (variant minus holdout) with Newcombe's hybrid score interval (95%,
`memberflow.stats`), within -100..100 points; it gets a verdict only once each group has `MIN_GROUP_FOR_VERDICT`
members.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

from memberflow.stats import MIN_GROUP_FOR_VERDICT
from memberflow.stats import lift as measure
from memberflow.winback.assignment import HOLDOUT
from memberflow.winback.campaign import REACTIVATION_WINDOWS, Campaign
from memberflow.winback.ports import NOT_TAGGED, RECORDED, REFUSED, AssignmentRecord

METHOD = (
    "lift = variant rate - holdout rate over the members whose window has closed; 95% CI, Newcombe's hybrid score"
    f" interval (Wilson per group), within -1..1; a verdict only with at least {MIN_GROUP_FOR_VERDICT} members in"
    " each group"
)


def lift(returned: int, n: int, holdout_returned: int, holdout_n: int) -> dict[str, Any]:
    """Variant rate minus holdout rate (percentage points as a fraction) with its 95% CI and verdict; None where
    undefined (a group is empty). `significant` is None, and `verdict` `too_few`, while a group is smaller than
    `MIN_GROUP_FOR_VERDICT`."""
    measured = measure(returned, n, holdout_returned, holdout_n)
    if measured is None:
        return {"difference": None, "ci95": None, "relative": None, "significant": None, "verdict": None}
    return {
        "difference": round(measured.difference, 6),
        "ci95": [round(measured.low, 6), round(measured.high, 6)],
        "relative": round(measured.difference / measured.holdout_rate, 6) if measured.holdout_rate > 0 else None,
        "significant": measured.significant,
        "verdict": measured.verdict.value,
    }


def window_closed(record: AssignmentRecord, days: int, today: date) -> bool:
    """Whether a return within `days` of the selection can no longer happen: a return on the window's last day
    still counts, so the window closes the day after it."""
    return today - record.day > timedelta(days=days)


def _returned_within(record: AssignmentRecord, days: int) -> bool:
    if record.returned_at is None:
        return False
    return record.returned_at.date() - record.day <= timedelta(days=days)


def summarise(campaign: Campaign, records: Iterable[AssignmentRecord], today: date) -> dict[str, Any]:
    groups: dict[tuple[int, str], list[AssignmentRecord]] = {}
    apart: dict[str, dict[tuple[int, str], int]] = {REFUSED: {}, NOT_TAGGED: {}}
    for record in records:
        key = (record.tier_days, record.group)
        if record.status in apart:
            apart[record.status][key] = apart[record.status].get(key, 0) + 1
            continue
        groups.setdefault(key, []).append(record)
    tiers: list[dict[str, Any]] = []
    for tier in campaign.tiers:
        holdout = groups.get((tier.days, HOLDOUT), [])
        rows = []
        for group in [*campaign.tier_tags(tier), HOLDOUT]:
            members = groups.get((tier.days, group), [])
            row: dict[str, Any] = {
                "variant": group or "default",
                "tag": None if group == HOLDOUT else campaign.tier_tags(tier)[group],
                "contacted" if group != HOLDOUT else "held_out": len(members),
                "refused": apart[REFUSED].get((tier.days, group), 0),
                "not_tagged": apart[NOT_TAGGED].get((tier.days, group), 0),
                "pending": sum(record.status == RECORDED for record in members),
            }
            for window in REACTIVATION_WINDOWS:
                closed = [record for record in members if window_closed(record, window, today)]
                returned = sum(_returned_within(record, window) for record in closed)
                row[f"measured_{window}d"] = len(closed)
                row[f"reactivated_{window}d"] = returned
                row[f"rate_{window}d"] = round(returned / len(closed), 6) if closed else None
                row[f"window_open_{window}d"] = len(members) - len(closed)
                if group != HOLDOUT:
                    held = [record for record in holdout if window_closed(record, window, today)]
                    held_returned = sum(_returned_within(record, window) for record in held)
                    row[f"lift_{window}d"] = {
                        "variant": {"n": len(closed), "reactivated": returned},
                        "holdout": {"n": len(held), "reactivated": held_returned},
                        **lift(returned, len(closed), held_returned, len(held)),
                    }
            rows.append(row)
        tiers.append({"tier_days": tier.days, "tag": tier.tag, "groups": rows})
    return {
        "campaign": campaign.id,
        "as_of": today.isoformat(),
        "holdout_share": campaign.holdout_share,
        "reactivation_windows_days": list(REACTIVATION_WINDOWS),
        "min_group_for_verdict": MIN_GROUP_FOR_VERDICT,
        "method": METHOD,
        "tiers": tiers,
    }
