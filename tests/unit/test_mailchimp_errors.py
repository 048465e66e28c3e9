"""Mailchimp's refusals as memberflow errors: `error_from` on the answers Mailchimp really sends, and the
transport path (re-reading a rotated key, unreachable service, empty answers, brief retries) without a network."""

from __future__ import annotations

import json
from functools import partial

import pytest
import requests
from requests.structures import CaseInsensitiveDict

from memberflow.adapters import http_json
from memberflow.adapters.http_json import HttpAnswer, HttpJsonTransport
from memberflow.adapters.mailchimp import (
    BULK_TIMEOUT_SECONDS,
    DEFAULT_TIMEOUT_SECONDS,
    SIGNUP_THROTTLE_RETRY_SECONDS,
    MailchimpList,
    api_url_for_key,
    error_from,
)
from memberflow.bulk import BulkMember
from memberflow.errors import (
    AccountProblem,
    AddressThrottled,
    ComplianceState,
    CredentialsRejected,
    ForgottenAddress,
    MemberflowError,
    NotFound,
    PermanentRefusal,
    RateLimited,
    ResourceGone,
    RetryLater,
    Transient,
    is_service_failure,
)
from memberflow.pipeline.policy import Delivery, Park, RetryPolicy, decide
from memberflow.retry import with_brief_retries

ADDRESS = "ada.lovelace@example.org"
BASE_URL = "https://us21.api.mailchimp.com/3.0"
ERRORS_DOC = "https://mailchimp.com/developer/marketing/docs/errors/"


def problem(status: int, title: str, detail: str, **extra: object) -> str:
    """A problem+json body as Mailchimp sends it."""
    body = {
        "type": ERRORS_DOC,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": "5b8e3c2a-8f0e-4c55-9d4e-0c6a1f3b7d21",
        **extra,
    }
    return json.dumps(body)


def answer(status: int, text: str = "", **headers: str) -> HttpAnswer:
    content_type = "application/problem+json" if text.startswith("{") else "text/html"
    return HttpAnswer(status, text, CaseInsensitiveDict({"Content-Type": content_type, **headers}))


HTML_502 = "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"
HTML_400 = "<html><head><title>400 Bad Request</title></head><body>Bad Request</body></html>"

FAKE_ADDRESS = problem(400, "Invalid Resource", f"{ADDRESS} looks fake or invalid, please enter a real email address.")
SIGNUP_THROTTLE = problem(
    400,
    "Invalid Resource",
    f"{ADDRESS} has signed up to a lot of lists very recently; we're not allowing more signups for now",
)
COMPLIANCE = problem(
    400,
    "Member In Compliance State",
    f"{ADDRESS} is already a list member in compliance state due to unsubscribe, bounce, or compliance review.",
)
FORGOTTEN = problem(
    400,
    "Forgotten Email Not Subscribed",
    f"{ADDRESS} was permanently deleted and cannot be re-imported. The contact must re-subscribe to get back on "
    "the list.",
)
MEMBER_EXISTS = problem(
    400, "Member Exists", f"{ADDRESS} is already a list member. Use PUT to insert or update list members."
)
MERGE_FIELDS = problem(
    400,
    "Invalid Resource",
    "The resource submitted could not be validated. For field-specific details, see the 'errors' array.",
    errors=[{"field": "merge_fields.JOINED", "message": "Please enter a date"}],
)
KEY_INVALID = problem(
    401, "API Key Invalid", "Your API key may be invalid, or you've attempted to access the wrong datacenter."
)
NOT_FOUND = problem(404, "Resource Not Found", "The requested resource could not be found.")
FORBIDDEN = problem(403, "Forbidden", "The API key provided is linked to a different datacenter")
TOO_MANY = problem(429, "Too Many Requests", "You have exceeded the limit of 10 simultaneous connections.")
SERVER_ERROR = problem(500, "Internal Server Error", "An unexpected internal error has occurred.")


