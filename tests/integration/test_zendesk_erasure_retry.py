"""The Zendesk part of an erasure on the Zendesk sandbox, through memberflow's adapter: a permanent delete that fails
after the soft delete (a 429 whose Retry-After is beyond the rate-limit budget, as the audit found) is finished by
the queue's retry of the same erasure, not left to Zendesk's 30-day purge."""

from __future__ import annotations

import pytest
import requests
from requests.adapters import HTTPAdapter

from memberflow.adapters.zendesk import ZendeskDesk
from memberflow.errors import RetryLater
from memberflow.escalation.ports import NewTicket, Requester
from memberflow_sandboxes.zendesk import ZendeskSandbox

ADA = "ada@example.org"
IDENTITY = "slack:T1:U1"


@pytest.fixture(scope="module")
def zendesk():
    with ZendeskSandbox() as sandbox:
        yield sandbox


@pytest.fixture(autouse=True)
def fresh(zendesk):
    zendesk.reset()


class PermanentDeleteRateLimited(HTTPAdapter):
    """Zendesk answers the next permanent delete with a 429 and a Retry-After of a minute; the rest goes through."""

    def __init__(self) -> None:
        super().__init__()
        self.refused = 0

    def send(self, request: requests.PreparedRequest, **kwargs) -> requests.Response:
        if not self.refused and request.method == "DELETE" and "/deleted_users/" in str(request.url):
            self.refused += 1
            response = requests.Response()
            response.status_code, response.request, response.url = 429, request, str(request.url)
            response.headers["Retry-After"] = "60"
            response._content = b'{"error": "TooManyRequests"}'
            return response
        return super().send(request, **kwargs)


def desk(sandbox: ZendeskSandbox) -> ZendeskDesk:
    credentials = {"email": sandbox.email, "api_token": sandbox.api_token}
    return ZendeskDesk(lambda: credentials, "community", api_url=sandbox.base_url, ratelimit_budget_seconds=5)


def requester_with_a_ticket(zd: ZendeskDesk, email: str | None = ADA) -> None:
    zd.create(
        NewTicket(
            subject="[billing] charged twice",
            description="I was charged twice",
            requester=Requester("Ada", email, IDENTITY),
            priority="normal",
            tags=("community", "slack", "billing"),
            external_id="community-1",
        ),
        "k1",
    )


@pytest.mark.parametrize("email", [ADA, None], ids=["with address", "identity only"])
def test_a_permanent_delete_refused_after_the_soft_delete_is_finished_by_the_retry(zendesk, email):
    zd = desk(zendesk)
    requester_with_a_ticket(zd, email)
    limited = PermanentDeleteRateLimited()
    zd.session.mount("http://", limited)
    emails = [email] if email else []

    with pytest.raises(RetryLater):
        zd.forget_requester(emails, [IDENTITY])
    snapshot = zendesk.state.snapshot()
    assert limited.refused == 1 and snapshot["users"] == [] and len(snapshot["deleted_users"]) == 1

    assert zd.forget_requester(emails, [IDENTITY]) == 1  # the queue's retry of the same erasure

    assert zendesk.state.snapshot()["deleted_users"] == []  # deleted for good, not left to the 30-day purge


def test_a_user_an_agent_soft_deleted_is_deleted_for_good_too(zendesk):
    zd = desk(zendesk)
    requester_with_a_ticket(zd)
    client = zendesk.zenpy()
    [user] = list(client.search(type="user", email=ADA))
    for ticket in client.users.requested(user):
        client.tickets.update(type(ticket)(id=ticket.id, status="closed"))
    client.users.delete(user)

    assert zd.forget_requester([ADA], [IDENTITY]) == 1

    assert zendesk.state.snapshot()["deleted_users"] == []
