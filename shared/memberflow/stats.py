"""The lift of a contact against a holdout: the difference of two proportions with its 95% interval, and the
verdict the win-back results and the health report give on it. Pure arithmetic, shared by both (capabilities do
not import each other).

The interval is Newcombe's hybrid score interval (Newcombe 1998, method 10): a Wilson score interval per group,
combined. Unlike the normal approximation (Wald) it stays honest when a group's rate is 0 or 1 (a holdout where
nobody came back is common with a 10% holdout) or a group is small, and it never leaves -1..1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

Z_95 = 1.959963984540054
"""The standard normal quantile for a two-sided 95% interval."""

MIN_GROUP_FOR_VERDICT = 30
"""Members each group (contacted, held out) needs before the lift gets a verdict. Below it the interval is still
given, but neither "works" nor "worse" is said: a handful of members proves nothing either way."""


class Verdict(StrEnum):
    WORKS = "works"
    """At least `MIN_GROUP_FOR_VERDICT` in each group and the interval above 0."""
    WORSE = "worse"
    """At least `MIN_GROUP_FOR_VERDICT` in each group and the interval below 0."""
    NOT_SHOWN = "not_shown"
    """Enough members, but the interval includes 0."""
    TOO_FEW = "too_few"
    """A group has fewer than `MIN_GROUP_FOR_VERDICT` members: no verdict yet."""


def wilson_interval(hits: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of the proportion hits / n (within 0..1)."""
    if n <= 0 or not 0 <= hits <= n:
        raise ValueError(f"need 0 <= hits <= n and n > 0, got {hits} of {n}")
    p = hits / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def difference_interval(hits: int, n: int, other_hits: int, other_n: int, z: float = Z_95) -> tuple[float, float]:
    """Newcombe's hybrid score interval of hits/n - other_hits/other_n, kept within -1..1."""
    p1, p2 = hits / n, other_hits / other_n
    low1, high1 = wilson_interval(hits, n, z)
    low2, high2 = wilson_interval(other_hits, other_n, z)
    difference = p1 - p2
    low = difference - math.hypot(p1 - low1, high2 - p2)
    high = difference + math.hypot(high1 - p1, p2 - low2)
    return max(-1.0, low), min(1.0, high)


@dataclass(frozen=True)
class Lift:
    """The contacted group's rate minus the holdout's, with its 95% interval and verdict."""

    rate: float
    holdout_rate: float
    difference: float
    low: float
    high: float
    verdict: Verdict

    @property
    def significant(self) -> bool | None:
        """Whether the interval excludes 0; None while a group is too small to tell."""
        if self.verdict is Verdict.TOO_FEW:
            return None
        return self.verdict is not Verdict.NOT_SHOWN


def lift(
    hits: int, n: int, holdout_hits: int, holdout_n: int, *, min_group: int = MIN_GROUP_FOR_VERDICT
) -> Lift | None:
    """The lift of `hits` of `n` contacted against `holdout_hits` of `holdout_n` held out; None when a group is
    empty (nothing to compare)."""
    if n <= 0 or holdout_n <= 0:
        return None
    low, high = difference_interval(hits, n, holdout_hits, holdout_n)
    if min(n, holdout_n) < min_group:
        verdict = Verdict.TOO_FEW
    elif low > 0:
        verdict = Verdict.WORKS
    elif high < 0:
        verdict = Verdict.WORSE
    else:
        verdict = Verdict.NOT_SHOWN
    rate, holdout_rate = hits / n, holdout_hits / holdout_n
    return Lift(rate, holdout_rate, rate - holdout_rate, low, high, verdict)
