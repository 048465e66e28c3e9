"""Deterministic assignment: a member's group in a campaign follows from a hash of both, so every re-run, preview
and resumed run gives the same answer, and nobody moves between holdout and contacted."""

from __future__ import annotations

import hashlib

from memberflow.winback.campaign import Campaign

HOLDOUT = "holdout"


def position(member_id: str, campaign_id: str) -> float:
    """A uniform number in [0, 1) fixed for the member in this campaign."""
    digest = hashlib.sha256(f"winback:{campaign_id}:{member_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign(member_id: str, campaign: Campaign) -> str:
    """`holdout`, or the variant name ("" when the campaign has no variants)."""
    at = position(member_id, campaign.id)
    if at < campaign.holdout_share:
        return HOLDOUT
    if not campaign.variants:
        return ""
    # The rest of [holdout_share, 1) is split among the variants by their normalised shares.
    at = (at - campaign.holdout_share) / (1 - campaign.holdout_share)
    total = sum(variant.share for variant in campaign.variants)
    edge = 0.0
    for variant in campaign.variants:
        edge += variant.share / total
        if at < edge:
            return variant.name
    return campaign.variants[-1].name
