"""`memberflow import ... --fetch` against the Slack and Discourse sandboxes (users.list, the admin users list), and the
sandboxes themselves checked against what the platforms do:

- Slack: a token without `users:read.email` stops the fetch at the first page, naming the scope (its
  `X-OAuth-Scopes`), and a saved list without addresses is refused by the import: nobody is stored without an
  address to become a second member later.
- Discourse: the fetch takes at most half of the site's 60 admin calls a minute unless told otherwise, and a 429
  waits its Retry-After or `extras.wait_seconds`.
- Both: a 5xx is tried again briefly; a fetch that stops leaves no partial file (the previous one stays as it was),
  and the import refuses a saved list that ends early (Slack's next cursor, a full last Discourse page).
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import threading
from pathlib import Path

import pytest
import requests
from slack_sdk import WebClient
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from memberflow.onboarding.import_sources import ImportedMember
from memberflow_cli import fetch, imports
from memberflow_cli.fetch import FetchError, fetch_discourse_users, fetch_slack_users
from memberflow_sandboxes.discourse import DiscourseSandbox
from memberflow_sandboxes.slack import SlackSandbox

SAMPLES = Path(__file__).resolve().parents[2] / "events" / "imports"
TEAM = "T0LOCAL01"


def slack_users(count: int, *, start: int = 0) -> list[dict]:
    """Users shaped as the users.list sample's first member (events/imports/slack_users_list.json)."""
    sample = json.loads((SAMPLES / "slack_users_list.json").read_text())["members"][0]
    users = []
    for n in range(start, start + count):
        user = copy.deepcopy(sample)
        user.update(id=f"U{n:08d}", name=f"user{n}", real_name=f"User {n}")
        user["profile"].update(real_name=f"User {n}", display_name=f"user{n}", email=f"user{n}@example.org")
        users.append(user)
    return users


def discourse_users(count: int) -> list[dict]:
    """Users shaped as the admin list sample's second one (events/imports/discourse_admin_users_list.json)."""
    sample = json.loads((SAMPLES / "discourse_admin_users_list.json").read_text())["users"][1]
    return [
        dict(
            copy.deepcopy(sample),
            id=100 + n,
            username=f"user{n}",
            email=f"user{n}@example.org",
            created_at=f"2025-01-01T00:{n // 60:02d}:{n % 60:02d}.000Z",
        )
        for n in range(count)
    ]


@pytest.fixture(scope="module")
def slack():
    with SlackSandbox() as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def discourse():
    with DiscourseSandbox() as sandbox:
        yield sandbox


@pytest.fixture(autouse=True)
def fresh(slack, discourse):
    slack.reset()
    discourse.reset()


def cli_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    imports.register(parser.add_subparsers())
    return parser.parse_args(["import", *argv])


# ---------------------------------------------------------------- the sandboxes, as the platforms are


def test_the_slack_sandbox_serves_users_list_by_cursor_with_the_tokens_scopes_as_slack_does(slack):
    slack.add_users(slack_users(550))
    get = lambda **params: requests.get(  # noqa: E731
        f"{slack.url}/users.list", params=params, headers={"Authorization": f"Bearer {slack.token}"}, timeout=5
    )

    first = get(limit=200)
    assert first.headers["X-OAuth-Scopes"] == "chat:write,users:read,users:read.email,channels:history"
    page = first.json()
    assert page["ok"] and len(page["members"]) == 200 and page["members"][0]["profile"]["email"]
    cursor = page["response_metadata"]["next_cursor"]
    second = get(limit=200, cursor=cursor).json()
    third = get(limit=200, cursor=second["response_metadata"]["next_cursor"]).json()
    assert (len(second["members"]), len(third["members"]), third["response_metadata"]["next_cursor"]) == (200, 150, "")
    ids = [u["id"] for p in (page, second, third) for u in p["members"]]
    assert ids == [f"U{n:08d}" for n in range(550)]
    # slack_sdk's own pagination follows the same cursors.
    client = WebClient(token=slack.token, base_url=slack.url + "/")
    assert sum(len(p["members"]) for p in client.users_list(limit=200)) == 550

    assert get().json() == {"ok": False, "error": "limit_required"}  # a large workspace needs a limit
    assert get(limit=1001).json()["error"] == "invalid_arguments"
    assert get(limit=1000).json()["ok"]
    assert get(limit=200, cursor="bm90IGEgY3Vyc29y").json()["error"] == "invalid_cursor"
    assert requests.get(f"{slack.url}/users.list", params={"limit": 1}, timeout=5).json()["error"] == "not_authed"

    slack.grant_scopes("chat:write", "users:read")  # no users:read.email: ok, but no addresses
    answer = get(limit=200)
    assert answer.json()["ok"] and answer.headers["X-OAuth-Scopes"] == "chat:write,users:read"
    assert not any("email" in u["profile"] for u in answer.json()["members"])
    slack.grant_scopes("chat:write")
    assert get(limit=200).json() == {
        "ok": False,
        "error": "missing_scope",
        "needed": "users:read",
        "provided": "chat:write",
    }

    slack.limit_method("users.list", 1)  # users.list's own tier; chat.postMessage is not counted against it
    slack.grant_scopes("chat:write", "users:read", "users:read.email")  # chat:write for the post below
    assert get(limit=200).status_code == 200
    throttled = get(limit=200)
    assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) >= 1
    assert client.chat_postMessage(channel="C1", text="still fine")["ok"]