# (id, answer, exact error type, retry_after)
MAPPING = [
    ("429-with-retry-after", answer(429, TOO_MANY, **{"Retry-After": "30"}), RateLimited, 30.0),
    ("429-without-retry-after", answer(429, TOO_MANY), RateLimited, None),
    ("429-empty-body", answer(429), RateLimited, None),
    ("bare-403-load-shedding", answer(403), RateLimited, None),
    ("403-with-problem-body", answer(403, FORBIDDEN), AccountProblem, None),
    ("500", answer(500, SERVER_ERROR), Transient, None),
    ("502-empty", answer(502), Transient, None),
    ("503-with-retry-after", answer(503, "", **{"Retry-After": "1"}), Transient, 1.0),
    ("502-html-from-a-proxy", answer(502, HTML_502), Transient, None),
    ("compliance-state", answer(400, COMPLIANCE), ComplianceState, None),
    ("forgotten-email", answer(400, FORGOTTEN), ForgottenAddress, None),
    ("fake-or-invalid-address", answer(400, FAKE_ADDRESS), PermanentRefusal, None),
    ("member-exists", answer(400, MEMBER_EXISTS), PermanentRefusal, None),
    ("merge-field-validation", answer(400, MERGE_FIELDS), PermanentRefusal, None),
    ("signup-throttle", answer(400, SIGNUP_THROTTLE), AddressThrottled, float(SIGNUP_THROTTLE_RETRY_SECONDS)),
    ("html-400", answer(400, HTML_400), PermanentRefusal, None),
    ("json-list-400", answer(400, json.dumps([{"title": "Member Exists"}])), PermanentRefusal, None),
    ("json-list-500", answer(500, json.dumps(["oops"])), Transient, None),
    ("401-key-invalid", answer(401, KEY_INVALID), CredentialsRejected, None),
    ("404-not-found", answer(404, NOT_FOUND), NotFound, None),
]


@pytest.mark.parametrize(("given", "expected", "retry_after"), [m[1:] for m in MAPPING], ids=[m[0] for m in MAPPING])
def test_each_mailchimp_answer_maps_to_exactly_one_error_type(given, expected, retry_after):
    error = error_from(given)
    assert type(error) is expected
    assert isinstance(error, MemberflowError)
    if isinstance(error, Transient):
        assert error.retry_after == retry_after


@pytest.mark.parametrize(
    "given",
    [answer(500, SERVER_ERROR), answer(502, HTML_502), answer(503)],
    ids=["500", "502-html", "503-empty"],
)
def test_server_errors_are_transient_but_not_a_rate_limit(given):
    error = error_from(given)
    assert isinstance(error, Transient)
    assert not isinstance(error, RateLimited)
    assert is_service_failure(error)


@pytest.mark.parametrize(
    "given",
    [answer(429, TOO_MANY), answer(429), answer(403)],
    ids=["429-problem", "429-empty", "bare-403"],
)
def test_throttling_without_retry_after_is_a_rate_limit_with_no_wait_given(given):
    error = error_from(given)
    assert isinstance(error, RateLimited) and not isinstance(error, RetryLater)
    assert error.retry_after is None
    assert is_service_failure(error)


def test_a_signup_throttle_is_one_addresss_wait_not_a_failing_service():
    # Mailchimp throttles the address, not the account: the member waits hours on the queue, nobody else waits.
    error = error_from(answer(400, SIGNUP_THROTTLE))
    assert isinstance(error, RetryLater) and error.delay_seconds == SIGNUP_THROTTLE_RETRY_SECONDS
    assert not is_service_failure(error)


def test_retry_after_header_is_read_whatever_its_case():
    error = error_from(answer(429, TOO_MANY, **{"retry-after": "12"}))
    assert isinstance(error, RateLimited) and error.retry_after == 12.0


def test_compliance_state_keeps_mailchimps_title_and_status():
    error = error_from(answer(400, COMPLIANCE))
    assert isinstance(error, ComplianceState) and isinstance(error, PermanentRefusal)
    assert error.title == error.reason == "Member In Compliance State"
    assert error.status == 400
    assert "compliance state" in error.detail
    assert not is_service_failure(error)


def test_forgotten_address_is_a_permanent_refusal_of_its_own():
    error = error_from(answer(400, FORGOTTEN))
    assert isinstance(error, ForgottenAddress) and isinstance(error, PermanentRefusal)
    assert not isinstance(error, ComplianceState)
    assert error.title == "Forgotten Email Not Subscribed"


