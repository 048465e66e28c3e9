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


def status_for_new_member(
    event: MemberJoined, *, opted_out_before: bool = False, forgotten_before: bool = False
) -> str:
    """Subscribed only when the source says the member consented (double opt-in when the address is not verified,
    the member opted out before, or they asked to be forgotten before and came back); otherwise kept without
    marketing permission."""
    if not event.marketing_consent:
        return TRANSACTIONAL
    fresh_opt_in_needed = opted_out_before or forgotten_before or not event.email_verified
    return PENDING if fresh_opt_in_needed else SUBSCRIBED


def upgrade_for_consent(
    current_status: str, event: MemberJoined, *, opted_out_before: bool = False, forgotten_before: bool = False
) -> str | None:
    """The status to move a member stored without permission to, now that they consent; None: leave it."""
    if current_status != TRANSACTIONAL or not event.marketing_consent:
        return None
    return status_for_new_member(event, opted_out_before=opted_out_before, forgotten_before=forgotten_before)


def receives_marketing(status: str) -> bool:
    return status == SUBSCRIBED
