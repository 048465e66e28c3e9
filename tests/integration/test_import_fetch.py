"""`memberflow import ... --fetch` against stand-ins for Slack's and Discourse's APIs serving the real shapes
(events/imports samples): every page followed (Slack's cursor, Discourse's short last page), the page size and the
credentials sent as the platforms want them, a 429 waited out with its Retry-After, the pages paced, and the members
then read as from a saved file."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from memberflow.onboarding.import_sources import ImportedMember, read_discourse_export, read_slack_users
from memberflow_cli.fetch import (
    DISCOURSE_PACE_SECONDS,
    SLACK_PACE_SECONDS,
    FetchError,
    fetch_discourse_users,
    fetch_slack_users,
)
from memberflow_cli.imports import _json_pages, _users

SAMPLES = Path(__file__).resolve().parents[2] / "events" / "imports"


class StandIn:
    """One HTTP server answering from a function of the request; requests are recorded."""

    def __init__(self, answer) -> None:
        self.requests: list[Request] = []
        self._answer = answer

        @Request.application
        def app(request: Request) -> Response:
            self.requests.append(request)
            return self._answer(request, len(self.requests))

        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_port}"

    def close(self) -> None:
        self._server.shutdown()


@pytest.fixture
def slack():
    page = json.loads((SAMPLES / "slack_users_list.json").read_text())
    page.pop("_source")
    first = {**page, "members": page["members"][:4], "response_metadata": {"next_cursor": "dXNlcjpVMEc5V0ZYTlo="}}
    second = {**page, "members": page["members"][4:], "response_metadata": {"next_cursor": ""}}

    def answer(request: Request, count: int) -> Response:
        if count == 2:  # the second call is throttled once
            return Response(json.dumps({"ok": False, "error": "ratelimited"}), 429, {"Retry-After": "7"})
        body = second if request.args.get("cursor") == first["response_metadata"]["next_cursor"] else first
        return Response(json.dumps(body), 200, content_type="application/json")

    server = StandIn(answer)
    yield server
    server.close()


def test_slack_users_list_is_followed_page_by_page_within_its_rate_tier(slack, tmp_path):
    waits: list[float] = []
    out = tmp_path / "users.jsonl"
    pages = fetch_slack_users("xoxb-test", out, base_url=slack.url, sleep=waits.append)

    assert pages == 2
    assert [r.args.get("limit") for r in slack.requests] == ["200"] * 3
    assert [r.args.get("cursor") for r in slack.requests] == [None, "dXNlcjpVMEc5V0ZYTlo=", "dXNlcjpVMEc5V0ZYTlo="]
    assert all(r.headers["Authorization"] == "Bearer xoxb-test" for r in slack.requests)
    assert waits == [SLACK_PACE_SECONDS, 7.0]  # paced between pages; the 429's Retry-After honoured
    read = [m for m in read_slack_users(_json_pages(out)) if isinstance(m, ImportedMember)]
    assert [m.identity.user_id for m in read] == ["U0IMPORT01", "U0IMPORT02", "U0IMPORT06"]


def test_a_slack_token_without_the_scopes_is_named(tmp_path):
    server = StandIn(lambda request, count: Response(json.dumps({"ok": False, "error": "missing_scope"}), 200))
    try:
        with pytest.raises(FetchError, match="missing_scope"):
            fetch_slack_users("xoxb-test", tmp_path / "u.jsonl", base_url=server.url, sleep=lambda _: None)
    finally:
        server.close()


def test_discourse_admin_users_are_read_100_a_page_until_a_short_page(tmp_path):
    sample = json.loads((SAMPLES / "discourse_admin_users_list.json").read_text())["users"]
    full = [dict(sample[0], id=1000 + n, email=f"u{n}@example.org") for n in range(100)]

    def answer(request: Request, count: int) -> Response:
        page = int(request.args["page"])
        return Response(json.dumps(full if page == 1 else sample), 200, content_type="application/json")

    server = StandIn(answer)
    waits: list[float] = []
    try:
        users = fetch_discourse_users(server.url, "key", "system", tmp_path / "admin.jsonl", sleep=waits.append)
    finally:
        server.close()
    assert users == 102
    assert [r.args["page"] for r in server.requests] == ["1", "2"]
    assert all(r.args["show_emails"] == "true" for r in server.requests)
    assert all((r.headers["Api-Key"], r.headers["Api-Username"]) == ("key", "system") for r in server.requests)
    assert waits == [DISCOURSE_PACE_SECONDS]
    admin = [user for page in _json_pages(tmp_path / "admin.jsonl") for user in _users(page)]
    with (SAMPLES / "discourse_user_export.csv").open(newline="") as lines:
        read = list(
            read_discourse_export(
                lines, instance="https://f.example", consent_field="Send me the newsletter", admin_users=admin
            )
        )
    assert {m.identity.user_id for m in read if isinstance(m, ImportedMember)} == {"1", "2", "4"}
