"""The Zendesk part of an erasure on the Zendesk sandbox, through memberflow's adapter: a permanent delete that fails
after the soft delete (a 429 whose Retry-After is beyond the rate-limit budget, as the audit found) is finished by
the queue's retry of the same erasure, not left to Zendesk's 30-day purge; and a requester Zendesk created a minute
before the erasure, not yet in its search index (the sandbox's search lags as Zendesk's does), is deleted too."""

from __future__ import annotations

import pytest
import requests
from requests.adapters import HTTPAdapter

from memberflow.adapters.zendesk import ZendeskDesk
from memberflow.errors import RetryLater
from memberflow.escalation.ports import NewTicket, Requester
from memberflow.escalation.rules import load_rules
from memberflow.escalation.service import EscalationDeps, escalate, escalate_in_bulk, forget_requester
from memberflow.events import RequesterErased
from memberflow.pipeline.envelope import QueuedEvent
from memberflow_sandboxes.zendesk import ZendeskSandbox
from support import zendesk as zendesk_fixtures
from support.escalations import slack_escalation
from support.fakes import FakeMessenger, MemoryTicketLinks, MemoryTrace

ADA = "ada@example.org"
IDENTITY = "slack:T1:U1"


zendesk = zendesk_fixtures.zendesk
fresh = zendesk_fixtures.fresh


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


def erasure(email: str, identity: str) -> QueuedEvent:
    """The onboarding erasure's hand-over to the escalation consumer."""
    event = RequesterErased(emails=[email], identities=[identity])
    return QueuedEvent(idempotency_key="erase:1:zendesk", correlation_id="c-erase", source="erasure", event=event)


@pytest.mark.parametrize("bulk", [True, False], ids=["bulk job", "one by one"])
def test_a_requester_created_a_minute_ago_is_erased_though_search_has_not_indexed_them(zendesk, bulk):
    """A member escalates and asks to be forgotten a minute later. A bulk job's requester carries only their
    address (search was the only way to them, and Zendesk's index is minutes behind); a single create's carries
    their identity too. Either way the erasure deletes them for good, through the tickets of their threads."""
    zendesk.set_search_lag(600)
    zd = desk(zendesk)
    links = MemoryTicketLinks()
    deps = EscalationDeps(desk=zd, links=links, messenger=FakeMessenger(), rules=load_rules(), trace=MemoryTrace())
    queued = slack_escalation(7, key="k7", correlation_id="c7", email=ADA, thread_ts="1700000000.000700")
    if bulk:
        assert escalate_in_bulk(deps, [queued]) == 1
    else:
        assert escalate(deps, queued)["result"] == "ticket_created"
    [user] = zendesk.state.snapshot()["users"]
    assert user["external_id"] == (None if bulk else "slack:T1:U7")
    assert list(zendesk.zenpy().search(type="user", email=ADA)) == []  # not indexed yet

    result = forget_requester(deps, erasure(ADA, "slack:T1:U7"))

    assert result["zendesk_users"] == 1 and result["links"] == 1
    snapshot = zendesk.state.snapshot()
    assert snapshot["users"] == [] and snapshot["deleted_users"] == []  # deleted for good
    assert [(t["status"], t["requester_id"]) for t in snapshot["tickets"]] == [("closed", None)]
    assert links.links == {}
