"""Win-back campaigns as data: a versioned JSON file the marketing team edits, validated before any run.

A problem is named by its place in the file (`campaigns.1.tiers.0.tag: ...`), so a bad edit fails loudly at load
(the CLI's preview, the function's cold start) instead of contacting the wrong members.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator

from memberflow.schema import Model

FILE_VERSION = 1
"""The file format this code reads (the file's `version`)."""

REACTIVATION_WINDOWS = (14, 30)
"""A member active again within this many days of their contact (or holdout) counts as reactivated."""

TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.:-]{0,99}")
CAMPAIGN_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


class CampaignError(ValueError):
    """The campaign file is invalid; the message names each field and its problem."""


class _Strict(Model):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Tier(_Strict):
    days: Annotated[int, Field(ge=1, le=3650)]
    """Days without activity after which a member enters this tier."""
    tag: str
    """The Mailchimp tag (a static segment) added to contacted members: a journey starting on "tag added" mails
    them. With variants, each variant's suffix is appended (`winback-30-a`)."""

    @field_validator("tag")
    @classmethod
    def _tag(cls, value: str) -> str:
        if not TAG.fullmatch(value):
            raise ValueError("must be 1-100 letters, digits, spaces or _ . : - (starting with a letter or digit)")
        return value


class Variant(_Strict):
    name: Annotated[str, Field(pattern=r"^[a-z0-9]{1,10}$")]
    share: Annotated[float, Field(gt=0, le=100)]
    """Relative share among the contacted members (the shares are normalised)."""


class Exclusions(_Strict):
    staff_member_ids: tuple[str, ...] = ()
    """Members never contacted (the team itself); members flagged `staff` or `bot` on their profile are excluded too."""
    in_onboarding: bool = True
    """Members whose onboarding drip has not finished are left to it."""


class Campaign(_Strict):
    id: str
    description: str = ""
    enabled: bool = True
    tiers: Annotated[tuple[Tier, ...], Field(min_length=1)]
    cooldown_days: Annotated[int, Field(ge=30, le=3650)] = 60
    """No member is selected again (contacted or held out) within this many days: at least the longest
    reactivation window, so a contact's outcome is known before the next one. Tiers must be at least this far apart:
    a member selected at one tier reaches the next one after the difference of their days, and a tier reached
    within the cooldown would never select anyone who stayed quiet since the tier before."""
    max_contacts_per_quarter: Annotated[int, Field(ge=1, le=90)] = 1
    """Selections per member per calendar quarter (UTC)."""
    holdout_share: Annotated[float, Field(ge=0, lt=1)] = 0.10
    variants: tuple[Variant, ...] = ()
    """Optional message variants (A/B); none means one message per tier (the tier's tag as is)."""
    exclusions: Exclusions = Field(default_factory=Exclusions)
    max_catch_up_days: Annotated[int, Field(ge=0, le=14)] = 7
    """Days a run looks back for thresholds crossed since the last completed run (after an outage)."""

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not CAMPAIGN_ID.fullmatch(value):
            raise ValueError("must be lowercase letters, digits and dashes (at most 63), e.g. winback-2026")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Campaign:
        days = [tier.days for tier in self.tiers]
        if days != sorted(set(days)):
            raise ValueError("tiers: days must be distinct and increasing, e.g. 30, 60, 90")
        tags = [tag for tier in self.tiers for tag in self.tier_tags(tier).values()]
        if len(tags) != len(set(tags)):
            raise ValueError("tiers: each tier (and variant) needs its own tag")
        names = [variant.name for variant in self.variants]
        if len(names) != len(set(names)):
            raise ValueError("variants: names must be distinct")
        if len(self.variants) == 1:
            raise ValueError("variants: give none, or at least two (A/B)")
        # A member who stays quiet after the first tier's selection reaches each later tier in turn; a tier reached
        # within the cooldown of the last one that selected them never selects them.
        unreachable: list[str] = []
        last = self.tiers[0]
        for tier in self.tiers[1:]:
            if tier.days - last.days < self.cooldown_days:
                unreachable.append(
                    f"the {tier.days}-day tier ({tier.tag}) comes {tier.days - last.days} days after the "
                    f"{last.days}-day tier ({last.tag})"
                )
            else:
                last = tier
        if unreachable:
            raise ValueError(
                f"tiers: closer than cooldown_days ({self.cooldown_days}): {'; '.join(unreachable)}, so a member "
                "who stays quiet is never selected there (still in the cooldown of the earlier tier's selection). "
                "Space the tiers at least cooldown_days apart, or shorten cooldown_days"
            )
        return self

    def tier_tags(self, tier: Tier) -> dict[str, str]:
        """Variant name -> the Mailchimp tag its members get ("" is the only variant when there are none)."""
        if not self.variants:
            return {"": tier.tag}
        return {variant.name: f"{tier.tag}-{variant.name}" for variant in self.variants}


class CampaignFile(_Strict):
    version: Literal[1]
    """The format version (bumped when the format changes; the file's own history is in git)."""
    campaigns: tuple[Campaign, ...]

    @model_validator(mode="after")
    def _unique(self) -> CampaignFile:
        ids = [campaign.id for campaign in self.campaigns]
        if len(ids) != len(set(ids)):
            raise ValueError("campaigns: ids must be distinct")
        return self

    def get(self, campaign_id: str) -> Campaign:
        for campaign in self.campaigns:
            if campaign.id == campaign_id:
                return campaign
        known = ", ".join(c.id for c in self.campaigns) or "none"
        raise CampaignError(f"no campaign {campaign_id!r} (campaigns: {known})")


def parse_campaigns(text: str, source: str = "campaign file") -> CampaignFile:
    """The campaign file, validated; `CampaignError` naming every bad field otherwise."""
    try:
        data = json.loads(text)
    except ValueError as error:
        raise CampaignError(f"{source}: not valid JSON: {error}") from None
    try:
        return CampaignFile.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc']) or '(file)'}: {e['msg']}" for e in error.errors()
        )
        raise CampaignError(f"{source}: {problems}") from None
