"""The members table's inactivity index (`active-day`, a GSI): every member profile carries `active_day` =
`<day of last activity, or of joining if never active>#<bucket>`. Written by `member_profiles` with the activity it
records and read by win-back (`winback_store`); kept apart so that writing it loads nothing of win-back."""

from __future__ import annotations

import hashlib
from datetime import date

ACTIVE_DAY_INDEX = "active-day"
ACTIVE_DAY_ATTRIBUTE = "active_day"
ACTIVE_DAY_BUCKETS = 4
"""The buckets spread one busy day's writes over several index partitions."""


def active_day_key(member_id: str, day: date) -> str:
    """The index key of a member last active (or joined) on `day`."""
    bucket = hashlib.sha256(member_id.encode()).digest()[0] % ACTIVE_DAY_BUCKETS
    return f"{day.isoformat()}#{bucket}"
