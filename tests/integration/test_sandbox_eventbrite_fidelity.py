"""The Eventbrite sandbox as a client written from Eventbrite's documentation sees it, over HTTP with plain
`requests`: both ways of paging (continuation tokens and `page=N`, walked to the end), both ways of passing the token,
the error documents (`{"status_code", "error", "error_description"}`: 400/401/403/404/429) and webhook deliveries.

Shapes: Eventbrite API overview (Pagination, Errors, Authentication), ../shared/reference (Eventbrite), and real
deliveries' headers (guscavalcante-dev/rio2c-private-sdlc SqlScripts/05_SampleData_Test.sql)."""

from __future__ import annotations

import threading

import pytest
import requests
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from memberflow_sandboxes.eventbrite import EventbriteSandbox
from memberflow_sandboxes.traffic import Budget

PAGINATION_KEYS = {"object_count", "page_number", "page_size", "page_count", "has_more_items"}


@pytest.fixture(scope="module")
def running():
    with EventbriteSandbox() as sandbox:
        yield sandbox


@pytest.fixture
def eventbrite(running):
    running.reset()
    running.set_webhook(None)
    yield running
    running.reset()
    running.set_webhook(None)


def bearer(sandbox: EventbriteSandbox) -> dict[str, str]:
    return {"Authorization": f"Bearer {sandbox.token}"}


def an_event(sandbox: EventbriteSandbox, event_id: str, attendees: int, organization_id: str | None = None) -> str:
    sandbox.create_event(event_id=event_id, organization_id=organization_id)
    people = [{"email": f"p{i}@example.org", "first_name": "P", "last_name": str(i)} for i in range(attendees)]
    return sandbox.place_order(event_id, people)["order_id"]


# ---------------------------------------------------------------- pagination


def test_a_continuation_walk_reads_every_attendee_once_and_stops_where_has_more_items_is_false(eventbrite):
    an_event(eventbrite, "77", 120)
    url, params, pages = f"{eventbrite.url}/events/77/attendees/", {}, []
    while True:
        page = requests.get(url, params=params, headers=bearer(eventbrite), timeout=5).json()
        pages.append(page)
        if not page["pagination"]["has_more_items"]:
            break
        params = {"continuation": page["pagination"]["continuation"]}

    paginations = [p["pagination"] for p in pages]
    assert all(PAGINATION_KEYS <= set(p) for p in paginations)
    assert [(p["page_number"], p["page_count"], p["object_count"], p["page_size"]) for p in paginations] == [
        (1, 3, 120, 50),
        (2, 3, 120, 50),
        (3, 3, 120, 50),
    ]
    assert ["continuation" in p for p in paginations] == [True, True, False]  # a token only while there is more
    ids = [a["id"] for p in pages for a in p["attendees"]]
    assert [len(p["attendees"]) for p in pages] == [50, 50, 20] and len(set(ids)) == 120


def test_a_page_number_walk_reads_each_page_and_a_page_that_does_not_exist_is_bad_page(eventbrite):
    # "You can specify the page number you would like to request using the page parameter ... keep incrementing the
    # page number until you get the BAD_PAGE error" (Pagination); BAD_PAGE, 400 (Errors).
    an_event(eventbrite, "77", 120)

    def page(number):
        return requests.get(
            f"{eventbrite.url}/events/77/attendees/", params={"page": number}, headers=bearer(eventbrite), timeout=5
        )

    pages = [page(n).json() for n in (1, 2, 3)]
    assert [p["pagination"]["page_number"] for p in pages] == [1, 2, 3]
    assert [p["pagination"]["has_more_items"] for p in pages] == [True, True, False]
    assert len({a["id"] for p in pages for a in p["attendees"]}) == 120
    for wrong in (4, 0, -1, "two"):
        refused = page(wrong)
        assert refused.status_code == 400, wrong
        assert refused.json()["error"] == "BAD_PAGE" and refused.json()["status_code"] == 400


# ---------------------------------------------------------------- authentication


def test_the_token_in_the_query_works_as_the_header_does_and_each_auth_failure_has_its_code(eventbrite):
    # Authentication: `Authorization: Bearer <token>` or `?token=<token>`. Errors: NO_AUTH 401 (none given),
    # INVALID_AUTH_HEADER 400 (a malformed header), INVALID_AUTH (a token that is not valid: 401 as the API answers).
    me = f"{eventbrite.url}/users/me/"

    by_query = requests.get(me, params={"token": eventbrite.token}, timeout=5)
    none = requests.get(me, timeout=5)
    malformed = requests.get(me, headers={"Authorization": f"Token {eventbrite.token}"}, timeout=5)
    wrong = requests.get(me, headers={"Authorization": "Bearer not-the-token"}, timeout=5)

    assert by_query.status_code == 200 and by_query.json()["id"] == eventbrite.user_id
    assert (none.status_code, none.json()["error"]) == (401, "NO_AUTH")
    assert (malformed.status_code, malformed.json()["error"]) == (400, "INVALID_AUTH_HEADER")
    assert wrong.status_code == 401
    assert wrong.json() == {
        "status_code": 401,
        "error": "INVALID_AUTH",
        "error_description": "The OAuth token you provided was invalid.",
    }


