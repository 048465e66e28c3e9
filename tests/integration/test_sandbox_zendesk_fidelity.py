"""The Zendesk sandbox as zenpy (unmodified, pointed at it with ZENPY_FORCE_SCHEME / ZENPY_FORCE_NETLOC) sees Zendesk:
cursor pages it follows by `links.next`, search pages by `next_page` up to Zendesk's 1,000 results, `users/search`,
a search index that lags for tickets as for users, rate-limit headers on every answer (zenpy's
`proactive_ratelimit` reads them), 422 `RecordInvalid` for an unusable address, absolute record URLs, and zenpy's
own Retry-After loop. What test_sandbox_escalation_services.py and test_zendesk_erasure_retry.py already cover
(idempotency keys, job statuses, the budget's 429 through the adapter, deletion rules, webhooks) is not repeated."""

from __future__ import annotations

import time

import pytest
import requests
from zenpy import Zenpy
from zenpy.lib.api_objects import Comment, Ticket, User
from zenpy.lib.exception import APIException

from memberflow_sandboxes.zendesk import ZendeskSandbox
from support import zendesk as zendesk_fixtures

zendesk = zendesk_fixtures.zendesk
fresh = zendesk_fixtures.fresh


def bulk_tickets(client: Zenpy, count: int, external_id: str, requester_id: int) -> None:
    """`count` tickets sharing one external id, made with zenpy's create_many (100 a job, as Zendesk takes)."""
    for start in range(0, count, 100):
        tickets = [
            Ticket(subject=f"row {n}", comment=Comment(body="b"), requester_id=requester_id, external_id=external_id)
            for n in range(start, min(count, start + 100))
        ]
        client.tickets.create(tickets)


def calls(sandbox: ZendeskSandbox, endpoint: str) -> int:
    return sandbox.state.snapshot()["calls"].get(endpoint, 0)


def test_zenpy_follows_cursor_pages_of_100_through_links_next_back_to_the_sandbox(zendesk):
    client = zendesk.zenpy()
    ada = client.users.create_or_update(User(name="Ada", email="ada@example.org"))
    bulk_tickets(client, 230, "same", ada.id)

    listed = [t.id for t in client.tickets(external_id="same")]
    assert len(listed) == len(set(listed)) == 230 and listed == sorted(listed)
    assert calls(zendesk, "GET /tickets.json") == 3  # page[size]=100, then page[after] twice
    assert len(list(client.users.requested(ada))) == 230
    assert calls(zendesk, "GET /users/{user_id}/tickets/requested.json") == 3

    session = requests.Session()
    session.auth = (f"{zendesk.email}/token", zendesk.api_token)
    first = session.get(f"{zendesk.url}/tickets.json", params={"page[size]": 100}, timeout=5).json()
    assert first["meta"]["has_more"] is True and first["links"]["next"].startswith(zendesk.url + "/tickets.json?")
    last = session.get(f"{zendesk.url}/tickets.json", params={"page[size]": 200, "page[after]": "x"}, timeout=5)
    assert last.status_code == 400 and last.json()["error"]["title"] == "Invalid attribute"


def test_zenpy_search_follows_next_page_and_stops_at_zendesks_1000_results(zendesk):
    client = zendesk.zenpy()
    ada = client.users.create_or_update(User(name="Ada", email="ada@example.org"))
    bulk_tickets(client, 230, "same", ada.id)

    found = client.search(type="ticket", external_id="same")
    assert len([t.id for t in found]) == 230 and found.count == 230
    assert calls(zendesk, "GET /search.json") == 3  # 100 a page, next_page absolute and pointing here

    bulk_tickets(client, 900, "more", ada.id)
    many = client.search("row*", type="ticket")  # 1,130 match: Zendesk gives the first 1,000
    assert len(list(many)) == 1000 and many.count == 1130
    assert zendesk.state.snapshot()["request_counts"].get("422") == 1  # page 11: zenpy's SearchResponseLimitExceeded


