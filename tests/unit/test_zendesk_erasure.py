"""The Zendesk part of an erasure through zenpy and the adapter, without a network (answers canned on the adapter's
own session, matched on path and query): users are found without search, whose index lags minutes (a requester
created a minute ago is not in it), and permanent deletes are paced within Zendesk's 700 users per 10 minutes."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
import requests
from test_template import FUNCTIONS, TEMPLATE, resolve_defaults, sqs_sources
from test_zendesk_errors import Canned, _response, real_zendesk_host  # noqa: F401 - the autouse fixture too

from memberflow.adapters.zendesk import (
    DEFAULT_PERMANENT_DELETES_PER_WINDOW,
    PERMANENT_DELETE_WINDOW_SECONDS,
    PermanentDeletePace,
    ZendeskDesk,
)
from memberflow.errors import RetryLater

ADA = "ada@example.org"
IDENTITY = "slack:T1:U1"
TICKETS = "community-0123456789abcdef0123456789abcdef"
"""The `external_id` of the tickets of Ada's thread (`escalation.service.external_id`)."""


class CannedQuery(Canned):
    """`Canned`, matched on the path and, when the pattern names one after `\\?`, a parameter of the decoded query
    (`...show_many\\.json\\?ids=21`; zenpy adds paging parameters, in no fixed order)."""

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        parts = urlsplit(str(request.url))
        path, query = unquote(parts.path), unquote(parts.query)
        self.sent.append((str(request.method), path + (f"?{query}" if query else "")))
        for (method, pattern), (status, body) in self.answers.items():
            path_pattern, _, parameter = pattern.partition(r"\?")
            if method == request.method and re.fullmatch(path_pattern, path):
                if not parameter or any(re.fullmatch(parameter, given) for given in query.split("&")):
                    return _response(request, status, body)
        raise AssertionError(f"unexpected call {request.method} {path}?{query}")


def desk(answers: dict[tuple[str, str], tuple[int, Any]], pace: PermanentDeletePace | None = None):
    zd = ZendeskDesk(lambda: {"email": "agent@example.org", "api_token": "t"}, "community", permanent_deletes=pace)
    canned = CannedQuery(answers)
    zd.session.mount("https://", canned)
    return zd, canned


def user(user_id: int, email: str | None, external_id: str | None = None, name: str = "Ada") -> dict:
    return {"id": user_id, "name": name, "email": email, "external_id": external_id, "active": True}


def users(*found: dict) -> tuple[int, dict]:
    return 200, {"users": list(found), "next_page": None, "count": len(found)}


def tickets(*found: dict) -> tuple[int, dict]:
    return 200, {"tickets": list(found), "meta": {"has_more": False}, "links": {"next": None}, "count": len(found)}


def ticket(ticket_id: int, requester_id: int | None, status: str = "new") -> dict:
    return {"id": ticket_id, "status": status, "requester_id": requester_id, "external_id": TICKETS}


NOT_INDEXED = (200, {"results": [], "next_page": None, "count": 0})
"""Search, minutes behind: the requester Zendesk created a minute ago is not in it yet."""
NO_DELETED_USERS = (200, {"deleted_users": [], "meta": {"has_more": False}, "links": {"next": None}})


def deleted(user_id: int) -> dict[tuple[str, str], tuple[int, Any]]:
    """The requested tickets (none left open), the soft delete and the permanent delete of user `user_id`."""
    return {
        ("GET", rf"/api/v2/users/{user_id}/tickets/requested\.json"): tickets(),
        ("DELETE", rf"/api/v2/users/{user_id}\.json"): (200, {"user": user(user_id, None)}),
        ("DELETE", rf"/api/v2/deleted_users/{user_id}\.json"): (200, {"deleted_user": {"id": user_id}}),
    }


def deletes(canned: Canned) -> list[str]:
    return [path.split("?")[0] for method, path in canned.sent if method == "DELETE"]


