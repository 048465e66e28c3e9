"""Pure rules: consent, retries, privacy, configuration, the trace verdict."""

from datetime import UTC, datetime, timedelta

import pytest

from memberflow.config import ConfigError, OnboardingSettings, load_settings
from memberflow.errors import RetryLater
from memberflow.errors import Transient as TransientFailure
from memberflow.events import MemberJoined
from memberflow.models import MemberIdentity, Platform
from memberflow.onboarding import consent
from memberflow.privacy import mask_email, redact_emails, subscriber_hash
from memberflow.retry import with_brief_retries
from memberflow.trace import Outcome, Step, TraceRecord
from memberflow.trace_report import explain

JOINED = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def joined(consented: bool) -> MemberJoined:
    identity = MemberIdentity(platform=Platform.DISCOURSE, workspace="https://forum.example.org", user_id="7")
    return MemberJoined(identity=identity, email="ada@example.org", joined_at=JOINED, marketing_consent=consented)


def test_member_is_subscribed_only_with_consent():
    assert consent.status_for_new_member(joined(True)) == "subscribed"
    assert consent.status_for_new_member(joined(False)) == "transactional"


def test_unverified_address_or_earlier_opt_out_gets_double_opt_in_not_a_direct_subscribe():
    unverified = joined(True).model_copy(update={"email_verified": False})
    assert consent.status_for_new_member(unverified) == "pending"
    assert consent.status_for_new_member(joined(True), opted_out_before=True) == "pending"


@pytest.mark.parametrize("status", ["unsubscribed", "cleaned", "pending", "subscribed", "archived"])
def test_only_members_stored_without_permission_are_upgraded(status):
    assert consent.upgrade_for_consent(status, joined(True)) is None


def test_stored_without_permission_member_is_upgraded_when_consenting():
    assert consent.upgrade_for_consent("transactional", joined(True)) == "subscribed"
    assert consent.upgrade_for_consent("transactional", joined(True), opted_out_before=True) == "pending"
    assert consent.upgrade_for_consent("transactional", joined(False)) is None


def test_subscriber_hash_is_md5_of_lowercased_email():
    import hashlib

    assert subscriber_hash("Ada@Example.org") == hashlib.md5(b"ada@example.org").hexdigest()


def test_addresses_in_service_messages_are_redacted():
    text = redact_emails("ada@example.org is already a list member in compliance state")
    assert "ada@example.org" not in text and text.endswith("compliance state")


def test_masked_email_hides_the_address():
    masked = mask_email("jane.doe@example.com")
    assert "jane" not in masked and "example" not in masked and masked.endswith(".com")


def test_brief_retries_honour_retry_after_and_then_succeed():
    calls, sleeps = [], []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise TransientFailure("429", retry_after=1.0)
        return "ok"

    assert with_brief_retries(flaky, sleep=sleeps.append) == "ok"
    assert sleeps == [1.0, 1.0]


def test_long_retry_after_goes_back_to_the_queue_instead_of_sleeping():
    def limited():
        raise TransientFailure("429", retry_after=120)

    with pytest.raises(RetryLater) as raised:
        with_brief_retries(limited, sleep=lambda _: pytest.fail("must not sleep"))
    assert raised.value.delay_seconds == 120


def test_retries_are_bounded():
    attempts = []

    def broken():
        attempts.append(1)
        raise TransientFailure("500")

    with pytest.raises(TransientFailure):
        with_brief_retries(broken, attempts=3, sleep=lambda _: None)
    assert len(attempts) == 3


def test_bad_environment_names_the_variable(monkeypatch):
    load_settings.cache_clear()
    monkeypatch.setenv("DRIP_STEP_DAYS", "7,3")
    with pytest.raises(ConfigError, match="DRIP_STEP_DAYS|drip_step_days"):
        load_settings(OnboardingSettings)
    load_settings.cache_clear()


def record(step, outcome, detail="", minutes=0):
    return TraceRecord("s", step, outcome, detail, "corr-1", at=JOINED + timedelta(minutes=minutes))


def test_trace_verdict_names_the_journey_start():
    verdict = explain([record(Step.EVENT_RECEIVED, Outcome.OK), record(Step.JOURNEY_STARTED, Outcome.OK, minutes=1)])
    assert verdict.welcomed is True and "corr-1" in verdict.reason


def test_trace_verdict_explains_missing_consent():
    verdict = explain(
        [
            record(Step.EVENT_RECEIVED, Outcome.OK),
            record(Step.SKIPPED, Outcome.SKIPPED, "welcome journey not started: no marketing consent", 1),
        ]
    )
    assert verdict.welcomed is False and "no marketing consent" in verdict.reason


def test_trace_verdict_for_unknown_member():
    assert explain([]).welcomed is None