def test_zenpy_users_search_by_address_part_or_external_id(zendesk):
    client = zendesk.zenpy()
    client.users.create_or_update(User(name="Ada Lovelace", email="ada@example.org", external_id="slack:T1:U1"))
    client.users.create_or_update(User(name="Bo", email="bo@example.org"))
    assert [u.name for u in client.users.search(query="ada@example.org")] == ["Ada Lovelace"]
    assert [u.name for u in client.users.search(query="lovelace")] == ["Ada Lovelace"]
    assert [u.email for u in client.users.search(external_id="slack:T1:U1")] == ["ada@example.org"]
    assert list(client.users.search(query="nobody")) == []


def test_tickets_are_found_by_search_only_once_indexed(zendesk):
    client = zendesk.zenpy()
    ada = client.users.create_or_update(User(name="Ada", email="ada@example.org"))
    bulk_tickets(client, 1, "first", ada.id)
    assert len(list(client.search(type="ticket", external_id="first"))) == 1
    zendesk.set_search_lag(600)
    bulk_tickets(client, 1, "second", ada.id)
    assert list(client.search(type="ticket", external_id="second")) == []  # Zendesk's index is minutes behind
    assert len(list(client.tickets(external_id="second"))) == 1  # listing by external id is not search


def test_every_answer_carries_rate_limit_headers_so_proactive_ratelimit_does_not_stall(zendesk):
    client = Zenpy(
        subdomain="sandbox",
        email=zendesk.email,
        token=zendesk.api_token,
        disable_cache=True,
        proactive_ratelimit=5,
        proactive_ratelimit_request_interval=3,
    )
    zendesk.zenpy()  # sets ZENPY_FORCE_SCHEME / ZENPY_FORCE_NETLOC
    started = time.monotonic()
    for _ in range(3):
        client.users.me()
    with pytest.raises(APIException):
        client.tickets(id=987654)
    client.users.me()
    assert time.monotonic() - started < 2  # without the headers zenpy takes "0 remaining" and sleeps 3 s a call

    zendesk.set_budget(6, window_seconds=60)  # a real budget: zenpy slows down once fewer than 5 are left
    client.users.me()  # 5 left
    client.users.me()  # 4 left
    started = time.monotonic()
    client.users.me()
    assert time.monotonic() - started >= 2


def test_an_address_zendesk_cannot_use_is_422_record_invalid_with_details(zendesk):
    with pytest.raises(APIException) as refused:
        zendesk.zenpy().users.create_or_update(User(name="Bo", email="not-an-address"))
    response = refused.value.response
    assert response.status_code == 422 and response.json()["error"] == "RecordInvalid"
    assert response.json()["details"]["email"][0]["error"] == "InvalidFormat"
    assert zendesk.state.snapshot()["users"] == []


def test_records_name_themselves_by_absolute_url_on_the_sandbox(zendesk):
    client = zendesk.zenpy()
    user = client.users.create_or_update(User(name="Ada", email="ada@example.org"))
    assert user.url == f"{zendesk.url}/users/{user.id}.json"
    audit = client.tickets.create(Ticket(subject="s", comment=Comment(body="b"), requester_id=user.id))
    assert client.tickets(id=audit.ticket.id).url == f"{zendesk.url}/tickets/{audit.ticket.id}.json"
    assert zendesk.state.snapshot()["users"][0]["url"] == f"/api/v2/users/{user.id}.json"  # stored as before


def test_zenpy_waits_out_retry_after_itself_and_then_succeeds(zendesk):
    zendesk.set_budget(1, window_seconds=2)
    client = zendesk.zenpy()
    client.users.me()
    started = time.monotonic()
    assert client.users.me().id == 1  # 429 with an integer Retry-After, slept in 1 s steps, sent again
    assert time.monotonic() - started >= 1
    assert zendesk.state.snapshot()["request_counts"]["429"] >= 1


def test_zenpy_reads_several_tickets_at_once_by_id(zendesk):
    client = zendesk.zenpy()
    ada = client.users.create_or_update(User(name="Ada", email="ada@example.org"))
    made = [
        client.tickets.create(Ticket(subject=f"t{n}", comment=Comment(body="b"), requester_id=ada.id)).ticket.id
        for n in range(3)
    ]

    shown = client.tickets(ids=[made[2], made[0], 999999])

    assert sorted(t.id for t in shown) == sorted([made[0], made[2]])
    assert calls(zendesk, "GET /tickets/show_many.json") == 1
