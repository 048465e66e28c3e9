"""The Eventbrite adapter against a small HTTP server that answers as Eventbrite does: the OAuth token as a Bearer
header, attendee lists followed through their continuation tokens, expansions, Eventbrite's error bodies mapped to
ours, and no request at all for an api_url off the API host."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from memberflow.adapters.eventbrite import EventbriteClient, error_from
from memberflow.adapters.http_json import HttpAnswer
from memberflow.errors import (
    AccountProblem,
    CredentialsRejected,
    NotFound,
    PermanentRefusal,
    RateLimited,
    Transient,
)

TOKEN = "eb-oauth-token"


class Eventbrite(BaseHTTPRequestHandler):
    requests: list[tuple[str, dict[str, list[str]], str]] = []
    attendees = [{"id": str(i), "event_id": "77", "profile": {"email": f"a{i}@example.org"}} for i in range(120)]
    throttle = False
    throttle_next = 0
    """The next this many requests are throttled (besides all of them while `throttle`)."""
    retry_after: str | None = None
    refusal = (401, "INVALID_AUTH")
    """What a request without our token is answered (the errors page gives INVALID_AUTH and INVALID_AUTH_HEADER 400)."""

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if status == 429 and Eventbrite.retry_after is not None:
            self.send_header("Retry-After", Eventbrite.retry_after)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self) -> None:  # noqa: N802
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        Eventbrite.requests.append((url.path, query, self.headers.get("Authorization", "")))
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            status, code = Eventbrite.refusal
            return self._answer(status, {"status_code": status, "error": code, "error_description": "no"})
        if Eventbrite.throttle or Eventbrite.throttle_next > 0:
            Eventbrite.throttle_next -= 1
            return self._answer(429, {"status_code": 429, "error": "HIT_RATE_LIMIT", "error_description": "slow"})
        if url.path == "/v3/events/77/attendees/":
            start = int(query.get("continuation", ["0"])[0])
            page = Eventbrite.attendees[start : start + 50]
            more = start + 50 < len(Eventbrite.attendees)
            pagination = {"object_count": len(Eventbrite.attendees), "page_size": 50, "has_more_items": more}
            if more:
                pagination["continuation"] = str(start + 50)
            return self._answer(200, {"attendees": page, "pagination": pagination})
        if url.path == "/v3/events/77/":
            return self._answer(200, {"id": "77", "end": {"utc": "2026-12-03T12:00:00Z"}})
        if url.path == "/v3/users/me/":
            return self._answer(200, {"id": "1234", "name": "memberflow", "emails": []})
        if url.path == "/v3/orders/13/":
            return self._answer(403, {"status_code": 403, "error": "NOT_AUTHORIZED", "error_description": "no"})
        if url.path == "/v3/orders/5/":
            return self._answer(200, {"id": "5", "event_id": "77", "attendees": Eventbrite.attendees[:1]})
        return self._answer(404, {"status_code": 404, "error": "NOT_FOUND", "error_description": "none"})


@pytest.fixture
def api() -> Iterator[str]:
    Eventbrite.requests = []
    Eventbrite.throttle, Eventbrite.throttle_next, Eventbrite.retry_after = False, 0, None
    Eventbrite.refusal = (401, "INVALID_AUTH")
    server = ThreadingHTTPServer(("127.0.0.1", 0), Eventbrite)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v3"
    server.shutdown()


def test_attendees_follow_the_continuation_tokens_with_the_bearer_token(api: str) -> None:
    client = EventbriteClient(lambda fresh: TOKEN, api)
    emails = [a["profile"]["email"] for a in client.attendees("77")]
    assert emails == [f"a{i}@example.org" for i in range(120)]
    assert [q.get("continuation") for _, q, _ in Eventbrite.requests] == [None, ["50"], ["100"]]
    assert {auth for _, _, auth in Eventbrite.requests} == {f"Bearer {TOKEN}"}


def test_an_order_is_fetched_with_its_attendees_and_event_expanded(api: str) -> None:
    client = EventbriteClient(lambda fresh: TOKEN, api)
    order = client.fetch(f"{api}/orders/5/")
    assert order["attendees"][0]["id"] == "0"
    assert Eventbrite.requests[0][1]["expand"] == ["attendees,event"]


def test_an_api_url_off_the_api_host_is_never_requested(api: str) -> None:
    client = EventbriteClient(lambda fresh: TOKEN, api)
    with pytest.raises(PermanentRefusal):
        client.fetch("http://127.0.0.2:1/v3/orders/5/")
    assert Eventbrite.requests == []


def test_a_rotated_token_is_read_again_once_and_errors_are_ours(api: str) -> None:
    tokens = iter(["stale-token", TOKEN])
    client = EventbriteClient(lambda fresh: next(tokens), api)
    assert client.fetch(f"{api}/orders/5/")["id"] == "5"

    Eventbrite.throttle = True
    with pytest.raises(RateLimited):
        client.event("77")
    refused = EventbriteClient(lambda fresh: "wrong", api)
    with pytest.raises(CredentialsRejected):
        refused.event("77")


@pytest.mark.parametrize(
    ("status", "code"), [(400, "INVALID_AUTH"), (400, "INVALID_AUTH_HEADER"), (401, "NO_AUTH"), (403, "INVALID_AUTH")]
)
def test_a_token_refused_by_its_error_code_is_read_again_once_whatever_the_status(
    api: str, status: int, code: str
) -> None:
    """Eventbrite's errors page (`{"error", "error_description", "status_code"}`) gives INVALID_AUTH and
    INVALID_AUTH_HEADER with 400: the code names a refused token, not a refused request."""
    Eventbrite.refusal = (status, code)
    tokens = iter(["stale-token", TOKEN])
    assert EventbriteClient(lambda fresh: next(tokens), api).event("77")["id"] == "77"
    assert [auth for _, _, auth in Eventbrite.requests] == ["Bearer stale-token", f"Bearer {TOKEN}"]

    Eventbrite.requests = []
    with pytest.raises(CredentialsRejected) as refused:
        EventbriteClient(lambda fresh: "wrong", api).event("77")
    assert refused.value.status == status and code in str(refused.value)
    assert len(Eventbrite.requests) == 2  # read again once, not resent as a transient failure


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (400, "BAD_PAGE", PermanentRefusal),
        (400, "ARGUMENTS_ERROR", PermanentRefusal),
        (403, "NOT_AUTHORIZED", AccountProblem),
        (404, "NOT_FOUND", NotFound),
        (429, "HIT_RATE_LIMIT", RateLimited),
        (500, "INTERNAL_ERROR", Transient),
    ],
)
def test_eventbrites_other_errors_keep_their_meaning(status: int, code: str, expected: type) -> None:
    body = json.dumps({"status_code": status, "error": code, "error_description": "x"})
    failure = error_from(HttpAnswer(status, body, {}))
    assert type(failure) is expected, failure


def test_eventbrite_is_available_when_it_answers_one_read_of_the_tokens_user(api: str) -> None:
    assert EventbriteClient(lambda fresh: TOKEN, api).is_available() is True
    assert Eventbrite.requests == [("/v3/users/me/", {}, f"Bearer {TOKEN}")]


def test_eventbrite_is_not_available_when_it_refuses_the_token_or_throttles_and_is_asked_once(api: str) -> None:
    assert EventbriteClient(lambda fresh: "wrong", api).is_available() is False
    assert len(Eventbrite.requests) == 2  # the token is read again once, as for every call

    Eventbrite.requests, Eventbrite.throttle = [], True
    assert EventbriteClient(lambda fresh: TOKEN, api).is_available() is False
    assert len(Eventbrite.requests) == 1  # not resent: the redrive's check stays one call


def test_a_404_on_a_webhooks_order_or_attendee_is_a_deletion_not_an_outage(api: str) -> None:
    """A deleted order or attendee: refused for good (parked at once should it ever reach the worker, never retried)
    and no service failure (the breaker does not count it). A configured event that is missing stays an account
    problem, and so does a 403 on one order (the token lost access: every fetch fails alike)."""
    from memberflow.errors import AccountProblem, NotFound, is_service_failure
    from memberflow.pipeline.policy import Delivery, Park, RetryPolicy, decide

    client = EventbriteClient(lambda fresh: TOKEN, api)
    for url in (f"{api}/orders/6/", f"{api}/events/77/attendees/9/", f"{api}/attendees/9/"):
        with pytest.raises(PermanentRefusal) as gone:
            client.fetch(url)
        assert not is_service_failure(gone.value)
        decision = decide(gone.value, Delivery(1), RetryPolicy(), service_failing=True)
        assert isinstance(decision, Park) and decision.kind == "refused"
    from memberflow.errors import ResourceGone

    assert isinstance(gone.value, ResourceGone) and gone.value.status == 404

    with pytest.raises(NotFound) as missing:
        client.event("78")
    assert is_service_failure(missing.value) and not isinstance(missing.value, PermanentRefusal)
    with pytest.raises(AccountProblem) as refused:
        client.fetch(f"{api}/orders/13/")
    assert refused.value.status == 403 and is_service_failure(refused.value)


def test_a_429_without_retry_after_is_raised_at_once_and_a_short_retry_after_is_waited_out(api: str) -> None:
    """Eventbrite's limit is per hour: a retry a moment after a bare 429 only spends another call."""
    client = EventbriteClient(lambda fresh: TOKEN, api)
    Eventbrite.throttle = True
    with pytest.raises(RateLimited) as throttled:
        client.event("77")
    assert throttled.value.retry_after is None
    assert len(Eventbrite.requests) == 1

    Eventbrite.requests, Eventbrite.throttle, Eventbrite.throttle_next = [], False, 1
    Eventbrite.retry_after = "0"  # it said how long: waited out, then answered
    assert [a["id"] for a in client.attendees("77")][:1] == ["0"]
    assert len(Eventbrite.requests) == 4  # the throttled first page, then the three pages


