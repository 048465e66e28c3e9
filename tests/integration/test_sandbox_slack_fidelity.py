"""The Slack sandbox as slack_sdk's WebClient (unmodified, `base_url` pointed at it) sees Slack: the scope headers on
every answer to a known token (refusals too), `missing_scope` for chat.postMessage without `chat:write`,
`invalid_json` / `json_not_object` for bodies Slack cannot read, the `missing_charset` warning, chat.postMessage's
`message` as Slack shows it, and slack_sdk's own RateLimitErrorRetryHandler waiting out a 429 in the middle of
users.list's cursor pages. What test_sandbox_escalation_services.py and test_import_fetch_sandboxes.py already cover
(auth errors, channel refusals, users.list's limits and cursors, a 429 raised as SlackApiError) is not repeated."""

from __future__ import annotations

import time

import pytest
import requests
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from memberflow_sandboxes.slack import SlackSandbox


@pytest.fixture(scope="module")
def slack():
    with SlackSandbox() as sandbox:
        yield sandbox


@pytest.fixture(autouse=True)
def fresh(slack):
    slack.reset()


def client(slack: SlackSandbox, **options) -> WebClient:
    return WebClient(token=slack.token, base_url=slack.url + "/", **options)


def header(response, name: str) -> str | None:
    return next((value for key, value in response.headers.items() if key.lower() == name.lower()), None)


def users(count: int) -> list[dict]:
    return [{"id": f"U{n:08d}", "name": f"user{n}", "profile": {"email": f"user{n}@example.org"}} for n in range(count)]


def test_refusals_to_a_known_token_name_its_scopes_and_the_methods(slack):
    slack.grant_scopes("chat:write")
    with pytest.raises(SlackApiError) as refused:
        client(slack).users_list(limit=200)
    response = refused.value.response
    assert (response["error"], response["needed"], response["provided"]) == (
        "missing_scope",
        "users:read",
        "chat:write",
    )
    assert header(response, "X-OAuth-Scopes") == "chat:write"
    assert header(response, "X-Accepted-OAuth-Scopes") == "users:read"

    slack.refuse_channel("C0GONE", "channel_not_found")
    with pytest.raises(SlackApiError) as gone:
        client(slack).chat_postMessage(channel="C0GONE", text="x")
    assert header(gone.value.response, "X-Accepted-OAuth-Scopes") == "chat:write"
    posted = client(slack).chat_postMessage(channel="C1", text="x")
    assert (
        header(posted, "X-OAuth-Scopes") == "chat:write" and header(posted, "X-Accepted-OAuth-Scopes") == "chat:write"
    )
    with pytest.raises(SlackApiError) as unknown:  # a token Slack does not know: no scopes to tell
        WebClient(token="xoxb-wrong", base_url=slack.url + "/").chat_postMessage(channel="C1", text="x")
    assert header(unknown.value.response, "X-OAuth-Scopes") is None


def test_chat_post_message_without_chat_write_is_missing_scope_naming_the_tokens_scopes(slack):
    slack.grant_scopes("users:read", "users:read.email")
    with pytest.raises(SlackApiError) as refused:
        client(slack).chat_postMessage(channel="C1", text="x")
    response = refused.value.response
    assert response.status_code == 200
    assert response.data == {
        "ok": False,
        "error": "missing_scope",
        "needed": "chat:write",
        "provided": "users:read,users:read.email",
    }
    assert header(response, "X-OAuth-Scopes") == "users:read,users:read.email"
    assert header(response, "X-Accepted-OAuth-Scopes") == "chat:write"
    assert slack.messages() == []  # nothing was posted

    slack.grant_scopes("chat:write")
    assert client(slack).chat_postMessage(channel="C1", text="x")["ok"]
    assert len(slack.messages("C1")) == 1


def test_a_body_slack_cannot_read_is_invalid_json_or_json_not_object_with_http_200(slack):
    def post(data: str) -> requests.Response:
        return requests.post(
            f"{slack.url}/chat.postMessage",
            data=data,
            headers={"Authorization": f"Bearer {slack.token}", "Content-Type": "application/json; charset=utf-8"},
            timeout=5,
        )

    broken = post('{"channel": "C1", "text": ')
    assert (broken.status_code, broken.json()) == (200, {"ok": False, "error": "invalid_json"})
    assert post('["C1", "hi"]').json() == {"ok": False, "error": "json_not_object"}
    assert slack.messages() == []


