"""Who a run selects: the rules are pure, so preview and run apply exactly the same ones."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum

from memberflow.winback.assignment import HOLDOUT, assign
from memberflow.winback.campaign import Campaign, Tier

OPTED_OUT_STATUSES = frozenset({"unsubscribed", "cleaned"})


class Exclusion(StrEnum):
    UNSUBSCRIBED = "unsubscribed"
    """Unsubscribed or cleaned in Mailchimp (or opted out before): never contacted."""
    NOT_SUBSCRIBED = "not_subscribed"
    """No marketing permission (transactional, pending double opt-in, not in the audience)."""
    NO_ADDRESS = "no_address"
    IN_ONBOARDING = "in_onboarding"
    STAFF_OR_BOT = "staff_or_bot"
    OPTED_OUT_OF_WINBACK = "opted_out_of_winback"
    COOLDOWN = "cooldown"
    QUARTERLY_CAP = "quarterly_cap"


@dataclass(frozen=True)
class Candidate:
    """A member whose inactivity crossed a tier's threshold, as the member store holds them."""

    member_id: str
    active_day: date
    """The day of their last activity (or of their join, if never active): what the index is keyed on."""
    email: str | None = None
    mailchimp_status: str | None = None
    opted_out_before: bool = False
    in_drip: bool = False
    staff: bool = False
    winback_opt_out: bool = False
    winback_history: tuple[date, ...] = field(default_factory=tuple)
    """The days the member was selected (contacted or held out) by any win-back campaign."""


@dataclass(frozen=True)
class Decision:
    member_id: str
    tier_days: int
    group: str | None
    """`holdout`, a variant name ("" without variants), or None when excluded."""
    exclusion: Exclusion | None = None
    tag: str | None = None
    """The tag a contacted member gets."""

    @property
    def contacted(self) -> bool:
        return self.group is not None and self.group != HOLDOUT


def quarter(day: date) -> tuple[int, int]:
    return day.year, (day.month - 1) // 3


def exclusion(candidate: Candidate, campaign: Campaign, today: date) -> Exclusion | None:
    """Why the member must not be selected today, or None. Consent first: nothing else matters for someone who
    opted out."""
    if candidate.mailchimp_status in OPTED_OUT_STATUSES or candidate.opted_out_before:
        return Exclusion.UNSUBSCRIBED
    if not candidate.email:
        return Exclusion.NO_ADDRESS
    if candidate.mailchimp_status != "subscribed":
        return Exclusion.NOT_SUBSCRIBED
    if candidate.winback_opt_out:
        return Exclusion.OPTED_OUT_OF_WINBACK
    if candidate.staff or candidate.member_id in campaign.exclusions.staff_member_ids:
        return Exclusion.STAFF_OR_BOT
    if campaign.exclusions.in_onboarding and candidate.in_drip:
        return Exclusion.IN_ONBOARDING
    # A selection made today may be this run's own, recorded before an interruption: the record decides that
    # (`WinbackStore.record`), so only earlier days count here.
    earlier = [day for day in candidate.winback_history if day < today]
    cooldown_start = today - timedelta(days=campaign.cooldown_days)
    if any(cooldown_start < day for day in earlier):
        return Exclusion.COOLDOWN
    if sum(quarter(day) == quarter(today) for day in earlier) >= campaign.max_contacts_per_quarter:
        return Exclusion.QUARTERLY_CAP
    return None


def decide(candidate: Candidate, campaign: Campaign, tier: Tier, today: date) -> Decision:
    excluded = exclusion(candidate, campaign, today)
    if excluded is not None:
        return Decision(candidate.member_id, tier.days, None, excluded)
    group = assign(candidate.member_id, campaign)
    tag = None if group == HOLDOUT else campaign.tier_tags(tier)[group]
    return Decision(candidate.member_id, tier.days, group, tag=tag)


@dataclass(frozen=True)
class Segment:
    """The members who crossed `tier` on `day`: those whose active day is `day - tier.days`."""

    day: date
    tier: Tier

    @property
    def active_day(self) -> date:
        return self.day - timedelta(days=self.tier.days)


def segments(first_day: date, today: date, campaign: Campaign) -> list[Segment]:
    """Every (day, tier) a run starting at `first_day` covers, in order: day by day, tier by tier."""
    plan: list[Segment] = []
    day = first_day
    while day <= today:
        plan.extend(Segment(day, tier) for tier in campaign.tiers)
        day += timedelta(days=1)
    return plan


def first_day(done_through: date | None, today: date, campaign: Campaign) -> date:
    """Where a new run starts: the day after the last completed run, at most `max_catch_up_days` back."""
    earliest = today - timedelta(days=campaign.max_catch_up_days)
    if done_through is None:
        return today
    return max(done_through + timedelta(days=1), earliest)