def test_fake_or_invalid_address_is_a_plain_permanent_refusal_not_a_compliance_state_or_throttle():
    error = error_from(answer(400, FAKE_ADDRESS))
    assert type(error) is PermanentRefusal
    assert not isinstance(error, ComplianceState | ForgottenAddress | Transient)
    assert error.title == "Invalid Resource" and error.status == 400
    assert "looks fake or invalid" in error.detail


def test_signup_throttle_waits_hours_on_the_queue_instead_of_being_refused_for_good():
    error = error_from(answer(400, SIGNUP_THROTTLE))
    assert isinstance(error, RetryLater) and not isinstance(error, PermanentRefusal)
    assert error.delay_seconds >= 3600
    assert error.delay_seconds == SIGNUP_THROTTLE_RETRY_SECONDS


def test_html_400_is_refused_under_a_status_title():
    error = error_from(answer(400, HTML_400))
    assert type(error) is PermanentRefusal
    assert error.title == "HTTP 400" and error.status == 400
    assert "<html>" not in str(error)


def test_json_body_that_is_a_list_is_treated_as_no_problem_body():
    error = error_from(answer(400, json.dumps([{"title": "Member In Compliance State"}])))
    assert type(error) is PermanentRefusal and error.title == "HTTP 400"


@pytest.mark.parametrize(
    ("given", "expected"),
    [(answer(401, KEY_INVALID), CredentialsRejected), (answer(404, NOT_FOUND), NotFound)],
    ids=["401", "404"],
)
def test_credentials_and_missing_resources_are_account_problems_no_member_is_at_fault(given, expected):
    error = error_from(given)
    assert isinstance(error, expected) and isinstance(error, AccountProblem)
    assert not isinstance(error, PermanentRefusal | Transient)
    assert error.status == given.status
    assert is_service_failure(error)


REDACTED = [m for m in MAPPING if ADDRESS in m[1].text]


@pytest.mark.parametrize("given", [m[1] for m in REDACTED], ids=[m[0] for m in REDACTED])
def test_no_address_from_mailchimps_detail_survives_into_the_error(given):
    error = error_from(given)
    texts = [str(error), *(str(getattr(error, name, "")) for name in ("title", "detail", "reason"))]
    for text in texts:
        assert ADDRESS not in text
        assert "lovelace" not in text and "example.org" not in text


def test_redaction_keeps_the_rest_of_the_detail_readable():
    error = error_from(answer(400, FAKE_ADDRESS))
    assert error.detail.endswith("looks fake or invalid, please enter a real email address.")
    assert error.detail.startswith("a***@")


# -- the transport path, without a network -----------------------------------------------------------------------


class FakeResponse:
    """What `requests.Session.request` returns, as far as the transport reads it."""

    def __init__(self, status_code: int, text: str = "", headers: dict[str, str] | None = None) -> None:
        self.status_code = status_code
        self.text = text
        self.content = text.encode()
        self.headers = CaseInsensitiveDict(headers or {})

    def json(self):
        return json.loads(self.text)


class ScriptedSession:
    """Answers the next request with the next scripted response (or raises it), and notes what was sent."""

    def __init__(self, transport: HttpJsonTransport, *script: FakeResponse | Exception) -> None:
        self._transport = transport
        self._script = list(script)
        self.requests: list[dict] = []

    def __call__(self, method, url, json=None, params=None, timeout=None):
        self.requests.append(
            {
                "method": method,
                "url": url,
                "json": json,
                "params": params,
                "timeout": timeout,
                "auth": self._transport._session.auth,
            }
        )
        outcome = self._script.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


@pytest.fixture
def sleeps(monkeypatch):
    """Brief retries without waiting. `with_brief_retries` binds `time.sleep` as a default argument when it is
    defined, so the sleep is injected where the transport looks the function up."""
    waited: list[float] = []
    monkeypatch.setattr(http_json, "with_brief_retries", partial(with_brief_retries, sleep=waited.append))
    return waited


