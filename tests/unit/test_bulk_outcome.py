"""Bulk calls: members as Mailchimp's batch subscribe takes them, each per-member error Mailchimp sends turned into
the memberflow error a single call raises, and the adapter's calls (500 at a time, segments found and remembered)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from memberflow.adapters.mailchimp import BULK_TIMEOUT_SECONDS, MailchimpList, batch_outcome, segment_outcome
from memberflow.bulk import (
    BULK_LIMIT,
    BulkMember,
    BulkOutcome,
    MemberRefusal,
    RefusalKind,
    chunks,
    refusal_from,
)
from memberflow.errors import (
    AddressThrottled,
    ComplianceState,
    ForgottenAddress,
    NotFound,
    PermanentRefusal,
    RateLimited,
    RetryLater,
)

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
        (THROTTLED, RefusalKind.SIGNUP_THROTTLED, AddressThrottled),
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


# -- the adapter's side: Mailchimp's bulk answers as outcomes, without a network -----------------------------------


class ScriptedTransport:
    """Stands in for the adapter's HTTP transport: answers each call with the next scripted answer (or raises it)
    and notes what was sent."""

    def __init__(self, *script: dict | Exception) -> None:
        self._script = list(script)
        self.sent: list[tuple[str, str, dict | None, dict | None]] = []
        self.how: list[dict] = []
        """The timeout and attempts each call was given ({} for the transport's own)."""

    def call(self, method, path, body=None, params=None, **how):
        self.sent.append((method, path, body, params))
        self.how.append(how)
        answer = self._script.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def scripted(*script: dict | Exception) -> tuple[MailchimpList, ScriptedTransport]:
    mailing_list = MailchimpList(lambda fresh: "key-us21", base_url="https://us21.api.mailchimp.com/3.0")
    transport = ScriptedTransport(*script)
    mailing_list._transport = transport  # type: ignore[assignment]
    return mailing_list, transport


def batch_answer(created=(), updated=(), errors=()) -> dict:
    """POST /lists/{list_id}'s answer as Mailchimp sends it (200, whatever failed)."""
    return {
        "new_members": [{"email_address": email, "status": "subscribed"} for email in created],
        "updated_members": [{"email_address": email, "status": "subscribed"} for email in updated],
        "errors": [{"email_address": email, "error": text, "error_code": code} for email, (code, text) in errors],
        "total_created": len(created),
        "total_updated": len(updated),
        "error_count": len(errors),
    }


def test_a_batch_answer_puts_every_member_in_one_field():
    sent = [BulkMember(email, "subscribed") for email in ("New@example.org", "old@example.org", ADDRESS, "x@e.org")]
    answer = batch_answer(
        created=["new@example.org"],  # Mailchimp may spell it as it stores it
        errors=[("old@example.org", CONTACT_EXISTS), (ADDRESS, COMPLIANCE)],
    )
    outcome = batch_outcome(sent, answer)
    assert outcome.created == ["New@example.org"]
    assert outcome.existing == ["old@example.org"]
    assert outcome.refused[ADDRESS].kind is RefusalKind.COMPLIANCE_STATE
    # A member the answer does not mention is not taken for done.
    assert outcome.refused["x@e.org"].code == "NOT_REPORTED"
    assert outcome.counts == {"created": 1, "updated": 0, "existing": 1, "refused": 2}


def test_a_segment_answer_reports_the_changed_the_refused_and_the_rest():
    answer = {
        "members_added": [{"email_address": "a@example.org"}],
        "members_removed": [],
        "errors": [{"email_addresses": ["b@example.org"], "error": FAKE[1]}],
        "total_added": 1,
        "total_removed": 0,
        "error_count": 1,
    }
    outcome = segment_outcome(["a@example.org", "b@example.org", "c@example.org"], answer, "members_added")
    assert outcome.updated == ["a@example.org"]
    assert outcome.refused["b@example.org"].kind is RefusalKind.INVALID_ADDRESS
    assert outcome.existing == ["c@example.org"]


def test_subscribe_many_sends_500_per_call_and_each_address_once():
    emails = [f"m{i}@example.org" for i in range(1001)]
    members = [BulkMember(email, "subscribed") for email in [*emails, "M0@example.org"]]
    mailing_list, transport = scripted(
        batch_answer(created=emails[:500]), batch_answer(created=emails[500:1000]), batch_answer(created=emails[1000:])
    )
    outcome = mailing_list.subscribe_many("list1", members)
    assert [len(body["members"]) for _, _, body, _ in transport.sent] == [500, 500, 1]
    assert all(body["update_existing"] is False for _, _, body, _ in transport.sent)
    assert outcome.created == emails
    assert mailing_list.calls == {"POST /lists/{list_id}": 3}


def test_a_whole_call_failing_raises_as_a_single_call_does():
    members = [BulkMember(f"m{i}@example.org", "subscribed") for i in range(600)]
    mailing_list, _ = scripted(batch_answer(created=[m.email for m in members[:500]]), RateLimited("Mailchimp 429"))
    with pytest.raises(RateLimited):
        mailing_list.subscribe_many("list1", members)


def test_a_tags_segment_is_found_by_paging_then_remembered():
    first_page = {"segments": [{"id": i, "name": f"tag-{i}"} for i in range(1000)], "total_items": 1001}
    second_page = {"segments": [{"id": 5000, "name": "win-back"}], "total_items": 1001}
    mailing_list, transport = scripted(first_page, second_page)
    assert mailing_list.tag_segment_id("list1", "win-back") == "5000"
    assert mailing_list.tag_segment_id("list1", "win-back") == "5000"
    assert mailing_list.tag_segment_id("list1", "tag-7") == "7"
    assert [params["offset"] for _, _, _, params in transport.sent] == ["0", "1000"]
    assert transport.sent[0][3]["type"] == "static"


def test_a_missing_tag_gets_its_static_segment():
    mailing_list, transport = scripted({"segments": [], "total_items": 0}, {"id": 42, "name": "new-tag"})
    assert mailing_list.tag_segment_id("list1", "new-tag") == "42"
    assert transport.sent[1][:3] == ("POST", "/lists/list1/segments", {"name": "new-tag", "static_segment": []})


def test_tag_many_finds_the_segment_again_when_it_was_deleted():
    gone = NotFound("Mailchimp 404 Resource Not Found", 404)
    added = {"members_added": [{"email_address": "a@example.org"}], "errors": []}
    mailing_list, transport = scripted(
        {"segments": [{"id": 1, "name": "vip"}], "total_items": 1},
        gone,
        {"segments": [], "total_items": 0},
        {"id": 2, "name": "vip"},
        added,
    )
    outcome = mailing_list.tag_many("list1", "vip", ["a@example.org"])
    assert outcome.updated == ["a@example.org"]
    assert transport.sent[-1][1] == "/lists/list1/segments/2"


def test_bulk_calls_get_the_bulk_timeout_and_are_sent_once_while_a_members_call_keeps_its_own():
    mailing_list, transport = scripted(
        batch_answer(created=["a@example.org"]),
        {"segments": [{"id": 7, "name": "vip"}], "total_items": 1},
        {"members_added": [{"email_address": "a@example.org"}], "errors": []},
        {"status": "subscribed"},
    )
    mailing_list.subscribe_many("list123", [BulkMember("a@example.org", "subscribed")])
    mailing_list.tag_many("list123", "vip", ["a@example.org"])
    mailing_list.member_status("list123", "a@example.org")

    bulk = {"timeout": BULK_TIMEOUT_SECONDS, "attempts": 1}
    assert transport.how == [bulk, {}, bulk, {}]  # batch subscribe, segment list, segment change, one member
    assert mailing_list.worst_case_bulk_call_seconds == BULK_TIMEOUT_SECONDS