def test_the_discourse_sandbox_serves_the_admin_users_list_100_a_page_to_admins_only(discourse):
    discourse.add_users(discourse_users(250))
    discourse.add_users([dict(discourse_users(1)[0], id=9, username="mod", admin=False)])

    def get(page=None, username="system", key=None, **params):
        headers = {"Api-Key": key or discourse.api_key, "Api-Username": username}
        params = {"show_emails": "true", "order": "created", "asc": "true", **params}
        if page is not None:
            params["page"] = page
        return requests.get(f"{discourse.url}/admin/users/list/active.json", params=params, headers=headers, timeout=5)

    pages = [get(page).json() for page in (1, 2, 3, 4)]
    assert [len(p) for p in pages] == [100, 100, 51, 0]
    assert get(0).json() == get(None).json() == pages[0]  # page 0, 1 and none are the first hundred
    created = [u["created_at"] for p in pages for u in p]
    assert created == sorted(created) and all(u["email"] for u in pages[0])
    assert not any("email" in u for u in get(1, show_emails="false").json())
    # Not staff: /admin is behind StaffConstraint, so Discourse answers its not-found page, not a 403.
    not_staff = get(1, username="mod")
    assert (not_staff.status_code, not_staff.json()) == (
        404,
        {"errors": ["The requested URL or resource could not be found."], "error_type": "not_found"},
    )
    unknown = get(1, username="nobody")  # a username Discourse does not know matches no user: 403
    assert (unknown.status_code, unknown.json()["error_type"]) == (403, "invalid_access")
    assert get(1, key="wrong").json()["error_type"] == "invalid_access"

    discourse.set_budget(1)  # one site-wide bucket: a reply then a page
    assert requests.post(
        f"{discourse.url}/posts.json",
        json={"topic_id": 7, "raw": "hi"},
        headers={"Api-Key": discourse.api_key, "Api-Username": "system"},
        timeout=5,
    ).ok
    throttled = get(1)
    body = throttled.json()
    assert throttled.status_code == 429 and body["error_type"] == "rate_limit"
    assert int(throttled.headers["Retry-After"]) == body["extras"]["wait_seconds"] >= 59


# ---------------------------------------------------------------- Slack: users:read.email


def test_slack_fetch_reads_every_page_from_the_sandbox_and_the_import_reads_them(slack, tmp_path):
    slack.add_users(slack_users(450))
    out, waits = tmp_path / "users.jsonl", []
    assert fetch_slack_users(slack.token, out, base_url=slack.url, sleep=waits.append) == 3
    assert waits == [fetch.SLACK_PACE_SECONDS] * 2
    read = imports.read_members(cli_args("slack", str(out)))
    assert len([m for m in read if isinstance(m, ImportedMember) and m.email]) == 450
    assert not list(tmp_path.glob(".*partial"))