class KeySecret:
    """The `api_key` callable: the stored key, then the rotated one when read fresh."""

    def __init__(self, *keys: str) -> None:
        self._keys = list(keys)
        self.reads: list[bool] = []

    def __call__(self, fresh: bool) -> str:
        self.reads.append(fresh)
        if fresh and len(self._keys) > 1:
            self._keys.pop(0)
        return self._keys[0]


def mailchimp(
    monkeypatch, secret: KeySecret, *script: FakeResponse | Exception
) -> tuple[MailchimpList, ScriptedSession]:
    mailing_list = MailchimpList(secret, base_url=BASE_URL)
    transport = mailing_list._http
    session = ScriptedSession(transport, *script)
    monkeypatch.setattr(transport._session, "request", session)
    return mailing_list, session


def test_a_rejected_key_is_read_again_once_and_the_call_retried_with_the_new_key(monkeypatch, sleeps):
    secret = KeySecret("old-key-us21", "new-key-us21")
    mailing_list, session = mailchimp(
        monkeypatch, secret, FakeResponse(401, KEY_INVALID), FakeResponse(200, json.dumps({"status": "subscribed"}))
    )

    assert mailing_list.member_status("list1", ADDRESS) == "subscribed"
    assert secret.reads == [False, True]
    assert [r["auth"] for r in session.requests] == [("memberflow", "old-key-us21"), ("memberflow", "new-key-us21")]
    assert sleeps == []


def test_a_key_rejected_again_after_the_fresh_read_is_an_account_problem_not_a_loop(monkeypatch, sleeps):
    secret = KeySecret("old-key-us21", "still-wrong-us21")
    mailing_list, session = mailchimp(
        monkeypatch, secret, FakeResponse(401, KEY_INVALID), FakeResponse(401, KEY_INVALID)
    )

    with pytest.raises(CredentialsRejected):
        mailing_list.add_tags("list1", ADDRESS, ["platform:slack"])
    assert secret.reads == [False, True]
    assert len(session.requests) == 2


def test_an_unreachable_mailchimp_is_transient_and_no_requests_exception_escapes(monkeypatch, sleeps):
    secret = KeySecret("key-us21")
    mailing_list, session = mailchimp(
        monkeypatch,
        secret,
        requests.ConnectionError("Connection refused"),
        requests.ConnectionError("Connection refused"),
    )

    with pytest.raises(Transient) as raised:
        mailing_list.trigger_journey("j1", "s1", ADDRESS)
    assert not isinstance(raised.value, requests.RequestException)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    assert ADDRESS not in str(raised.value)
    assert len(session.requests) == 2  # one brief retry, then given up
    assert len(sleeps) == 1


def test_a_timeout_is_transient_too(monkeypatch, sleeps):
    mailing_list, _ = mailchimp(
        monkeypatch, KeySecret("key-us21"), requests.Timeout("read timed out"), requests.Timeout("read timed out")
    )
    with pytest.raises(Transient):
        mailing_list.member_status("list1", ADDRESS)


def test_a_batch_subscribe_that_timed_out_is_not_sent_again_at_once(monkeypatch, sleeps):
    # Mailchimp may have done the work: a second send would only double the load. Later repeats are safe.
    mailing_list, session = mailchimp(monkeypatch, KeySecret("key-us21"), requests.Timeout("read timed out"))

    with pytest.raises(Transient):
        mailing_list.subscribe_many("list1", [BulkMember(ADDRESS, "subscribed")])

    assert len(session.requests) == 1 and sleeps == []
    assert session.requests[0]["timeout"] == BULK_TIMEOUT_SECONDS > DEFAULT_TIMEOUT_SECONDS


def test_an_empty_2xx_answer_is_an_empty_object(monkeypatch, sleeps):
    transport = HttpJsonTransport(BASE_URL, error_from, service="Mailchimp")
    session = ScriptedSession(transport, FakeResponse(204), FakeResponse(200))
    monkeypatch.setattr(transport._session, "request", session)

    assert transport.call("POST", "/lists/list1/members/abc/tags", {"tags": []}) == {}
    assert transport.call("GET", "/ping") == {}


