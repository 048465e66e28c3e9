"""The onboarding consumer: one handler per event type it consumes, for the generic worker."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from memberflow.onboarding.activity import record_activity
from memberflow.onboarding.erasure import erase_member
from memberflow.onboarding.join import OnboardingDeps, complete_screening, give_consent, onboard_member, verify_member
from memberflow.onboarding.mailchimp_signals import (
    mailchimp_email_changed,
    mailchimp_opted_out,
    mailchimp_profile_updated,
    mailchimp_subscribed,
)
from memberflow.pipeline.envelope import QueuedEvent

CONSUMER = "onboarding"

MAILCHIMP_CALLS_PER_EVENT = 6
"""The most Mailchimp calls one event makes: a join's upsert and its double opt-in fallback after a compliance
refusal, a consent upgrade and its fallback, the tags, the welcome journey (activity makes none)."""
SLOW_STORE_CALLS_PER_EVENT = 1
"""Store calls (DynamoDB: member, identity link, idempotency, trace) answer in milliseconds; one of them may be
slow."""


def worst_case_ms_per_event(mailchimp_call_seconds: float, store_call_seconds: float) -> int:
    """The longest one event can take when every Mailchimp call runs into its timeout on every attempt: an event is
    only started with this much time left in the invocation, so a Lambda timeout (which returns the whole batch and
    spends an attempt of every message in it) never happens. The function's Timeout in template.yaml is derived
    from it (tests/unit/test_template.py)."""
    seconds = MAILCHIMP_CALLS_PER_EVENT * mailchimp_call_seconds + SLOW_STORE_CALLS_PER_EVENT * store_call_seconds
    return int(seconds * 1000)


def handlers(deps_for: Callable[[], OnboardingDeps]) -> Mapping[str, Callable[[QueuedEvent], dict[str, Any]]]:
    """Event type -> work. Dependencies are built on first use, so a cold start pays only for what it runs."""
    return {
        "member_joined": lambda queued: onboard_member(queued, deps_for()),
        "member_active": lambda queued: record_activity(queued, deps_for()),
        "member_erased": lambda queued: erase_member(queued, deps_for()),
        "member_verified": lambda queued: verify_member(queued, deps_for()),
        "consent_given": lambda queued: give_consent(queued, deps_for()),
        "member_screening_passed": lambda queued: complete_screening(queued, deps_for()),
        "mailchimp_subscribed": lambda queued: mailchimp_subscribed(queued, deps_for()),
        "mailchimp_unsubscribed": lambda queued: mailchimp_opted_out(queued, deps_for()),
        "mailchimp_cleaned": lambda queued: mailchimp_opted_out(queued, deps_for()),
        "mailchimp_profile_updated": lambda queued: mailchimp_profile_updated(queued, deps_for()),
        "mailchimp_email_changed": lambda queued: mailchimp_email_changed(queued, deps_for()),
    }
