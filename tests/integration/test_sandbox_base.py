"""The shared sandbox plumbing, through a minimal ticket service built on it."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import requests
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request

from memberflow_sandboxes.base import BaseState, Reply, RotatingSecret, SandboxApp, SandboxError, SandboxServer
from memberflow_sandboxes.traffic import Budget, budget_from


class TicketState(BaseState):
    def __init__(self) -> None:
        super().__init__()
        self.tickets: list[dict[str, Any]] = []

    def reset(self) -> None:
        with self.lock:
            self.tickets.clear()
            super().reset()

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {"tickets": list(self.tickets), **super().snapshot()}


class TicketApi:
    def __init__(self, state: TicketState):
        self.state = state

    def list_tickets(self, request: Request, body: Any) -> Reply:
        return 200, {"tickets": self.state.tickets}

    def create_ticket(self, request: Request, body: Any) -> Reply:
        self.state.tickets.append(body)
        return 201, body

    def close_ticket(self, request: Request, body: Any, ticket_id: str) -> Reply:
        return 204, None

    def crash(self, request: Request, body: Any) -> Reply:
        raise RuntimeError("a bug in the sandbox")


class TicketApp(SandboxApp[TicketState]):
    """Zendesk-like: errors are {"error": ...}, throttling says when to retry."""

    api_prefix = "/api/v2"
    routes = Map(
        [
            Rule("/tickets", methods=["GET"], endpoint="list_tickets"),
            Rule("/tickets", methods=["POST"], endpoint="create_ticket"),
            Rule("/tickets/<ticket_id>", methods=["DELETE"], endpoint="close_ticket"),
            Rule("/crash", methods=["GET"], endpoint="crash"),
        ]
    )

    def __init__(self, max_connections: int | None = None):
        state = TicketState()
        super().__init__(state, TicketApi(state), max_connections)

    def injected_error(self, status: int, targeted: bool) -> SandboxError:
        error = super().injected_error(status, targeted)
        if status == 429:
            error.headers["Retry-After"] = "7"
        return error

    def request_subjects(self, route_args: dict[str, str], body: Any) -> set[str]:
        email = body.get("requester") if isinstance(body, dict) else None
        return {self.subject_key(email)} if isinstance(email, str) else set()

    admin_routes = {("POST", "/close_all"): "close_all", ("POST", "/crash"): "crash"}

    def seed(self, body: dict[str, Any]) -> dict[str, Any]:
        self.state.tickets.append(body)
        return body

    def close_all(self, body: dict[str, Any]) -> dict[str, Any]:
        closed = len(self.state.tickets)
        self.state.tickets.clear()
        return {"closed": closed, **body}

    def crash(self, body: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("a bug in a test control")


@pytest.fixture
def sandbox():
    with SandboxServer(TicketApp(max_connections=1), name="ticket-sandbox") as server:
        yield server


def test_urls_need_a_started_server_when_the_port_is_free_to_choose():
    server = SandboxServer(TicketApp())
    with pytest.raises(RuntimeError):
        server.url  # noqa: B018
    with server:
        assert server.url.endswith("/api/v2")
        assert server.admin_url == server.url.removesuffix("/api/v2") + "/_sandbox"


def test_routes_empty_bodies_and_plumbing_errors(sandbox):
    url = sandbox.url
    assert requests.post(f"{url}/tickets", json={"subject": "hi"}).status_code == 201
    assert requests.get(f"{url}/tickets").json() == {"tickets": [{"subject": "hi"}]}
    closed = requests.delete(f"{url}/tickets/1")
    assert closed.status_code == 204 and closed.content == b"" and "Content-Type" not in closed.headers
    assert requests.get(f"{url}/nowhere").status_code == 404
    assert requests.get(url.removesuffix("/api/v2") + "/tickets").status_code == 404
    assert requests.put(f"{url}/tickets").json()["detail"].endswith("Allowed methods: GET, HEAD, POST.")
    assert requests.post(f"{url}/tickets", data="{oops").json() == {
        "status": 400,
        "detail": "The request body is not valid JSON.",
    }
    assert requests.get(f"{url}/crash").json()["status"] == 500
    assert sandbox.app.state.request_counts == {200: 1, 201: 1, 204: 1, 404: 2, 405: 1, 400: 1, 500: 1}


def test_connections_beyond_the_limit_get_the_over_limit_answer(sandbox):
    sandbox.set_faults(latency_ms=300)
    start = threading.Barrier(2)
    statuses: list[int] = []

    def call() -> None:
        start.wait()
        statuses.append(requests.get(f"{sandbox.url}/tickets").status_code)

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)
    assert sorted(statuses) == [200, 429]
    assert sandbox.app.gate.in_flight == 0
    assert sandbox.app.state.request_counts[429] == 1


def test_bare_throttle_answers_an_empty_429_instead_of_the_service_error(sandbox):
    assert sandbox.app.gate.try_enter()  # the only slot
    try:
        answer = requests.get(f"{sandbox.url}/tickets")
        assert answer.status_code == 429 and answer.json()["status"] == 429
        sandbox.set_faults(bare_throttle=True)
        bare = requests.get(f"{sandbox.url}/tickets")
        assert bare.status_code == 429 and bare.content == b""
        assert "Content-Type" not in bare.headers and "Retry-After" not in bare.headers
    finally:
        sandbox.app.gate.leave()
    assert requests.get(f"{sandbox.url}/tickets").status_code == 200
    assert requests.post(f"{sandbox.admin_url}/faults", json={"bare_throttle": 1}).status_code == 400


def test_injected_faults_use_the_service_hook_and_a_seeded_rng(sandbox):
    sandbox.set_faults(rate_429=1.0)
    throttled = requests.get(f"{sandbox.url}/tickets")
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "7"

    def draws() -> list[int]:
        sandbox.set_faults(rate_429=0.3, rate_500=0.3, seed=3)
        return [requests.get(f"{sandbox.url}/tickets").status_code for _ in range(12)]

    first = draws()
    assert first == draws()
    assert {200, 429, 500} <= set(first)


def test_fail_emails_target_the_subjects_the_service_reports(sandbox):
    sandbox.set_faults(fail_emails={"Doomed@example.com": 503})
    doomed = requests.post(f"{sandbox.url}/tickets", json={"requester": "doomed@example.com"})
    assert doomed.status_code == 503
    assert doomed.json()["detail"] == "Injected failure for this email address."
    assert requests.post(f"{sandbox.url}/tickets", json={"requester": "fine@example.com"}).status_code == 201


def test_admin_endpoints_seed_report_and_reset(sandbox):
    admin = sandbox.admin_url
    assert requests.post(f"{admin}/seed", json={"subject": "seeded"}).status_code == 201
    assert requests.post(f"{admin}/faults", json={"rate_500": 1.0}).json()["rate_500"] == 1.0
    assert requests.get(f"{sandbox.url}/tickets").status_code == 500
    assert requests.post(f"{admin}/faults", json={"rate_500": 2}).status_code == 400
    assert requests.post(f"{admin}/faults", json={"unknown": 1}).status_code == 400
    assert requests.get(f"{admin}/nothing").status_code == 404
    assert requests.get(f"{admin}/close_all").status_code == 404  # service routes keep their method
    crashed = requests.post(f"{admin}/crash")
    assert crashed.status_code == 500
    assert "RuntimeError: a bug in a test control" in crashed.json()["detail"]

    state = requests.get(f"{admin}/state").json()
    assert state["tickets"] == [{"subject": "seeded"}]
    assert state["request_counts"] == {"500": 1}
    assert state["faults"]["rate_500"] == 1.0
    assert state["faults"]["bare_throttle"] is False

    assert requests.post(f"{admin}/close_all", json={"by": "admin"}).json() == {"closed": 1, "by": "admin"}
    assert requests.post(f"{admin}/reset").json() == {"reset": True}
    state = requests.get(f"{admin}/state").json()
    assert state["tickets"] == [] and state["request_counts"] == {}
    assert state["faults"]["rate_500"] == 0.0


# ---------------------------------------------------------------- shared test controls: budget, key rotation, users


class KeyedApp(TicketApp):
    """The ticket service with a rotating key, a rate limit and users, through the shared test controls."""

    credential_name = "token"
    admin_routes = {("POST", "/budget"): "set_budget", ("POST", "/key"): "rotate", ("POST", "/users"): "add_users"}

    def __init__(self) -> None:
        super().__init__()
        self.credential = RotatingSecret("first")
        self.users: list[dict[str, Any]] = []

    def authenticate(self, request: Request) -> None:
        assert self.credential is not None
        sent = request.headers.get("Authorization", "")
        if sent != self.credential.current:
            raise self.error(401, "retired" if self.credential.retired(sent) else "unknown")
        with self.state.lock:
            allowed, _, wait = self.state.budget.take()
        if not allowed:
            raise SandboxError(429, "Too many requests.", {"Retry-After": str(wait)})

    def add_users(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.seed_users(self.users, body, lambda i: isinstance(i, int), "a numeric id")


def test_budget_counts_granted_and_asked_calls_and_refuses_beyond_its_requests():
    budget = Budget(2, 60.0)
    assert [budget.take()[:2] for _ in range(3)] == [(True, 1), (True, 0), (False, 0)]
    assert (budget.used, budget.asked) == (2, 3)  # refused calls are asked, never granted
    assert 59 <= budget.take()[2] <= 60
    assert Budget().take()[0] and Budget(0).take()[0] is False
    fresh = budget_from({"requests": 5, "window_seconds": 2})
    assert (fresh.requests, fresh.window_seconds, fresh.used) == (5, 2.0, 0)
    for bad in ({"requests": "many"}, {"requests": -1}, {"requests": True}, {"window_seconds": 0}):
        with pytest.raises(ValueError):
            budget_from(bad)


def test_shared_controls_rotate_the_key_set_the_budget_and_seed_users():
    with SandboxServer(KeyedApp(), name="keyed-sandbox") as server:
        admin, app = server.admin_url, server.app
        assert requests.get(f"{server.url}/tickets", headers={"Authorization": "first"}).status_code == 200

        assert requests.post(f"{admin}/key", json={"token": "second"}).json() == {"rotated": True}
        assert requests.post(f"{admin}/key", json={}).status_code == 400
        assert requests.get(f"{server.url}/tickets", headers={"Authorization": "first"}).json()["detail"] == "retired"
        assert requests.get(f"{server.url}/tickets", headers={"Authorization": "other"}).json()["detail"] == "unknown"

        assert requests.post(f"{admin}/budget", json={"requests": "many"}).status_code == 400
        assert requests.post(f"{admin}/budget", json={"requests": 1}).json() == {"requests": 1, "window_seconds": 60.0}
        assert requests.get(f"{server.url}/tickets", headers={"Authorization": "second"}).status_code == 200
        assert requests.get(f"{server.url}/tickets", headers={"Authorization": "second"}).status_code == 429

        assert requests.post(f"{admin}/users", json={"users": [{"id": "x"}]}).status_code == 400
        assert requests.post(f"{admin}/users", json={"users": [{"id": 1}, {"id": 2}]}).json() == {"users": 2}

        server.reset()  # the first key again, and no limit
        assert app.credential is not None and app.credential.current == "first"
        assert requests.get(f"{server.url}/tickets", headers={"Authorization": "second"}).json()["detail"] == "unknown"
        assert all(
            requests.get(f"{server.url}/tickets", headers={"Authorization": "first"}).status_code == 200
            for _ in range(3)
        )