def test_tagging_and_triggering_accept_mailchimps_empty_204(monkeypatch, sleeps):
    mailing_list, session = mailchimp(monkeypatch, KeySecret("key-us21"), FakeResponse(204), FakeResponse(204))

    mailing_list.add_tags("list1", ADDRESS, ["cohort:2026-11"])
    mailing_list.trigger_journey("j1", "s1", ADDRESS)
    assert [r["method"] for r in session.requests] == ["POST", "POST"]
    assert session.requests[1]["url"] == f"{BASE_URL}/customer-journeys/journeys/j1/steps/s1/actions/trigger"


def test_a_server_error_then_success_is_retried_briefly_within_one_call(monkeypatch, sleeps):
    mailing_list, session = mailchimp(
        monkeypatch,
        KeySecret("key-us21"),
        FakeResponse(500, SERVER_ERROR),
        FakeResponse(200, json.dumps({"email_address": ADDRESS, "status": "pending"})),
    )

    member = mailing_list.upsert_member("list1", ADDRESS, status_if_new="pending", merge_fields={"FNAME": "Ada"})
    assert member.status == "pending"
    assert len(session.requests) == 2
    assert len(sleeps) == 1 and 0 < sleeps[0] <= 2.0


def test_a_long_retry_after_goes_back_to_the_queue_without_waiting(monkeypatch, sleeps):
    mailing_list, session = mailchimp(
        monkeypatch, KeySecret("key-us21"), FakeResponse(429, TOO_MANY, {"Retry-After": "60"})
    )

    with pytest.raises(RetryLater) as raised:
        mailing_list.add_tags("list1", ADDRESS, ["platform:slack"])
    assert raised.value.delay_seconds == 60
    assert len(session.requests) == 1 and sleeps == []


def test_a_signup_throttle_is_not_retried_inside_the_function(monkeypatch, sleeps):
    mailing_list, session = mailchimp(monkeypatch, KeySecret("key-us21"), FakeResponse(400, SIGNUP_THROTTLE))

    with pytest.raises(RetryLater) as raised:
        mailing_list.upsert_member("list1", ADDRESS, status_if_new="subscribed", merge_fields={})
    assert raised.value.delay_seconds == SIGNUP_THROTTLE_RETRY_SECONDS
    assert len(session.requests) == 1 and sleeps == []


def test_a_permanent_refusal_is_sent_once_and_not_retried(monkeypatch, sleeps):
    mailing_list, session = mailchimp(monkeypatch, KeySecret("key-us21"), FakeResponse(400, FAKE_ADDRESS))

    with pytest.raises(PermanentRefusal) as raised:
        mailing_list.upsert_member("list1", ADDRESS, status_if_new="subscribed", merge_fields={})
    assert raised.value.title == "Invalid Resource"
    assert ADDRESS not in str(raised.value)
    assert len(session.requests) == 1 and sleeps == []


def test_an_unknown_member_is_none_while_its_audience_exists(monkeypatch, sleeps):
    mailing_list, _ = mailchimp(
        monkeypatch,
        KeySecret("key-us21"),
        FakeResponse(404, NOT_FOUND),
        FakeResponse(200, json.dumps({"id": "list1"})),
    )
    assert mailing_list.member_status("list1", ADDRESS) is None


def test_an_unknown_member_of_a_missing_audience_is_an_account_problem(monkeypatch, sleeps):
    mailing_list, _ = mailchimp(
        monkeypatch, KeySecret("key-us21"), FakeResponse(404, NOT_FOUND), FakeResponse(404, NOT_FOUND)
    )
    with pytest.raises(NotFound):
        mailing_list.member_status("missing-list", ADDRESS)


AUDIENCE = json.dumps({"id": "list1"})
ONE_MEMBER_CALLS = {
    "add_tags": lambda mailing_list: mailing_list.add_tags("list1", ADDRESS, ["platform:slack"]),
    "set_status": lambda mailing_list: mailing_list.set_status("list1", ADDRESS, "pending"),
}
# (id, the call, Mailchimp's answers: the call's 404, then GET /lists/list1, the error raised)
MEMBER_404S = [
    (f"{name}-member-not-in-audience", call, [FakeResponse(404, NOT_FOUND), FakeResponse(200, AUDIENCE)], ResourceGone)
    for name, call in ONE_MEMBER_CALLS.items()
] + [
    (f"{name}-audience-missing", call, [FakeResponse(404, NOT_FOUND), FakeResponse(404, NOT_FOUND)], NotFound)
    for name, call in ONE_MEMBER_CALLS.items()
]


