"""Marketing consent: the one place that decides what Mailchimp status a member may get."""

from __future__ import annotations

from memberflow.events import MemberJoined

SUBSCRIBED = "subscribed"
PENDING = "pending"
"""Double opt-in: Mailchimp emails the member, who must confirm."""
TRANSACTIONAL = "transactional"
"""Stored in the audience without marketing permission."""

OPTED_OUT = frozenset({"unsubscribed", "cleaned"})
"""Statuses memberflow never changes: only the member can undo them, through Mailchimp's own forms."""


def status_for_new_member(event: MemberJoined, *, opted_out_before: bool = False) -> str:
    """Subscribed only when the source says the member consented (double opt-in when the address is not verified
    or the member opted out before); otherwise kept without marketing permission."""
    if not event.marketing_consent:
        return TRANSACTIONAL
    return SUBSCRIBED if event.email_verified and not opted_out_before else PENDING


def upgrade_for_consent(current_status: str, event: MemberJoined, *, opted_out_before: bool = False) -> str | None:
    """The status to move a member stored without permission to, now that they consent; None: leave it."""
    if current_status != TRANSACTIONAL or not event.marketing_consent:
        return None
    return status_for_new_member(event, opted_out_before=opted_out_before)


def receives_marketing(status: str) -> bool:
    return status == SUBSCRIBED