def test_json_without_a_charset_is_answered_with_the_missing_charset_warning(slack):
    answer = requests.post(
        f"{slack.url}/chat.postMessage",
        json={"channel": "C1", "text": "hi"},  # requests sends Content-Type: application/json, no charset
        headers={"Authorization": f"Bearer {slack.token}"},
        timeout=5,
    ).json()
    assert answer["ok"] and answer["warning"] == "missing_charset"
    assert answer["response_metadata"]["warnings"] == ["missing_charset"]
    sent = client(slack).chat_postMessage(channel="C1", text="hi")  # slack_sdk names utf-8: no warning
    assert "warning" not in sent.data and "response_metadata" not in sent.data


def test_chat_post_message_answers_the_message_as_slack_shows_it(slack):
    web = client(slack)
    top = web.chat_postMessage(channel="C1", text="hello")
    assert top["channel"] == "C1" and top["message"]["ts"] == top["ts"]
    assert "thread_ts" not in top["message"] and "channel" not in top["message"]
    reply = web.chat_postMessage(channel="C1", text="in thread", thread_ts=top["ts"])
    assert reply["message"]["thread_ts"] == top["ts"]
    assert [m["thread_ts"] for m in slack.messages()] == [None, top["ts"]]  # the sandbox's record is unchanged


def test_slack_sdks_rate_limit_handler_waits_out_retry_after_between_users_list_pages(slack):
    slack.add_users(users(5))
    slack.limit_method("users.list", 1, window_seconds=1)  # a page a second: every next page first meets a 429
    web = client(slack, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=3)])
    started = time.monotonic()
    pages = [page["members"] for page in web.users_list(limit=2)]
    assert [len(members) for members in pages] == [2, 2, 1]
    assert [u["id"] for members in pages for u in members] == [f"U{n:08d}" for n in range(5)]
    counts = slack.state.snapshot()["request_counts"]
    assert counts["429"] >= 2 and counts["200"] == 3  # each 429 retried by slack_sdk itself, after Retry-After
    assert time.monotonic() - started >= 1.5

    without = client(slack)  # slack_sdk's default handlers retry connection errors only: a 429 raises
    with pytest.raises(SlackApiError) as limited:
        without.users_list(limit=2)
        without.users_list(limit=2)
    assert limited.value.response.status_code == 429 and limited.value.response["error"] == "ratelimited"
    assert int(header(limited.value.response, "Retry-After")) >= 1


def test_what_was_posted_reads_back_through_conversations_history_and_replies(slack):
    web = client(slack)
    parent = web.chat_postMessage(channel="C0MODERATORS", text="Ticket #1 opened")["ts"]
    first = web.chat_postMessage(channel="C0MODERATORS", text="Assigned", thread_ts=parent)["ts"]
    second = web.chat_postMessage(channel="C0MODERATORS", text="Solved", thread_ts=parent)["ts"]
    later = web.chat_postMessage(channel="C0MODERATORS", text="Ticket #2 opened")["ts"]
    web.chat_postMessage(channel="C0ELSEWHERE", text="not here")

    history = web.conversations_history(channel="C0MODERATORS")
    thread = web.conversations_replies(channel="C0MODERATORS", ts=parent)

    # Newest first, thread replies left to conversations.replies (api.slack.com/methods/conversations.history).
    assert [m["ts"] for m in history["messages"]] == [later, parent]
    assert history["has_more"] is False and history["response_metadata"]["next_cursor"] == ""
    # The parent first, then its replies oldest first (api.slack.com/methods/conversations.replies).
    assert [(m["ts"], m["text"]) for m in thread["messages"]] == [
        (parent, "Ticket #1 opened"),
        (first, "Assigned"),
        (second, "Solved"),
    ]
    assert all("channel" not in m for m in thread["messages"])
    assert thread["messages"][1]["thread_ts"] == parent


def test_conversations_pages_follow_next_cursor_to_the_end(slack):
    web = client(slack)
    posted = [web.chat_postMessage(channel="C1", text=f"m{n}")["ts"] for n in range(5)]

    seen, cursor, calls = [], None, 0
    while True:
        page = web.conversations_history(channel="C1", limit=2, cursor=cursor)
        calls += 1
        seen += [m["ts"] for m in page["messages"]]
        cursor = page["response_metadata"]["next_cursor"]
        assert page["has_more"] is bool(cursor)
        if not cursor:
            break

    assert seen == list(reversed(posted)) and calls == 3
    with pytest.raises(SlackApiError) as bad:
        web.conversations_history(channel="C1", cursor="bm90LWEtY3Vyc29y")
    assert bad.value.response["error"] == "invalid_cursor"


