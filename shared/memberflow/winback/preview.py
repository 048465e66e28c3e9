"""What a run would do today, without doing it: who would be contacted (with which tag), held out or excluded and
why. It reads the same index and applies the same rules as the run, and writes nothing."""

from __future__ import annotations

from datetime import date
from typing import Any

from memberflow.privacy import mask_email
from memberflow.winback.assignment import HOLDOUT
from memberflow.winback.campaign import Campaign
from memberflow.winback.ports import WinbackStore
from memberflow.winback.selection import decide, first_day, segments


def preview(
    campaign: Campaign, today: date, store: WinbackStore, *, limit: int = 1000, show_addresses: bool = False
) -> dict[str, Any]:
    """Counts per outcome, and up to `limit` members with theirs. Addresses are masked unless `show_addresses`."""
    state = store.state(campaign.id)
    start = first_day(state.done_through, today, campaign) if state.done_through != today else today
    counts = {"contacted": 0, "held_out": 0, "excluded": 0}
    reasons: dict[str, int] = {}
    tags: dict[str, int] = {}
    members: list[dict[str, Any]] = []
    for segment in segments(start, today, campaign):
        cursor: str | None = None
        while True:
            page = store.candidates(segment.active_day, cursor, 500)
            for candidate in page.candidates:
                decision = decide(candidate, campaign, segment.tier, segment.day)
                if decision.group is None:
                    outcome, why = "excluded", str(decision.exclusion)
                    reasons[why] = reasons.get(why, 0) + 1
                elif decision.group == HOLDOUT:
                    outcome, why = "held_out", "holdout (measures the lift)"
                else:
                    outcome, why = "contacted", f"tag {decision.tag}"
                    assert decision.tag
                    tags[decision.tag] = tags.get(decision.tag, 0) + 1
                counts[outcome] += 1
                if len(members) < limit:
                    email = candidate.email or ""
                    members.append(
                        {
                            "member_id": candidate.member_id,
                            "email": email if show_addresses else (mask_email(email) or ""),
                            "tier_days": segment.tier.days,
                            "inactive_since": candidate.active_day.isoformat(),
                            "outcome": outcome,
                            "why": why,
                        }
                    )
            cursor = page.next_cursor
            if cursor is None:
                break
    return {
        "campaign": campaign.id,
        "day": today.isoformat(),
        "covers": [start.isoformat(), today.isoformat()],
        "counts": counts,
        "excluded_by_reason": reasons,
        "tags": tags,
        "members": members,
        "members_listed": len(members),
        "contacts_nobody": True,
    }