# ---------------------------------------------------------------- errors


def test_another_organizations_order_and_attendees_are_not_authorized_and_a_missing_order_is_not_found(eventbrite):
    order_id = an_event(eventbrite, "88", 2, organization_id="999")

    order = requests.get(f"{eventbrite.url}/orders/{order_id}/", headers=bearer(eventbrite), timeout=5)
    attendees = requests.get(f"{eventbrite.url}/events/88/attendees/", headers=bearer(eventbrite), timeout=5)
    missing = requests.get(f"{eventbrite.url}/orders/1/", headers=bearer(eventbrite), timeout=5)

    not_authorized = {
        "status_code": 403,
        "error": "NOT_AUTHORIZED",
        "error_description": "You do not have permission to access the resource you requested.",
    }
    assert (order.status_code, order.json()) == (403, not_authorized)
    assert (attendees.status_code, attendees.json()) == (403, not_authorized)
    assert missing.status_code == 404
    assert set(missing.json()) == {"status_code", "error", "error_description"}
    assert missing.json()["error"] == "NOT_FOUND" and missing.json()["status_code"] == 404


def test_over_the_hourly_limit_a_429_says_hit_rate_limit_with_the_retry_after_set(eventbrite):
    eventbrite.set_rate_limit(calls_per_hour=1, retry_after=30)
    assert requests.get(f"{eventbrite.url}/users/me/", headers=bearer(eventbrite), timeout=5).status_code == 200

    throttled = requests.get(f"{eventbrite.url}/users/me/", headers=bearer(eventbrite), timeout=5)

    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "30"
    body = throttled.json()
    assert (body["status_code"], body["error"]) == (429, "HIT_RATE_LIMIT") and body["error_description"]


def test_the_hourly_limit_is_the_shared_budget_an_hour_long_that_counts_refused_calls_too(eventbrite):
    eventbrite.set_rate_limit(calls_per_hour=1)
    statuses = [
        requests.get(f"{eventbrite.url}/users/me/", headers=bearer(eventbrite), timeout=5).status_code for _ in range(3)
    ]

    budget = eventbrite.state.budget
    assert statuses == [200, 429, 429]
    assert isinstance(budget, Budget) and (budget.requests, budget.window_seconds) == (1, 3600.0)
    assert eventbrite.calls_this_hour == 3 and budget.used == 1  # every call counts; one was granted
    eventbrite.reset()
    assert eventbrite.state.calls_per_hour is None and eventbrite.calls_this_hour == 0


# ---------------------------------------------------------------- webhooks


def test_a_delivery_carries_eventbrites_headers_and_an_api_url_the_token_reads(eventbrite):
    received: list[tuple[dict[str, str], dict]] = []

    def app(environ, start_response):
        request = Request(environ)
        received.append((dict(request.headers), request.get_json(force=True)))
        return Response("", 200)(environ, start_response)

    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_port}/webhooks/eventbrite/SECRET"
    try:
        eventbrite.set_webhook(endpoint)
        order_id = an_event(eventbrite, "77", 1)
    finally:
        server.shutdown()
        server.server_close()

    [(headers, body)] = received
    assert headers["X-Eventbrite-Event"] == "order.placed"
    assert headers["X-Eventbrite-Delivery"] == body["config"]["webhook_id"] == eventbrite.webhook_id
    assert headers["User-Agent"] == "Eventbrite Webhooks (Dilithium)"
    assert not any(name.lower().startswith("x-eventbrite-signature") for name in headers)  # unsigned
    assert body["config"] == {
        "action": "order.placed",
        "user_id": eventbrite.user_id,
        "endpoint_url": endpoint,  # the webhook's URL as registered
        "webhook_id": eventbrite.webhook_id,
    }
    assert body["api_url"] == f"{eventbrite.url}/orders/{order_id}/"
    order = requests.get(body["api_url"], params={"expand": "attendees"}, headers=bearer(eventbrite), timeout=5)
    assert order.json()["id"] == order_id and order.json()["attendees"][0]["profile"]["email"] == "p0@example.org"
