"""A campaign's results: per tier and variant, how many were contacted and came back, against the holdout.

The lift is the difference of two proportions (variant minus holdout) with a 95% confidence interval (normal
approximation, unpooled standard error), so a small difference on small groups shows as the interval it is.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

from memberflow.winback.assignment import HOLDOUT
from memberflow.winback.campaign import REACTIVATION_WINDOWS, Campaign
from memberflow.winback.ports import AssignmentRecord

Z_95 = 1.959963984540054


def lift(returned: int, n: int, holdout_returned: int, holdout_n: int) -> dict[str, Any]:
    """Variant rate minus holdout rate (percentage points as a fraction) with its 95% CI; None where undefined."""
    if n == 0 or holdout_n == 0:
        return {"difference": None, "ci95": None, "relative": None, "significant": None}
    p1, p2 = returned / n, holdout_returned / holdout_n
    difference = p1 - p2
    se = math.sqrt(p1 * (1 - p1) / n + p2 * (1 - p2) / holdout_n)
    low, high = difference - Z_95 * se, difference + Z_95 * se
    return {
        "difference": round(difference, 6),
        "ci95": [round(low, 6), round(high, 6)],
        "relative": round(difference / p2, 6) if p2 > 0 else None,
        "significant": bool(low > 0 or high < 0),
    }


def _returned_within(record: AssignmentRecord, days: int) -> bool:
    if record.returned_at is None:
        return False
    return record.returned_at.date() - record.day <= timedelta(days=days)


def summarise(campaign: Campaign, records: Iterable[AssignmentRecord], today: date) -> dict[str, Any]:
    groups: dict[tuple[int, str], list[AssignmentRecord]] = {}
    refused: dict[tuple[int, str], int] = {}
    for record in records:
        key = (record.tier_days, record.group)
        if record.status == "refused":
            refused[key] = refused.get(key, 0) + 1
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
                "refused": refused.get((tier.days, group), 0),
                "pending": sum(record.status == "recorded" for record in members),
            }
            for window in REACTIVATION_WINDOWS:
                returned = sum(_returned_within(record, window) for record in members)
                open_windows = sum(today - record.day < timedelta(days=window) for record in members)
                row[f"reactivated_{window}d"] = returned
                row[f"rate_{window}d"] = round(returned / len(members), 6) if members else None
                row[f"window_open_{window}d"] = open_windows
                if group != HOLDOUT:
                    held_returned = sum(_returned_within(record, window) for record in holdout)
                    row[f"lift_{window}d"] = {
                        "variant": {"n": len(members), "reactivated": returned},
                        "holdout": {"n": len(holdout), "reactivated": held_returned},
                        **lift(returned, len(members), held_returned, len(holdout)),
                    }
            rows.append(row)
        tiers.append({"tier_days": tier.days, "tag": tier.tag, "groups": rows})
    return {
        "campaign": campaign.id,
        "as_of": today.isoformat(),
        "holdout_share": campaign.holdout_share,
        "reactivation_windows_days": list(REACTIVATION_WINDOWS),
        "method": "lift = variant rate - holdout rate; 95% CI, two-proportion normal approximation (unpooled)",
        "tiers": tiers,
    }