def test_a_slack_token_without_users_read_email_stops_the_fetch_at_the_first_page_naming_the_scope(slack, tmp_path):
    slack.add_users(slack_users(450))
    slack.grant_scopes("chat:write", "users:read")
    out = tmp_path / "users.jsonl"
    with pytest.raises(FetchError, match=r"lacks the users:read\.email scope \(it has: chat:write, users:read\)"):
        fetch_slack_users(slack.token, out, base_url=slack.url, sleep=lambda _: None)
    assert slack.state.calls["GET /users.list"] == 1  # the first page's X-OAuth-Scopes said so
    assert not out.exists() and not list(tmp_path.iterdir())


def test_the_import_with_fetch_and_a_token_without_users_read_email_imports_nobody(
    slack, tmp_path, monkeypatch, capsys
):
    slack.add_users(slack_users(3))
    slack.grant_scopes("users:read")
    monkeypatch.setenv("SLACK_BOT_TOKEN", slack.token)
    monkeypatch.setenv("SLACK_API_URL", slack.url)
    out = tmp_path / "users.jsonl"
    assert imports.run(cli_args("slack", str(out), "--fetch"), out=io.StringIO()) == 1
    error = capsys.readouterr().err
    assert "users:read.email" in error and "nothing was saved" in error
    assert not out.exists()


def test_a_saved_slack_list_without_any_address_is_refused_by_the_import(tmp_path):
    # Saved without the X-OAuth-Scopes header to go by (another tool, an older memberflow): nobody has an address.
    page = json.loads((SAMPLES / "slack_users_list.json").read_text())
    for user in page["members"]:
        user["profile"].pop("email", None)
    saved = tmp_path / "users.json"
    saved.write_text(json.dumps(page))
    with pytest.raises(SystemExit, match=r"users\.json is not imported: none of its 4 people has an address.*"):
        imports.read_members(cli_args("slack", str(saved)))


# ---------------------------------------------------------------- Discourse: a share of the site's bucket


def test_the_discourse_fetch_takes_at_most_half_of_the_site_bucket_unless_told(discourse, tmp_path):
    discourse.add_users(discourse_users(250))
    waits: list[float] = []
    out = tmp_path / "admin.jsonl"
    assert fetch_discourse_users(discourse.url, discourse.api_key, "system", out, sleep=waits.append) == 250
    assert fetch.DISCOURSE_CALLS_PER_MINUTE == 30 and waits == [2.0, 2.0]  # 3 pages, 30 calls a minute at most
    assert discourse.state.calls["GET /admin/users/list/{flag}.json"] == 3

    waits.clear()
    fetch_discourse_users(discourse.url, discourse.api_key, "system", out, calls_per_minute=12, sleep=waits.append)
    assert waits == [5.0, 5.0]
    with pytest.raises(ValueError, match="at most 60"):
        fetch_discourse_users(discourse.url, discourse.api_key, "system", out, calls_per_minute=90)
    with pytest.raises(SystemExit):  # the command refuses it before calling anyone
        cli_args("discourse", "x.csv", "--calls-per-minute", "90")
    assert cli_args("discourse", "x.csv", "--calls-per-minute", "20").calls_per_minute == 20


def test_a_discourse_fetch_with_a_user_who_is_not_staff_names_the_username_too(discourse, tmp_path):
    # Discourse's admin routes are staff-only: a member's key gets "not found", as a wrong address would.
    discourse.add_users([dict(discourse_users(1)[0], id=9, username="member", admin=False)])
    with pytest.raises(FetchError, match=r"404.*--instance.*DISCOURSE_API_USERNAME an admin"):
        fetch_discourse_users(discourse.url, discourse.api_key, "member", tmp_path / "a.jsonl", sleep=lambda s: None)


def test_a_discourse_429_waits_as_long_as_discourse_asks(discourse, tmp_path):
    discourse.add_users(discourse_users(150))
    discourse.set_budget(1)  # one call left in the site's bucket this minute
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if seconds > fetch.DISCOURSE_PACE_SECONDS:
            discourse.set_budget(60)  # the wait Discourse asked for went by

    fetch_discourse_users(discourse.url, discourse.api_key, "system", tmp_path / "a.jsonl", sleep=sleep)
    assert waits[0] == 2.0 and waits[1] >= 59  # the pace, then the 429's Retry-After
    assert discourse.state.request_counts[429] == 1


