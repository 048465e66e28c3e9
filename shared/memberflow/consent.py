"""Marketing consent: the one place that decides what Mailchimp status a member may get, whichever capability
adds the member (onboarding, event sync), and who asked to be forgotten before (a fresh opt-in at most)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from memberflow.ports import Suppression
from memberflow.privacy import email_suppression_name, identity_suppression_name

SUBSCRIBED = "subscribed"
PENDING = "pending"
"""Double opt-in: Mailchimp emails the member, who must confirm."""
TRANSACTIONAL = "transactional"
"""Stored in the audience without marketing permission."""

UNSUBSCRIBED = "unsubscribed"
CLEANED = "cleaned"
"""Bounced, or cleaned by Mailchimp: never re-added by memberflow."""
OPTED_OUT = frozenset({UNSUBSCRIBED, CLEANED})
"""Statuses memberflow never subscribes: only the member can undo them, through Mailchimp's own forms or, for an
unsubscribed member who asks again, by confirming Mailchimp's re-opt-in email (`reopt_in_for_consent`)."""


class ConsentFacts(Protocol):
    """What one platform account says: did its owner consent, and has the platform proved they own the address."""

    @property
    def marketing_consent(self) -> bool: ...

    @property
    def email_verified(self) -> bool: ...


@dataclass(frozen=True)
class Facts:
    marketing_consent: bool
    email_verified: bool


def status_for_new_member(
    facts: ConsentFacts, *, opted_out_before: bool = False, forgotten_before: bool = False
) -> str:
    """Subscribed only when the source says the member consented (double opt-in when the address is not verified,
    the member opted out before, or they asked to be forgotten before and came back); otherwise kept without
    marketing permission."""
    if not facts.marketing_consent:
        return TRANSACTIONAL
    fresh_opt_in_needed = opted_out_before or forgotten_before or not facts.email_verified
    return PENDING if fresh_opt_in_needed else SUBSCRIBED


def upgrade_for_consent(
    current_status: str, facts: ConsentFacts, *, opted_out_before: bool = False, forgotten_before: bool = False
) -> str | None:
    """The status to move a member stored without permission to, now that they consent; None: leave it.

    Only `transactional` is upgraded: a `pending` member stays pending (Mailchimp's own confirmation, once asked
    for, is what counts), and an unsubscribed or cleaned member is never resubscribed (an unsubscribed member who
    asks again gets the re-opt-in: `reopt_in_for_consent`)."""
    if current_status != TRANSACTIONAL or not facts.marketing_consent:
        return None
    return status_for_new_member(facts, opted_out_before=opted_out_before, forgotten_before=forgotten_before)


def reopt_in_for_consent(current_status: str, facts: ConsentFacts, *, asked_again: bool) -> str | None:
    """The status to move an opted-out member to because they asked for marketing email again; None: leave it.

    Only an unsubscribed member who gave consent again after opting out (`asked_again`: an explicit, fresh request,
    see `ledger.asks_again`) is moved, and only to `pending`: Mailchimp then emails them to confirm (its re-opt-in),
    and they are subscribed only once they do. Never `subscribed`; a cleaned address is never re-added, and neither
    is a member whose consent is not a new request (a join without consent, a verification, consent repeated)."""
    if current_status != UNSUBSCRIBED or not facts.marketing_consent or not asked_again:
        return None
    return PENDING


def receives_marketing(status: str) -> bool:
    return status == SUBSCRIBED


class FindsSuppressions(Protocol):
    """What deciding on an erasure needs of the suppression list: `SuppressionList`, or what was read of it."""

    def find(self, name: str) -> Suppression | None: ...


def suppression_names(email: str | None, identity_key: str | None) -> list[str]:
    """The suppression list's names for an address and a platform identity (either may be absent)."""
    return ([email_suppression_name(email)] if email else []) + (
        [identity_suppression_name(identity_key)] if identity_key else []
    )


def latest_erasure(suppressions: FindsSuppressions, email: str | None, identity_key: str | None) -> Suppression | None:
    """The latest erasure of this address or this platform identity, if either was ever erased."""
    names = suppression_names(email, identity_key)
    found = [suppression for name in names if (suppression := suppressions.find(name)) is not None]
    return max(found, key=lambda suppression: suppression.erased_at, default=None)