def test_a_requester_a_bulk_job_created_a_minute_ago_is_found_through_the_members_tickets_not_search():
    """A bulk job's requester is created by address only (no external id): before, only search found them, and a
    minute after the ticket search does not know them yet. Their ticket, listed by external id, names them."""
    zd, canned = desk(
        {
            ("GET", rf"/api/v2/users/show_many\.json\?external_ids={IDENTITY}"): users(),
            ("GET", rf"/api/v2/tickets\.json\?external_id={TICKETS}"): tickets(ticket(7, 21)),
            ("GET", r"/api/v2/users/show_many\.json\?ids=21"): users(user(21, "Ada@Example.org")),
            ("GET", r"/api/v2/search\.json"): NOT_INDEXED,
            ("GET", r"/api/v2/users/21/tickets/requested\.json"): tickets(ticket(7, 21)),
            ("PUT", r"/api/v2/tickets/7\.json"): (200, {"ticket": ticket(7, 21, "closed"), "audit": {"id": 1}}),
            ("DELETE", r"/api/v2/users/21\.json"): (200, {"user": user(21, ADA)}),
            ("DELETE", r"/api/v2/deleted_users/21\.json"): (200, {"deleted_user": {"id": 21}}),
            ("GET", r"/api/v2/deleted_users\.json"): NO_DELETED_USERS,
        }
    )

    assert zd.forget_requester([ADA], [IDENTITY], [TICKETS]) == 1

    assert deletes(canned) == ["/api/v2/users/21.json", "/api/v2/deleted_users/21.json"]
    assert ("PUT", "/api/v2/tickets/7.json") in canned.sent  # closed first: Zendesk keeps an open ticket's requester


def test_a_requester_who_is_someone_else_is_left_alone():
    """An agent made another person the requester of the member's ticket: only this person's users are deleted."""
    zd, canned = desk(
        {
            ("GET", rf"/api/v2/users/show_many\.json\?external_ids={IDENTITY}"): users(),
            ("GET", rf"/api/v2/tickets\.json\?external_id={TICKETS}"): tickets(ticket(7, 31), ticket(8, None)),
            ("GET", r"/api/v2/users/show_many\.json\?ids=31"): users(user(31, "bob@example.org", "slack:T1:U2")),
            ("GET", r"/api/v2/search\.json"): NOT_INDEXED,
            ("GET", r"/api/v2/deleted_users\.json"): NO_DELETED_USERS,
        }
    )

    assert zd.forget_requester([ADA], [IDENTITY], [TICKETS]) == 0

    assert deletes(canned) == []


def test_a_user_found_both_by_identity_and_through_a_ticket_is_read_and_deleted_once():
    zd, canned = desk(
        {
            ("GET", rf"/api/v2/users/show_many\.json\?external_ids={IDENTITY}"): users(user(21, ADA, IDENTITY)),
            ("GET", rf"/api/v2/tickets\.json\?external_id={TICKETS}"): tickets(ticket(7, 21, "closed")),
            ("GET", r"/api/v2/search\.json"): NOT_INDEXED,
            **deleted(21),
            ("GET", r"/api/v2/deleted_users\.json"): NO_DELETED_USERS,
        }
    )

    assert zd.forget_requester([ADA], [IDENTITY], [TICKETS, TICKETS]) == 1

    assert not any("?ids=" in path for _, path in canned.sent)  # no second read of a user already found
    assert sum(f"external_id={TICKETS}" in path for _, path in canned.sent) == 1
    assert deletes(canned) == ["/api/v2/users/21.json", "/api/v2/deleted_users/21.json"]


def test_more_than_100_identities_are_looked_up_100_a_call():
    """`users/show_many` takes at most 100 external ids (as it does ids): a member with more identities is looked up
    in chunks, and a user found in any chunk is deleted."""
    identities = [f"slack:T{i}:U{i}" for i in range(205)]
    zd, canned = desk(
        {
            ("GET", r"/api/v2/users/show_many\.json\?external_ids=(.*,)?slack:T204:U204(,.*)?"): users(
                user(204, ADA, "slack:T204:U204")
            ),
            ("GET", r"/api/v2/users/show_many\.json\?external_ids=.*"): users(),
            **deleted(204),
            ("GET", r"/api/v2/deleted_users\.json"): NO_DELETED_USERS,
        }
    )

    assert zd.forget_requester([], identities) == 1

    asked = [
        part.removeprefix("external_ids=").split(",")
        for _, path in canned.sent
        if path.startswith("/api/v2/users/show_many.json?")
        for part in path.split("?", 1)[1].split("&")
        if part.startswith("external_ids=")
    ]
    assert [len(chunk) for chunk in asked] == [100, 100, 5]
    assert [identity for chunk in asked for identity in chunk] == identities
    assert deletes(canned) == ["/api/v2/users/204.json", "/api/v2/deleted_users/204.json"]