@pytest.mark.parametrize(("call", "answers", "expected"), [c[1:] for c in MEMBER_404S], ids=[c[0] for c in MEMBER_404S])
def test_a_404_about_one_member_is_that_members_refusal_unless_the_audience_is_missing(
    monkeypatch, sleeps, call, answers, expected
):
    # Archived or deleted by an admin between onboarding's steps: parked with its reason, while everyone else's
    # work goes on. Only a missing audience is the account's problem, backing the consumer off.
    mailing_list, session = mailchimp(monkeypatch, KeySecret("key-us21"), *answers)

    with pytest.raises(expected) as raised:
        call(mailing_list)

    assert type(raised.value) is expected
    assert session.requests[-1]["url"] == f"{BASE_URL}/lists/list1"
    assert is_service_failure(raised.value) is (expected is NotFound)
    decision = decide(raised.value, Delivery(receive_count=1), RetryPolicy(), service_failing=True)
    assert isinstance(decision, Park) is (expected is ResourceGone)
    assert ADDRESS not in str(raised.value)


ANSWERING_CALLS = {
    "member_status": (lambda mailing_list, list_id: mailing_list.member_status(list_id, ADDRESS), None),
    "forget": (lambda mailing_list, list_id: mailing_list.forget(list_id, ADDRESS), False),
}


@pytest.mark.parametrize("name", ANSWERING_CALLS)
def test_a_member_not_in_the_audience_is_an_answer_for_the_status_and_the_permanent_delete(monkeypatch, sleeps, name):
    """The same audience check as every call about one member; a missing member is no refusal here: not subscribed,
    or already forgotten. A missing audience stays the account's problem."""
    call, answer = ANSWERING_CALLS[name]
    mailing_list, session = mailchimp(
        monkeypatch, KeySecret("key-us21"), FakeResponse(404, NOT_FOUND), FakeResponse(200, AUDIENCE)
    )
    assert call(mailing_list, "list1") is answer
    assert [request["url"] for request in session.requests][-1] == f"{BASE_URL}/lists/list1"
    if name == "member_status":
        assert session.requests[0]["params"] == {"fields": "status"}

    mailing_list, _ = mailchimp(
        monkeypatch, KeySecret("key-us21"), FakeResponse(404, NOT_FOUND), FakeResponse(404, NOT_FOUND)
    )
    with pytest.raises(NotFound) as missing:
        call(mailing_list, "missing-list")
    assert type(missing.value) is NotFound and is_service_failure(missing.value)


def test_a_journey_404_is_left_to_the_caller_who_knows_the_audience(monkeypatch, sleeps):
    mailing_list, session = mailchimp(monkeypatch, KeySecret("key-us21"), FakeResponse(404, NOT_FOUND))

    with pytest.raises(NotFound):
        mailing_list.trigger_journey("j1", "s1", ADDRESS)
    assert len(session.requests) == 1


@pytest.mark.parametrize(
    "key", ["0123456789abcdef0123456789abcdef", "0123456789abcdef-", "-us21", "abc-us21.evil.example"]
)
def test_a_key_without_its_data_centre_never_becomes_a_host_name(key):
    # Whatever follows the last "-" would be the host: the key itself, with no "-", would go out in DNS lookups.
    with pytest.raises(ValueError, match="data centre"):
        api_url_for_key(key)


def test_the_data_centre_is_the_keys_suffix():
    assert api_url_for_key("0123456789abcdef0123456789abcdef-us21") == "https://us21.api.mailchimp.com/3.0"


def test_a_stored_key_without_its_data_centre_is_an_account_problem_that_does_not_quote_it():
    key = "0123456789abcdef0123456789abcdef"
    mailchimp = MailchimpList(lambda fresh: key)

    with pytest.raises(AccountProblem) as refused:
        mailchimp.member_status("list123", ADDRESS)

    assert is_service_failure(refused.value) and key not in str(refused.value)