def test_a_discourse_429_with_only_wait_seconds_is_waited_out_that_long(tmp_path):
    def answer(request: Request, count: int) -> Response:
        if count == 1:
            body = {"errors": ["slow down"], "error_type": "rate_limit", "extras": {"wait_seconds": 45}}
            return Response(json.dumps(body), 429, content_type="application/json")
        return Response(json.dumps([]), 200, content_type="application/json")

    with StandIn(answer) as server:
        waits: list[float] = []
        fetch_discourse_users(server.url, "key", "system", tmp_path / "a.jsonl", sleep=waits.append)
    assert waits == [45.0]


# ---------------------------------------------------------------- a fetch that stops


def test_a_brief_5xx_is_tried_again_and_the_fetch_completes(discourse, tmp_path):
    discourse.add_users(discourse_users(150))
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 1:  # after the first page: Discourse fails once
            discourse.set_faults(rate_500=1.0)
        else:
            discourse.set_faults()

    out = tmp_path / "admin.jsonl"
    assert fetch_discourse_users(discourse.url, discourse.api_key, "system", out, sleep=sleep) == 150
    assert waits == [2.0, fetch.SERVER_ERROR_WAITS[0]]
    assert [len(json.loads(line)) for line in out.read_text().splitlines()] == [100, 50]


@pytest.mark.parametrize("platform", ["slack", "discourse"])
def test_a_fetch_that_stops_on_a_5xx_leaves_no_partial_file_and_the_previous_one_as_it_was(
    platform, slack, discourse, tmp_path
):
    out = tmp_path / "saved.jsonl"
    out.write_text("the previous, complete list\n")
    waits: list[float] = []
    sandbox = slack if platform == "slack" else discourse

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        sandbox.set_faults(rate_500=1.0)  # from the second page on, every call fails

    if platform == "slack":
        slack.add_users(slack_users(450))
        run = lambda: fetch_slack_users(slack.token, out, base_url=slack.url, sleep=sleep)  # noqa: E731
    else:
        discourse.add_users(discourse_users(250))
        run = lambda: fetch_discourse_users(discourse.url, discourse.api_key, "system", out, sleep=sleep)  # noqa: E731
    with pytest.raises(FetchError, match=r"kept failing \(HTTP 500\) after 4 tries"):
        run()
    assert waits[1:] == list(fetch.SERVER_ERROR_WAITS)  # retried briefly, with backoff, then given up
    assert out.read_text() == "the previous, complete list\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["saved.jsonl"]


def test_the_import_refuses_a_saved_list_that_ends_early(tmp_path):
    page = json.loads((SAMPLES / "slack_users_list.json").read_text())
    page["response_metadata"] = {"next_cursor": "dXNlcjpVMEc5V0ZYTlo="}  # a first page, and nothing after it
    slack_file = tmp_path / "users.jsonl"
    slack_file.write_text(json.dumps(page) + "\n")
    with pytest.raises(SystemExit, match=r"users\.jsonl is not imported: its last users\.list page says more follow"):
        imports.read_members(cli_args("slack", str(slack_file)))

    admin_file = tmp_path / "admin.jsonl"
    admin_file.write_text(json.dumps(discourse_users(100)) + "\n" + json.dumps(discourse_users(100)) + "\n")
    export = str(SAMPLES / "discourse_user_export.csv")
    args = cli_args("discourse", export, "--instance", "https://f.example", "--admin-users", str(admin_file))
    with pytest.raises(SystemExit, match=r"admin\.jsonl is not imported: its last admin users list page holds a full"):
        imports.read_members(args)
    admin_file.write_text(admin_file.read_text() + "[]\n")  # a whole fetch ends with a short (here empty) page
    assert imports.read_members(args)


class StandIn:
    """One HTTP server answering from a function of the request (and how many came before it)."""

    def __init__(self, answer) -> None:
        self.requests: list[Request] = []

        @Request.application
        def app(request: Request) -> Response:
            self.requests.append(request)
            return answer(request, len(self.requests))

        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_port}"

    def __enter__(self) -> StandIn:
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
