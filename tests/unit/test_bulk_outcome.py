"""Bulk calls' models: members as Mailchimp's batch subscribe takes them, and each per-member error Mailchimp sends
turned into the same memberflow error a single call raises."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from memberflow.bulk import (
    BULK_LIMIT,
    BulkMember,
    BulkOutcome,
    MemberRefusal,
    RefusalKind,
    chunks,
    refusal_from,
)
from memberflow.errors import ComplianceState, ForgottenAddress, PermanentRefusal, RetryLater

ADDRESS = "ada.lovelace@example.org"

# Per-member `errors` of POST /lists/{list_id}, as Mailchimp words them.
CONTACT_EXISTS = (
    "ERROR_CONTACT_EXISTS",
    f"{ADDRESS} is already a list member, do you want to update? please provide update_existing:true in the "
    "request body",
)
COMPLIANCE = (
    "ERROR_GENERIC",
    f"{ADDRESS} is in a compliance state due to unsubscribe, bounce, or compliance review and cannot be subscribed.",
)
FORGOTTEN = (
    "ERROR_GENERIC",
    f"{ADDRESS} was permanently deleted and cannot be re-imported. The contact must re-subscribe to get back on "
    "the list.",
)
FAKE = ("ERROR_GENERIC", f"{ADDRESS} looks fake or invalid, please enter a real email address.")
NOT_AN_ADDRESS = ("ERROR_GENERIC", "Please provide a valid email address.")
THROTTLED = (
    "ERROR_GENERIC",
    f"{ADDRESS} has signed up to a lot of lists very recently; we're not allowing more signups for now",
)
MERGE_FIELD = ("ERROR_GENERIC", "Your merge fields were invalid.")


@pytest.mark.parametrize(
    ("error", "kind", "raised"),
    [
        (COMPLIANCE, RefusalKind.COMPLIANCE_STATE, ComplianceState),
        (FORGOTTEN, RefusalKind.FORGOTTEN_ADDRESS, ForgottenAddress),
        (FAKE, RefusalKind.INVALID_ADDRESS, PermanentRefusal),
        (NOT_AN_ADDRESS, RefusalKind.INVALID_ADDRESS, PermanentRefusal),
        (THROTTLED, RefusalKind.SIGNUP_THROTTLED, RetryLater),
        (MERGE_FIELD, RefusalKind.OTHER, PermanentRefusal),
    ],
)
def test_each_per_member_error_is_the_error_a_single_call_raises(error, kind, raised):
    refusal = refusal_from(*error)
    assert refusal.kind is kind
    assert refusal.code == error[0]
    assert type(refusal.error) is raised
    assert refusal.permanent is (kind is not RefusalKind.SIGNUP_THROTTLED)


def test_refusal_text_keeps_no_address():
    for error in (COMPLIANCE, FORGOTTEN, FAKE, THROTTLED, CONTACT_EXISTS):
        refusal = refusal_from(*error)
        assert ADDRESS not in refusal.text
        assert ADDRESS not in str(refusal.error)


def test_other_refusals_keep_mailchimps_code_and_text():
    refusal = refusal_from(*MERGE_FIELD)
    assert refusal == MemberRefusal(RefusalKind.OTHER, "ERROR_GENERIC", "Your merge fields were invalid.")
    assert refusal.error.title == "ERROR_GENERIC"


def test_a_throttled_refusal_waits_hours_on_the_queue():
    error = refusal_from(*THROTTLED).error
    assert isinstance(error, RetryLater)
    assert error.delay_seconds >= 3600


def test_bulk_member_as_mailchimp_takes_it():
    signup = datetime(2024, 5, 1, 11, 30, tzinfo=timezone(timedelta(hours=2)))
    member = BulkMember(
        ADDRESS, "pending", {"FNAME": "Ada"}, timestamp_signup=signup, timestamp_opt=datetime(2024, 5, 2)
    )
    assert member.as_mailchimp() == {
        "email_address": ADDRESS,
        "status": "pending",
        "merge_fields": {"FNAME": "Ada"},
        "timestamp_signup": "2024-05-01T09:30:00+00:00",
        "timestamp_opt": "2024-05-02T00:00:00+00:00",
    }
    assert "timestamp_signup" not in BulkMember(ADDRESS, "subscribed").as_mailchimp()


@pytest.mark.parametrize(("email", "status"), [("", "subscribed"), (ADDRESS, "cleaned"), (ADDRESS, "archived")])
def test_bulk_member_refuses_what_batch_subscribe_cannot_take(email, status):
    with pytest.raises(ValueError):
        BulkMember(email, status)


def test_chunks_hold_at_most_the_limit():
    sizes = [len(chunk) for chunk in chunks(list(range(1200)))]
    assert sizes == [BULK_LIMIT, BULK_LIMIT, 200]
    assert list(chunks([])) == []


def test_outcomes_merge_and_count_without_addresses():
    first = BulkOutcome(created=["a@example.org"], refused={"b@example.org": refusal_from(*FAKE)})
    first.merge(BulkOutcome(updated=["c@example.org"], existing=["d@example.org"]))
    assert first.counts == {"created": 1, "updated": 1, "existing": 1, "refused": 1}
    assert first.existing == ["d@example.org"]
