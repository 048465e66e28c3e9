"""The consent ledger's rules for onboarding: they live in `memberflow.consent_ledger`, shared by every capability
that brings members to Mailchimp (onboarding, imports, event sync)."""

from memberflow.consent_ledger import (
    Basis,
    ConsentRules,
    asks_again,
    decision,
    mailchimp_fields,
    prospective,
    record,
    settle,
    upsert_provenance,
)

__all__ = [
    "Basis",
    "ConsentRules",
    "asks_again",
    "decision",
    "mailchimp_fields",
    "prospective",
    "record",
    "settle",
    "upsert_provenance",
]
