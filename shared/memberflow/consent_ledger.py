"""Onboarding's side of the consent ledger: what each consent decision appends, what Mailchimp is told about it
(`timestamp_signup`, `timestamp_opt`, marketing permissions) and the member record's consent derived from it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from memberflow import consent
from memberflow.ledger import (
    CONSENTING,
    Change,
    ConsentEntry,
    ConsentLedger,
    Provenance,
    Wording,
    consent_from,
    provenance,
)
from memberflow.ledger import asks_again as _asks_again
from memberflow.ports import MemberRepository


@dataclass(frozen=True)
class ConsentRules:
    wording: Mapping[str, Wording] = field(default_factory=dict)
    """Platform -> the wording its members agree to (e.g. the Discourse user field's label), versioned."""
    marketing_permission_ids: tuple[str, ...] = ()
    """The audience's GDPR marketing permissions to enable for members who consented; empty: the audience has none
    enabled (nothing is sent)."""


@dataclass(frozen=True)
class Basis:
    """The event a consent decision rests on."""

    platform: str
    event_type: str
    event_id: str
    at: datetime


def prospective(member_id: str, change: Change, status: str, basis: Basis, rules: ConsentRules) -> ConsentEntry:
    wording = rules.wording.get(basis.platform) if change in CONSENTING else None
    return ConsentEntry(
        member_id=member_id,
        change=change,
        platform=basis.platform,
        source_event_type=basis.event_type,
        source_event_id=basis.event_id,
        at=basis.at,
        status=status,
        wording=wording,
    )


def upsert_provenance(
    ledger: ConsentLedger,
    member_id: str,
    wanted: str,
    consented: bool,
    basis: Basis,
    rules: ConsentRules,
    *,
    entries: Sequence[ConsentEntry] | None = None,
) -> Provenance:
    """The ledger's provenance (signup and opt-in times) as it will be once an upsert asking for `wanted` is
    decided and appended. `entries`: the member's ledger when the caller knows it (a member never in Mailchimp
    has none), saving the read."""
    entries = list(ledger.entries(member_id) if entries is None else entries)
    if consented and wanted in (consent.SUBSCRIBED, consent.PENDING):
        entries.append(prospective(member_id, Change.GIVEN, wanted, basis, rules))
    return provenance(entries)


def mailchimp_fields(
    ledger: ConsentLedger,
    member_id: str,
    wanted: str,
    consented: bool,
    basis: Basis,
    rules: ConsentRules,
    *,
    entries: Sequence[ConsentEntry] | None = None,
) -> dict[str, Any]:
    """The consent fields of an upsert asking for `wanted`: the ledger's provenance as it will be once this decision
    is appended, and the configured marketing permissions for a member who consented. Nothing the ledger cannot
    show (no IP addresses, no times the platforms never gave)."""
    provenance_now = upsert_provenance(ledger, member_id, wanted, consented, basis, rules, entries=entries)
    fields: dict[str, Any] = dict(provenance_now.fields())
    if consented and wanted in (consent.SUBSCRIBED, consent.PENDING) and rules.marketing_permission_ids:
        fields["marketing_permissions"] = [
            {"marketing_permission_id": permission, "enabled": True} for permission in rules.marketing_permission_ids
        ]
    return fields


def asks_again(entries: Sequence[ConsentEntry], basis: Basis, *, standing: bool = False) -> bool:
    """Whether the consent a decision rests on (`basis`: its event, platform and time) is a new request of a member
    who opted out, by the member's ledger before the decision (`ledger.asks_again`)."""
    return _asks_again(entries, basis.event_id, basis.platform, basis.at, standing=standing)


def decision(status: str, consented: bool, upgraded: bool, *, reopt_in: bool = False) -> tuple[Change, str] | None:
    """The ledger change a Mailchimp status reached by onboarding stands for, with why; None: nothing to record.
    `reopt_in`: the member had unsubscribed and asked again, and Mailchimp was asked to send its re-opt-in."""
    if status in consent.OPTED_OUT:
        return Change.WITHDRAWN, f"Mailchimp holds the address as {status} (opted out earlier): status kept"
    if status == consent.PENDING:
        if reopt_in and consented:
            return (
                Change.GIVEN,
                "consent given again after unsubscribing: Mailchimp's re-opt-in email asked for (pending)",
            )
        if not consented:
            return Change.GIVEN, "pending in Mailchimp (signed up there, confirmation awaited)"
        why = "consent given after joining" if upgraded else "consent given"
        return (Change.UPGRADED if upgraded else Change.GIVEN), f"{why}: double opt-in asked for (pending)"
    if status == consent.SUBSCRIBED:
        if not consented:
            return Change.GIVEN, "already subscribed in Mailchimp (consent given there)"
        why = "consent given after joining" if upgraded else "consent given"
        return (Change.UPGRADED if upgraded else Change.GIVEN), f"{why}, on an address the platform verified"
    if status == consent.TRANSACTIONAL:
        return Change.NOT_GIVEN, "no marketing consent from the platform: stored without marketing permission"
    return None


def record(
    ledger: ConsentLedger,
    members: MemberRepository,
    member_id: str,
    change: Change,
    status: str,
    basis: Basis,
    rules: ConsentRules,
    detail: str,
    *,
    opted_out: bool = False,
    always: bool = False,
    entries: Sequence[ConsentEntry] | None = None,
) -> ConsentEntry | None:
    """Append the change unless the ledger already says as much (same consent, same status), then set the member
    record's Mailchimp status and its consent as derived from the ledger. `always`: a change the member made (a
    withdrawal, a confirmation) is appended even when it repeats the latest one."""
    entries = list(ledger.entries(member_id) if entries is None else entries)
    entry = replace(prospective(member_id, change, status, basis, rules), detail=detail)
    latest = entries[-1] if entries else None
    same = latest is not None and latest.status == status and consent_from([latest]) == consent_from([entry])
    appended = None
    if always or not same:
        if ledger.append(entry):
            entries.append(entry)
        appended = entry
    members.set_mailchimp_status(member_id, status, opted_out=opted_out, consent=consent_from(entries))
    return appended


def settle(
    ledger: ConsentLedger,
    members: MemberRepository,
    member_id: str,
    status: str,
    consented: bool,
    basis: Basis,
    rules: ConsentRules,
    *,
    upgraded: bool = False,
    reopt_in: bool = False,
    entries: Sequence[ConsentEntry] | None = None,
) -> None:
    """The Mailchimp status onboarding (or an import) reached for a member, on their record and, with why, in their
    ledger. Consent Mailchimp holds from elsewhere, or an opt-out it keeps, is Mailchimp's, not this platform's.
    `reopt_in`: an unsubscribed member asked again and was sent Mailchimp's re-opt-in (`pending`)."""
    opted_out = status in consent.OPTED_OUT
    decided = decision(status, consented, upgraded, reopt_in=reopt_in)
    if decided is None:
        members.set_mailchimp_status(member_id, status, opted_out=opted_out)
        return
    change, why = decided
    held = change is Change.GIVEN and not consented
    source = Basis("mailchimp", basis.event_type, basis.event_id, basis.at) if held or opted_out else basis
    # A re-opt-in is the member's own request: appended even when the ledger's latest entry says `pending` already.
    # Mailchimp answered `unsubscribed` for them first: the record remembers they opted out (never a direct subscribe).
    record(
        ledger,
        members,
        member_id,
        change,
        status,
        source,
        rules,
        why,
        opted_out=opted_out or reopt_in,
        always=reopt_in,
        entries=entries,
    )
