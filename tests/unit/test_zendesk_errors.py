"""Zendesk's 404s as memberflow errors, through zenpy and the adapter without a network (answers are canned on the
adapter's own session). A `RecordNotFound` for a per-resource lookup (a job status, kept one day; a ticket deleted
in Zendesk; a requester already gone) is that request's answer, not a failing service; any other 404
(`InvalidEndpoint` for a wrong API path, an HTML page for an unknown subdomain) or a `RecordNotFound` on a call that
names no record means the account, subdomain or path is wrong: an account problem."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from memberflow.adapters.zendesk import ZendeskDesk
from memberflow.errors import AccountProblem, NotFound, PermanentRefusal, is_service_failure
from memberflow.escalation.ports import NewTicket, Requester

RECORD_NOT_FOUND = (404, {"error": "RecordNotFound", "description": "Not found"})
INVALID_ENDPOINT = (404, {"error": "InvalidEndpoint", "description": "Not found"})
UNKNOWN_SUBDOMAIN = (404, "<html><body>Oops! The page you were looking for doesn't exist.</body></html>")


class Canned(BaseAdapter):
    """Answers by (method, path pattern); anything unexpected is a test failure, not a network call."""

    def __init__(self, answers: dict[tuple[str, str], tuple[int, Any]]) -> None:
        super().__init__()
        self.answers = answers
        self.sent: list[tuple[str, str]] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        path = requests.utils.urlparse(request.url).path
        self.sent.append((str(request.method), path))
        for (method, pattern), (status, body) in self.answers.items():
            if method == request.method and re.fullmatch(pattern, path):
                return _response(request, status, body)
        raise AssertionError(f"unexpected call {request.method} {path}")

    def close(self) -> None:
        pass


def _response(request: requests.PreparedRequest, status: int, body: Any) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.request = request
    response.url = str(request.url)
    if isinstance(body, str):
        response._content = body.encode()
        response.headers = CaseInsensitiveDict({"Content-Type": "text/html; charset=utf-8"})
    else:
        response._content = json.dumps(body).encode()
        response.headers = CaseInsensitiveDict({"Content-Type": "application/json; charset=utf-8"})
    return response


@pytest.fixture(autouse=True)
def real_zendesk_host(monkeypatch):
    # A sandbox test in the same process may have pointed zenpy elsewhere (it reads these on every request).
    monkeypatch.delenv("ZENPY_FORCE_SCHEME", raising=False)
    monkeypatch.delenv("ZENPY_FORCE_NETLOC", raising=False)


def desk(answers: dict[tuple[str, str], tuple[int, Any]]) -> tuple[ZendeskDesk, Canned]:
    zd = ZendeskDesk(lambda: {"email": "agent@example.org", "api_token": "t"}, "community")
    canned = Canned(answers)
    zd.session.mount("https://", canned)
    return zd, canned


def ticket() -> NewTicket:
    return NewTicket(
        subject="[billing] charged twice",
        description="I was charged twice",
        requester=Requester("Ada", "ada@example.org", "slack:T1:U1"),
        priority="normal",
        tags=("community",),
        external_id="community-1",
    )


def test_an_expired_or_unknown_job_status_is_refused_for_good_not_a_failing_service():
    zd, canned = desk({("GET", r"/api/v2/job_statuses/j1\.json"): RECORD_NOT_FOUND})
    with pytest.raises(PermanentRefusal) as refused:
        zd.job("j1")
    assert refused.value.status == 404 and refused.value.title == "RecordNotFound"
    assert not isinstance(refused.value, AccountProblem) and not is_service_failure(refused.value)
    assert canned.sent == [("GET", "/api/v2/job_statuses/j1.json")]  # an answer, not resent


@pytest.mark.parametrize("answer", [INVALID_ENDPOINT, UNKNOWN_SUBDOMAIN], ids=["wrong path", "unknown subdomain"])
def test_a_404_that_is_not_a_missing_record_stays_an_account_problem(answer):
    zd, _ = desk({("GET", r"/api/v2/job_statuses/j1\.json"): answer})
    with pytest.raises(NotFound) as missing:
        zd.job("j1")
    assert missing.value.status == 404 and is_service_failure(missing.value)


def test_a_comment_on_a_ticket_deleted_in_zendesk_is_refused_for_good():
    zd, _ = desk({("PUT", r"/api/v2/tickets/7\.json"): RECORD_NOT_FOUND})
    with pytest.raises(PermanentRefusal) as refused:
        zd.add_comment(7, "escalated again")
    assert refused.value.status == 404 and not is_service_failure(refused.value)


@pytest.mark.parametrize(
    "call, route",
    [
        (lambda zd: zd.tickets_with_external_id("community-1"), ("GET", r"/api/v2/tickets\.json")),
        (lambda zd: zd.create_many([ticket()]), ("POST", r"/api/v2/tickets/create_many\.json")),
        (lambda zd: zd.requester_id(ticket()), ("POST", r"/api/v2/users/create_or_update\.json")),
    ],
    ids=["list by external id", "bulk create", "requester upsert"],
)
def test_a_missing_record_on_a_call_that_names_none_is_an_account_problem(call, route):
    zd, _ = desk({route: RECORD_NOT_FOUND})
    with pytest.raises(NotFound):
        call(zd)


USER = {"id": 11, "name": "Ada", "email": "ada@example.org", "external_id": "slack:T1:U1", "active": True}
NO_DELETED_USERS = (200, {"deleted_users": [], "meta": {"has_more": False}, "links": {"next": None}})
LISTED = {
    ("GET", r"/api/v2/users/show_many\.json"): (200, {"users": [USER], "next_page": None, "count": 1}),
    ("GET", r"/api/v2/search\.json"): (200, {"results": [], "next_page": None, "count": 0}),
    ("GET", r"/api/v2/deleted_users\.json"): NO_DELETED_USERS,
}


def test_a_requester_already_gone_counts_as_forgotten():
    # Deleted since it was listed (an earlier attempt, another erasure, an agent): nothing is left to delete.
    zd, canned = desk(
        {
            **LISTED,
            ("GET", r"/api/v2/users/11/tickets/requested\.json"): RECORD_NOT_FOUND,
            ("DELETE", r"/api/v2/users/11\.json"): RECORD_NOT_FOUND,
            ("DELETE", r"/api/v2/deleted_users/11\.json"): RECORD_NOT_FOUND,
        }
    )
    assert zd.forget_requester(["ada@example.org"], ["slack:T1:U1"]) == 1
    assert ("DELETE", "/api/v2/deleted_users/11.json") in canned.sent


def test_a_wrong_path_while_forgetting_a_requester_stays_an_account_problem():
    zd, _ = desk(
        {
            **LISTED,
            ("GET", r"/api/v2/users/11/tickets/requested\.json"): (200, {"tickets": [], "next_page": None}),
            ("DELETE", r"/api/v2/users/11\.json"): INVALID_ENDPOINT,
        }
    )
    with pytest.raises(NotFound):
        zd.forget_requester(["ada@example.org"], ["slack:T1:U1"])


def deleted_users(*users: dict) -> tuple[int, dict]:
    """`GET /api/v2/deleted_users`: soft-deleted users, and the permanently deleted ones without their address."""
    return 200, {"deleted_users": list(users), "meta": {"has_more": False}, "links": {"next": None}}


PERMANENTLY_DELETED = {"id": 5, "name": "Permanently Deleted User", "email": None, "active": False}


@pytest.mark.parametrize(
    "soft_deleted",
    [
        {"id": 11, "name": "Ada", "email": "Ada@Example.org", "external_id": None, "active": False},
        {"id": 11, "name": "Ada", "email": None, "external_id": "slack:T1:U1", "active": False},
    ],
    ids=["by address", "by external id"],
)
def test_a_user_an_earlier_attempt_soft_deleted_is_deleted_for_good(soft_deleted):
    """The first attempt's permanent delete failed after the soft delete (a 429 beyond the budget, a 5xx): the user
    is no longer listed by external id nor found by search, only among the deleted users."""
    other = {"id": 12, "name": "Bob", "email": "bob@example.org", "external_id": "slack:T1:U2", "active": False}
    zd, canned = desk(
        {
            ("GET", r"/api/v2/users/show_many\.json"): (200, {"users": [], "next_page": None, "count": 0}),
            ("GET", r"/api/v2/search\.json"): (200, {"results": [], "next_page": None, "count": 0}),
            ("GET", r"/api/v2/deleted_users\.json"): deleted_users(PERMANENTLY_DELETED, soft_deleted, other),
            ("DELETE", r"/api/v2/deleted_users/11\.json"): (200, {"deleted_user": {"id": 11, "active": False}}),
        }
    )

    assert zd.forget_requester(["ada@example.org"], ["slack:T1:U1"]) == 1

    assert [call for call in canned.sent if call[0] == "DELETE"] == [("DELETE", "/api/v2/deleted_users/11.json")]


def test_a_user_deleted_for_good_meanwhile_counts_as_forgotten():
    # Listed as soft-deleted a moment before another erasure (or Zendesk's purge) deleted it for good.
    soft_deleted = {"id": 11, "name": "Ada", "email": "ada@example.org", "external_id": None, "active": False}
    zd, canned = desk(
        {
            ("GET", r"/api/v2/users/show_many\.json"): (200, {"users": [], "next_page": None, "count": 0}),
            ("GET", r"/api/v2/search\.json"): (200, {"results": [], "next_page": None, "count": 0}),
            ("GET", r"/api/v2/deleted_users\.json"): deleted_users(soft_deleted),
            ("DELETE", r"/api/v2/deleted_users/11\.json"): RECORD_NOT_FOUND,
        }
    )
    assert zd.forget_requester(["ada@example.org"], []) == 1
    assert ("DELETE", "/api/v2/deleted_users/11.json") in canned.sent
