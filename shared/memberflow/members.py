"""Members as memberflow knows them, and identity resolution: which member a platform user is."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from memberflow.models import MemberIdentity
from memberflow.privacy import email_key


@dataclass
class MemberRecord:
    member_id: str
    joined_at: datetime | None
    """The first join memberflow knows of; None when no platform said (a Slack member imported: Slack keeps no join
    date, and none is invented)."""
    email: str | None = None
    name: str | None = None
    platforms: list[str] = field(default_factory=list)
    identities: list[str] = field(default_factory=list)
    verified_identities: list[str] = field(default_factory=list)
    """The platform identities whose platform proved this address (consent given there needs no double opt-in)."""
    marketing_consent: bool = False
    mailchimp_status: str | None = None
    opted_out_before: bool = False
    """Mailchimp once answered unsubscribed or cleaned for this member: never ask for a direct subscribe again."""
    journey_started_at: datetime | None = None
    activated_at: datetime | None = None
    last_active_at: datetime | None = None
    drip_steps_sent: int = 0
    drip_due_at: datetime | None = None
    drip_started_at: datetime | None = None
    """When the member entered the drip: steps are due that many days after it."""
    last_correlation_id: str = ""


@dataclass(frozen=True)
class MemberJoin:
    """What one join tells us about a member."""

    member_id: str
    identity_key: str
    platform: str
    joined_at: datetime | None
    """None: the platform does not say (an imported Slack member)."""
    correlation_id: str
    email: str | None = None
    name: str | None = None
    marketing_consent: bool = False
    address_verified: bool = False
    """The platform proved the address for this identity."""
    active_before_join: datetime | None = None
    """Activity seen from this platform identity before its join arrived (events are not ordered)."""


@dataclass(frozen=True)
class IdentityLink:
    identity_key: str
    member_id: str | None
    last_active_at: datetime | None
    screening_since: datetime | None = None
    """The join (its time) that the platform holds in membership screening, if any."""
    screened_join: datetime | None = None
    """The latest join (its time) that passed membership screening."""

    @property
    def in_screening(self) -> bool:
        """The platform's latest held join has not passed screening yet (events are not ordered: a pass seen
        before its join counts too)."""
        if self.screening_since is None:
            return False
        return self.screened_join is None or self.screened_join < self.screening_since


def member_id_for(identity: MemberIdentity, email: str | None) -> str:
    """A member is their address (hashed) wherever they join; without one, their platform identity."""
    return email_key(email) if email else identity.key


def resolve_member_id(identity: MemberIdentity, email: str | None, link: IdentityLink | None) -> str | None:
    """The member a platform user is: the member their identity was linked to at join, else the member their
    address names; None when neither is known."""
    if link and link.member_id:
        return link.member_id
    return email_key(email) if email else None
