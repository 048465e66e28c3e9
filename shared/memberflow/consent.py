"""Marketing consent: the one place that decides what Mailchimp status a member may get."""

from __future__ import annotations

from memberflow.models import MemberJoined

SUBSCRIBED = "subscribed"
PENDING = "pending"
"""Double opt-in: Mailchimp emails the member, who must confirm."""
TRANSACTIONAL = "transactional"
"""Stored in the audience without marketing permission."""

OPTED_OUT = frozenset({"unsubscribed", "cleaned"})
"""Statuses memberflow never changes: only the member can undo them, through Mailchimp's own forms."""


def status_for_new_member(event: MemberJoined) -> str:
    """Subscribed only when the source says the member consented; otherwise kept without marketing permission."""
    return SUBSCRIBED if event.marketing_consent else TRANSACTIONAL


def may_upgrade_to_subscribed(current_status: str, consented: bool) -> bool:
    """A consenting member who is stored without permission may be subscribed; an opted-out one never."""
    return consented and current_status in {TRANSACTIONAL, "archived"}


def receives_marketing(status: str) -> bool:
    return status == SUBSCRIBED