def test_a_thread_nothing_was_posted_in_is_thread_not_found_and_reading_needs_channels_history(slack):
    web = client(slack)
    with pytest.raises(SlackApiError) as missing:
        web.conversations_replies(channel="C1", ts="1700000000.000100")
    assert missing.value.response["error"] == "thread_not_found"

    slack.grant_scopes("chat:write", "users:read")
    with pytest.raises(SlackApiError) as refused:
        web.conversations_history(channel="C1")
    assert (refused.value.response["error"], refused.value.response["needed"]) == ("missing_scope", "channels:history")


def test_auth_test_names_the_bot_and_its_workspace(slack):
    answer = client(slack).auth_test()

    assert answer["ok"] is True
    assert (answer["user_id"], answer["bot_id"], answer["team_id"]) == ("U0SANDBOXBOT", "B0SANDBOX", "T0SANDBOX")
    with pytest.raises(SlackApiError) as refused:
        WebClient(token="xoxb-wrong", base_url=slack.url + "/").auth_test()
    assert refused.value.response["error"] == "invalid_auth"


def test_a_history_bound_that_is_no_timestamp_is_invalid_arguments(slack):
    with pytest.raises(SlackApiError) as refused:
        client(slack).conversations_history(channel="C1", oldest="yesterday")
    assert refused.value.response["error"] == "invalid_arguments"


def test_users_list_pages_by_limit_and_cursor_wherever_they_are_sent_as_conversations_do(slack):
    # users.list takes application/json too (api.slack.com/methods/users.list, "Content types"), and pages as Slack's
    # pagination guide says: `limit`, then the `cursor` of `response_metadata.next_cursor`, "" after the last page.
    slack.add_users(users(5))
    web = client(slack)

    pages, cursor = [], None
    while True:
        page = web.api_call("users.list", json={"limit": 2, **({"cursor": cursor} if cursor else {})})
        pages.append([u["id"] for u in page["members"]])
        cursor = page["response_metadata"]["next_cursor"]
        if not cursor:
            break

    assert pages == [["U00000000", "U00000001"], ["U00000002", "U00000003"], ["U00000004"]]
    with pytest.raises(SlackApiError) as bad:
        web.api_call("users.list", json={"limit": 2, "cursor": "bm90LWEtY3Vyc29y"})
    assert bad.value.response["error"] == "invalid_cursor"


def test_history_answers_pin_count_and_replies_do_not_as_slacks_examples_show(slack):
    # api.slack.com/methods/conversations.history's example has `pin_count`; conversations.replies' has only `ok`,
    # `messages`, `has_more` and `response_metadata`.
    web = client(slack)
    parent = web.chat_postMessage(channel="C1", text="Ticket #1 opened")["ts"]
    web.chat_postMessage(channel="C1", text="Assigned", thread_ts=parent)

    history = web.conversations_history(channel="C1").data
    thread = web.conversations_replies(channel="C1", ts=parent).data

    assert set(history) == {"ok", "messages", "has_more", "pin_count", "response_metadata"}
    assert set(thread) == {"ok", "messages", "has_more", "response_metadata"}


def test_a_history_cursor_names_a_message_so_a_post_between_pages_does_not_repeat_one(slack):
    # Slack's history cursors are base64 of `next_ts:<ts>` (the example `bmV4dF90czoxNTEyMDg1ODYxMDAwNTQz`): the next
    # page starts at that message whatever was posted since, unlike an offset.
    web = client(slack)
    posted = [web.chat_postMessage(channel="C1", text=f"m{n}")["ts"] for n in range(4)]

    first = web.conversations_history(channel="C1", limit=2)
    web.chat_postMessage(channel="C1", text="newer")
    second = web.conversations_history(channel="C1", limit=2, cursor=first["response_metadata"]["next_cursor"])

    seen = [m["ts"] for page in (first, second) for m in page["messages"]]
    assert seen == list(reversed(posted))
    assert second["response_metadata"]["next_cursor"] == "" and second["has_more"] is False