def deleted_user_reads(canned: Canned) -> int:
    return sum(path.split("?")[0] == "/api/v2/deleted_users.json" for method, path in canned.sent if method == "GET")


class RetryAfterOn429(CannedQuery):
    """`CannedQuery`, with a minute's Retry-After on every 429 (past the rate-limit budget: `RetryLater`)."""

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        response = super().send(request, **kwargs)
        if response.status_code == 429:
            response.headers["Retry-After"] = "60"
        return response


def test_the_deleted_users_are_read_once_per_attempt_that_gets_that_far():
    """The deleted users list holds every user ever deleted, read in full once per attempt that reaches it: the retry
    after a permanent delete that failed past the soft delete finds its user there, and so does any erasure whose
    user another attempt (in another container) or an agent soft-deleted while another of their users is live."""
    zd = ZendeskDesk(lambda: {"email": "agent@example.org", "api_token": "t"}, "community")
    canned = RetryAfterOn429(
        {
            **found_by_identity(21, 22),
            ("DELETE", r"/api/v2/deleted_users/21\.json"): (429, {"error": "TooManyRequests"}),
        }
    )
    zd.session.mount("https://", canned)
    identities = ["slack:T1:U21", "slack:T1:U22"]

    with pytest.raises(RetryLater):
        zd.forget_requester([], identities)
    assert deletes(canned) == ["/api/v2/users/21.json", "/api/v2/deleted_users/21.json"]
    assert deleted_user_reads(canned) == 0

    # 21 is soft-deleted now: no longer listed by identity, only among the deleted users.
    canned.answers.update(
        {
            ("GET", r"/api/v2/users/show_many\.json\?external_ids=.*"): users(
                user(22, "u22@example.org", identities[1])
            ),
            ("GET", r"/api/v2/deleted_users\.json"): (
                200,
                {"deleted_users": [{**user(21, "u21@example.org", identities[0]), "active": False}]},
            ),
            ("DELETE", r"/api/v2/deleted_users/21\.json"): (200, {"deleted_user": {"id": 21}}),
        }
    )
    canned.sent.clear()
    assert zd.forget_requester([], identities) == 2
    assert deleted_user_reads(canned) == 1
    assert deletes(canned) == [f"/api/v2/{kind}/22.json" for kind in ("users", "deleted_users")] + [
        "/api/v2/deleted_users/21.json"
    ]

    canned.sent.clear()  # nothing tells a later erasure whether one of its users was soft-deleted elsewhere
    canned.answers[("GET", r"/api/v2/users/show_many\.json\?external_ids=.*")] = users(user(23, None, "slack:T1:U23"))
    canned.answers.update(deleted(23))
    assert zd.forget_requester([], ["slack:T1:U23"]) == 1
    assert deleted_user_reads(canned) == 1


def test_a_tickets_requester_no_longer_listed_sends_the_erasure_to_the_deleted_users():
    """Another container's attempt soft-deleted the requester of the member's ticket: their ticket still names them,
    though the live lookups no longer find them (another of their users still is live)."""
    soft = {**user(21, ADA), "active": False}
    zd, canned = desk(
        {
            ("GET", rf"/api/v2/users/show_many\.json\?external_ids={IDENTITY}"): users(user(22, None, IDENTITY)),
            ("GET", rf"/api/v2/tickets\.json\?external_id={TICKETS}"): tickets(ticket(7, 21, "closed")),
            ("GET", r"/api/v2/users/show_many\.json\?ids=21"): users(),
            ("GET", r"/api/v2/search\.json"): NOT_INDEXED,
            **deleted(22),
            ("GET", r"/api/v2/deleted_users\.json"): (200, {"deleted_users": [soft], "meta": {"has_more": False}}),
            ("DELETE", r"/api/v2/deleted_users/21\.json"): (200, {"deleted_user": {"id": 21}}),
        }
    )

    assert zd.forget_requester([ADA], [IDENTITY], [TICKETS]) == 2

    assert deleted_user_reads(canned) == 1
    assert deletes(canned)[-1] == "/api/v2/deleted_users/21.json"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def found_by_identity(*ids: int) -> dict[tuple[str, str], tuple[int, Any]]:
    answers: dict[tuple[str, str], tuple[int, Any]] = {
        ("GET", r"/api/v2/users/show_many\.json\?external_ids=.*"): users(
            *(user(i, f"u{i}@example.org", f"slack:T1:U{i}") for i in ids)
        ),
        ("GET", r"/api/v2/search\.json"): NOT_INDEXED,
        ("GET", r"/api/v2/deleted_users\.json"): NO_DELETED_USERS,
    }
    for i in ids:
        answers.update(deleted(i))
    return answers