def test_a_metered_client_charges_each_request_and_sends_none_beyond_its_budget(api: str) -> None:
    from memberflow.registrations.reconcile import CallBudget, CallBudgetSpent, CallBudgetTooSmall

    client = EventbriteClient(lambda fresh: TOKEN, api)
    budget = CallBudget(5)
    metered = client.metered(budget)
    assert len(list(metered.attendees("77"))) == 120  # 3 pages
    assert budget.spent == 3 and not budget.eventbrite_throttled
    metered.event("77")
    Eventbrite.throttle_next, Eventbrite.retry_after = 1, "0"
    with pytest.raises(CallBudgetSpent):
        metered.event("77")  # the 429 spent the last call: its retry is not sent
    assert budget.spent == 5 and len(Eventbrite.requests) == 5
    assert budget.eventbrite_throttled  # the meter heard of the 429 (Mailchimp's throttling raises the same error)
    client.event("77")  # the client itself (webhook fetches) is not charged
    assert budget.spent == 5

    # A list whose first page says it needs more pages than the budget has left: the other pages are not read.
    Eventbrite.requests = []
    with pytest.raises(CallBudgetSpent, match="needs 2 more"):
        list(client.metered(CallBudget(5, spent=3)).attendees("77"))
    with pytest.raises(CallBudgetTooSmall, match="needs 4 Eventbrite calls"):
        list(client.metered(CallBudget(3)).attendees("77"))
    assert len(Eventbrite.requests) == 2  # each first page only


def test_the_shared_retry_raises_a_failure_it_is_told_not_to_retry_as_it_is_and_at_once() -> None:
    """Eventbrite's bare 429 goes past the brief retries through the shared retry's own option, not a wrapper."""
    from memberflow.adapters.eventbrite import _said_how_long
    from memberflow.retry import with_brief_retries

    bare, short = RateLimited("Eventbrite 429 HIT_RATE_LIMIT"), RateLimited("Eventbrite 429 HIT_RATE_LIMIT", 1)
    failures, waited = [short, bare], []

    def call() -> str:
        raise failures.pop(0)

    with pytest.raises(RateLimited) as raised:
        with_brief_retries(call, attempts=3, sleep=waited.append, retry_if=_said_how_long)
    assert raised.value is bare and failures == []
    assert len(waited) == 1  # the short Retry-After was waited out; the bare 429 was not retried
    assert _said_how_long(Transient("Eventbrite 500 INTERNAL_ERROR"))