def test_permanent_deletes_are_paced_and_a_full_window_hands_the_erasure_back_before_touching_the_user():
    clock = Clock()
    pace = PermanentDeletePace(limit=2, window_seconds=600, clock=clock)
    zd, canned = desk(found_by_identity(21, 22, 23), pace)

    with pytest.raises(RetryLater) as later:
        zd.forget_requester([], ["slack:T1:U21", "slack:T1:U22", "slack:T1:U23"])

    assert later.value.delay_seconds == 600  # until the first delete of the window is 10 minutes old
    assert deletes(canned) == [f"/api/v2/{kind}/{i}.json" for i in (21, 22) for kind in ("users", "deleted_users")]
    assert not any("/23" in path for _, path in canned.sent)  # the third user is as they were: nothing half done

    # The queue's retry in the same window (the adapter lives as long as its container) waits too; 21 and 22 are
    # gone from Zendesk by now.
    canned.answers[("GET", r"/api/v2/users/show_many\.json\?external_ids=.*")] = users(
        user(23, "u23@example.org", "slack:T1:U23")
    )
    clock.now += 400
    with pytest.raises(RetryLater) as later:
        zd.forget_requester([], ["slack:T1:U21", "slack:T1:U22", "slack:T1:U23"])
    assert later.value.delay_seconds == 200

    clock.now += 200  # the queue held the erasure that long
    canned.sent.clear()
    assert zd.forget_requester([], ["slack:T1:U21", "slack:T1:U22", "slack:T1:U23"]) == 1
    assert deletes(canned) == ["/api/v2/users/23.json", "/api/v2/deleted_users/23.json"]


def test_a_user_left_soft_deleted_waits_for_the_pace_too():
    clock = Clock()
    pace = PermanentDeletePace(limit=1, window_seconds=600, clock=clock)
    soft = {"id": 11, "name": "Ada", "email": ADA, "external_id": None, "active": False}
    zd, canned = desk(
        {
            ("GET", r"/api/v2/users/show_many\.json\?external_ids=.*"): users(),
            ("GET", r"/api/v2/search\.json"): NOT_INDEXED,
            ("GET", r"/api/v2/deleted_users\.json"): (200, {"deleted_users": [soft], "meta": {"has_more": False}}),
            ("DELETE", r"/api/v2/deleted_users/11\.json"): (200, {"deleted_user": {"id": 11}}),
        },
        pace,
    )
    pace.take()  # another erasure took the window's one permanent delete

    with pytest.raises(RetryLater):
        zd.forget_requester([ADA], [IDENTITY])
    assert deletes(canned) == []

    clock.now += 600
    assert zd.forget_requester([ADA], [IDENTITY]) == 1
    assert deletes(canned) == ["/api/v2/deleted_users/11.json"]


def test_the_default_pace_keeps_the_escalation_consumers_containers_within_zendesks_limit():
    """700 users per 10 minutes per account (the reference), shared by the escalation consumer's concurrent
    containers (its queue's MaximumConcurrency), each with its own adapter and pace."""
    [source] = sqs_sources(FUNCTIONS["EscalationFunction"]).values()
    containers = int(resolve_defaults(source, TEMPLATE["Parameters"])["ScalingConfig"]["MaximumConcurrency"])
    assert PERMANENT_DELETE_WINDOW_SECONDS == 600
    assert containers * DEFAULT_PERMANENT_DELETES_PER_WINDOW <= 700
    assert ZendeskDesk(lambda: {}, "community")._pace.limit == DEFAULT_PERMANENT_DELETES_PER_WINDOW
