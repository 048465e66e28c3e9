"""The Discourse sandbox as a client written from Discourse's documentation sees it, over HTTP with plain `requests`:
one user's profile (`GET /u/{username}.json`, where `user_fields` live), who may call what without a key or as a
moderator, the admin bucket's 429 in full, and the webhooks it sends (headers, signature, raw JSON body).

Shapes: discourse/discourse `lib/auth/default_current_user_provider.rb`, `config/routes.rb`,
`app/controllers/application_controller.rb`, `app/jobs/regular/emit_web_hook_event.rb`,
`app/serializers/web_hook_user_serializer.rb`; discourse_api_docs `openapi.json`; ../shared/reference (Discourse)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading

import pytest
import requests
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from memberflow_sandboxes.discourse import DiscourseSandbox

SECRET = "webhook-secret"


class Receiver:
    """An HTTP endpoint that keeps every request it is sent (headers and raw body) and answers 200."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _app(self, environ, start_response):
        request = Request(environ)
        self.requests.append((dict(request.headers), request.get_data()))
        return Response("{}", 200, content_type="application/json")(environ, start_response)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/webhooks/discourse"

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def running():
    with DiscourseSandbox() as sandbox:
        yield sandbox


@pytest.fixture
def discourse(running):
    running.reset()
    yield running
    running.reset()


def a_user(user_id: int, username: str, **extra) -> dict:
    """A user as the admin list shows it with show_emails (events/imports/discourse_admin_users_list.json)."""
    return {
        "id": user_id,
        "username": username,
        "name": username.title(),
        "active": True,
        "admin": False,
        "moderator": False,
        "staged": False,
        "trust_level": 1,
        "created_at": f"2025-01-01T00:00:{user_id % 60:02d}.000Z",
        "last_seen_at": "2026-01-01T00:00:00.000Z",
        "post_count": 3,
        "email": f"{username}@example.org",
        "secondary_emails": [],
        **extra,
    }


def headers(sandbox: DiscourseSandbox, username: str = "system") -> dict[str, str]:
    return {"Api-Key": sandbox.api_key, "Api-Username": username}


# ---------------------------------------------------------------- one user's profile: user_fields and last_posted_at


def test_a_users_profile_carries_user_fields_by_numeric_id_which_the_admin_list_leaves_out(discourse):
    # discourse_api_docs getUser: `{"user_badges", "user": {..., "user_fields": {"1": ...}, "last_posted_at"}}`;
    # the admin list (AdminUserListSerializer) has neither (../shared/reference, Discourse, Admin API).
    discourse.add_users(
        [a_user(41, "jane", user_fields={"user_field_1": "true", "2": None}, last_posted_at="2026-01-02T00:00:00Z")]
    )

    profile = requests.get(f"{discourse.url}/u/jane.json", headers=headers(discourse), timeout=5)

    assert profile.status_code == 200, profile.text
    body = profile.json()
    assert body["user_badges"] == [] and body["user"]["id"] == 41
    assert body["user"]["user_fields"] == {"1": "true", "2": None}
    assert body["user"]["last_posted_at"] == "2026-01-02T00:00:00Z"
    assert "email" not in body["user"]  # UserSerializer shows it to the user themself (or staff, if staged)

    listed = requests.get(
        f"{discourse.url}/admin/users/list/active.json",
        params={"show_emails": "true"},
        headers=headers(discourse),
        timeout=5,
    ).json()
    assert [u["username"] for u in listed] == ["jane"] and listed[0]["email"] == "jane@example.org"
    assert "user_fields" not in listed[0] and "last_posted_at" not in listed[0]

    missing = requests.get(f"{discourse.url}/u/nobody.json", headers=headers(discourse), timeout=5)
    assert missing.status_code == 404
    assert missing.json() == {
        "errors": ["The requested URL or resource could not be found."],
        "error_type": "not_found",
    }
    assert discourse.state.calls["GET /u/{username}.json"] == 2


# ---------------------------------------------------------------- who may call what


def test_without_an_api_key_a_reply_is_not_logged_in_and_the_admin_list_is_not_there(discourse):
    # No Api-Key: an anonymous request (DefaultCurrentUserProvider looks up no user). PostsController requires a
    # login: 403 not_logged_in for a JSON or non-GET request; /admin is behind StaffConstraint: no route, 404.
    discourse.add_users([a_user(41, "jane")])

    reply = requests.post(f"{discourse.url}/posts.json", json={"topic_id": 7, "raw": "hello"}, timeout=5)
    listed = requests.get(f"{discourse.url}/admin/users/list/active.json", timeout=5)
    profile = requests.get(f"{discourse.url}/u/jane.json", timeout=5)  # a public profile

    assert reply.status_code == 403
    assert reply.json() == {"errors": ["You need to be logged in to do that."], "error_type": "not_logged_in"}
    assert listed.status_code == 404 and listed.json()["error_type"] == "not_found"
    assert profile.status_code == 200 and "email" not in profile.json()["user"]
    assert discourse.posts() == []


def test_a_bad_key_or_a_key_without_a_username_is_invalid_api_credentials(discourse):
    # A key that matches no user (unknown key, or a global key with no Api-Username): 403 invalid_api_credentials.
    for sent in ({"Api-Key": "not-the-key", "Api-Username": "system"}, {"Api-Key": discourse.api_key}):
        answer = requests.post(f"{discourse.url}/posts.json", json={"topic_id": 7, "raw": "x"}, headers=sent, timeout=5)
        assert answer.status_code == 403
        assert answer.json() == {
            "errors": ["You are not permitted to view the requested resource. The API username or key is invalid."],
            "error_type": "invalid_access",
        }


def test_a_moderator_reads_the_admin_list_without_emails(discourse):
    # `namespace :admin, constraints: StaffConstraint.new`: moderators are staff; emails need
    # moderators_view_emails (off by default).
    discourse.add_users([a_user(41, "jane"), a_user(42, "mod", moderator=True)])

    listed = requests.get(
        f"{discourse.url}/admin/users/list/active.json",
        params={"show_emails": "true"},
        headers=headers(discourse, "mod"),
        timeout=5,
    )

    assert listed.status_code == 200, listed.text
    assert sorted(u["username"] for u in listed.json()) == ["jane", "mod"]
    assert not any("email" in u for u in listed.json())


# ---------------------------------------------------------------- the site-wide admin bucket


def test_the_admin_buckets_429_is_rendered_as_discourse_renders_a_rate_limit(discourse):
    # ApplicationController `rescue_from RateLimiter::LimitExceeded`: description "... Please wait N seconds ...",
    # extras {wait_seconds, time_left}, Retry-After and Discourse-Rate-Limit-Error-Code (the admin API limiter's code
    # `admin_api_key_rate_limit`, DefaultCurrentUserProvider#admin_api_key_limiter).
    discourse.set_budget(1)
    assert requests.get(f"{discourse.url}/u/system.json", headers=headers(discourse), timeout=5).status_code == 404

    throttled = requests.post(
        f"{discourse.url}/posts.json", json={"topic_id": 7, "raw": "x"}, headers=headers(discourse), timeout=5
    )

    body = throttled.json()
    wait = body["extras"]["wait_seconds"]
    assert throttled.status_code == 429 and body["error_type"] == "rate_limit"
    assert throttled.headers["Retry-After"] == str(wait) and 59 <= wait <= 60
    time_left = "1 minute" if wait == 60 else f"{wait} seconds"  # RateLimiter::LimitExceeded#time_left
    assert body["extras"]["time_left"] == time_left
    assert body["errors"] == [
        f"You’ve performed this action too many times. Please wait {time_left} before trying again."
    ]
    assert throttled.headers["Discourse-Rate-Limit-Error-Code"] == "admin_api_key_rate_limit"
    assert discourse.posts() == []


def test_a_wait_of_three_seconds_or_less_is_a_few_seconds(discourse):
    # RateLimiter.time_left (lib/rate_limiter/limit_exceeded.rb): `available_in <= 3` is I18n
    # `rate_limiter.short_time`, "a few seconds" (config/locales/server.en.yml); more is "N seconds".
    discourse.set_budget(1, window_seconds=3)
    assert requests.get(f"{discourse.url}/u/system.json", headers=headers(discourse), timeout=5).status_code == 404

    throttled = requests.get(f"{discourse.url}/u/system.json", headers=headers(discourse), timeout=5)

    body = throttled.json()
    assert throttled.status_code == 429 and body["extras"]["wait_seconds"] <= 3
    assert body["extras"]["time_left"] == "a few seconds"
    assert body["errors"] == [
        "You’ve performed this action too many times. Please wait a few seconds before trying again."
    ]


# ---------------------------------------------------------------- the admin list's order


def admin_list(discourse: DiscourseSandbox, flag: str = "active", **params) -> list[str]:
    answer = requests.get(
        f"{discourse.url}/admin/users/list/{flag}.json",
        params={"show_emails": "true", **params},
        headers=headers(discourse),
        timeout=5,
    )
    assert answer.status_code == 200, answer.text
    return [u["username"] for u in answer.json()]


def test_an_ordered_admin_list_puts_users_without_the_field_last_both_ways_and_never_seen_as_oldest(discourse):
    # AdminUserIndexQuery: `<field> ASC|DESC NULLS LAST`; `seen` is COALESCE(last_seen_at, 1970-01-01); without an
    # order, `active` is `last_seen_at DESC NULLS LAST, username` and any other list `created_at DESC, username`.
    discourse.add_users(
        [
            a_user(1, "bo", email=None, last_seen_at="2026-03-01T00:00:00.000Z"),
            a_user(2, "al", email="al@example.org", last_seen_at=None),
            a_user(3, "cy", email="cy@example.org", last_seen_at="2026-01-01T00:00:00.000Z"),
            a_user(4, "di", email="di@example.org", last_seen_at=None, created_at="2025-01-01T00:00:03.000Z"),
        ]
    )

    assert admin_list(discourse, order="email", asc="true") == ["al", "cy", "di", "bo"]
    assert admin_list(discourse, order="email") == ["di", "cy", "al", "bo"]
    assert admin_list(discourse, order="seen", asc="true")[:2] in (["al", "di"], ["di", "al"])
    assert admin_list(discourse, order="seen", asc="true")[2:] == ["cy", "bo"]
    assert admin_list(discourse, order="seen")[:2] == ["bo", "cy"]
    assert admin_list(discourse) == ["bo", "cy", "al", "di"]  # never seen last, then by username
    assert admin_list(discourse, "new") == []
    assert admin_list(discourse, "staged") == []
    assert admin_list(discourse, "all") == ["cy", "di", "al", "bo"]  # created_at DESC, then username


# ---------------------------------------------------------------- webhooks


def test_a_reply_made_through_the_api_is_sent_as_a_signed_post_created_of_raw_json(discourse):
    with Receiver() as receiver:
        discourse.set_webhook(receiver.url, secret=SECRET)
        answer = requests.post(
            f"{discourse.url}/posts.json",
            json={"topic_id": 56, "raw": "Thanks, solved!"},
            headers=headers(discourse),
            timeout=5,
        )
        assert answer.status_code == 200
        [(sent, raw)] = receiver.requests

    # Jobs::EmitWebHookEvent#build_webhook_headers and #build_webhook_body (MultiJson.dump: compact JSON).
    assert sent["Accept"] == "*/*" and sent["Connection"] == "close"
    assert sent["Content-Type"] == "application/json"
    assert sent["User-Agent"].startswith("Discourse/")
    assert sent["X-Discourse-Instance"] == "https://forum.example.com"
    assert (sent["X-Discourse-Event-Type"], sent["X-Discourse-Event"]) == ("post", "post_created")
    assert sent["X-Discourse-Event-Id"].isdigit()
    expected = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    assert sent["X-Discourse-Event-Signature"] == expected
    assert raw == json.dumps(json.loads(raw), separators=(",", ":"), ensure_ascii=False).encode()  # compact
    post = json.loads(raw)["post"]
    assert (post["id"], post["post_number"]) == (answer.json()["id"], answer.json()["post_number"])
    assert post["topic_id"] == 56 and post["raw"] == "Thanks, solved!" and post["username"] == "system"
    assert post["created_at"].endswith("Z")  # Rails' JSON time: 2024-11-14T22:30:05.456Z


def test_a_user_event_to_a_form_encoded_webhook_is_still_raw_json_without_active_and_each_has_its_own_id(discourse):
    # "a webhook whose content type is set to application/x-www-form-urlencoded only changes the Content-Type
    # header"; WebHookUserSerializer has no `active`; user_fields keyed by the field's id as a string, unticked null.
    discourse.add_users([a_user(17, "jane", active=False, user_fields={"user_field_1": "true", "user_field_2": None})])
    with Receiver() as receiver:
        discourse.set_webhook(receiver.url, content_type="application/x-www-form-urlencoded")
        discourse.send_user_event("user_created", "jane")
        discourse.send_user_event("user_confirmed_email", "jane")
        sent = receiver.requests

    assert [h["X-Discourse-Event"] for h, _ in sent] == ["user_created", "user_confirmed_email"]
    assert all(h["X-Discourse-Event-Type"] == "user" for h, _ in sent)
    assert all(h["Content-Type"] == "application/x-www-form-urlencoded" for h, _ in sent)
    assert not any("X-Discourse-Event-Signature" in h for h, _ in sent)  # no secret, no signature
    assert sent[0][0]["X-Discourse-Event-Id"] != sent[1][0]["X-Discourse-Event-Id"]  # one record per delivery
    user = json.loads(sent[0][1])["user"]  # not `payload=...`: the body is the JSON document itself
    assert user["id"] == 17 and user["email"] == "jane@example.org"
    assert "active" not in user
    assert user["user_fields"] == {"1": "true", "2": None}
    assert [d["status"] for d in discourse.deliveries()] == [200, 200]


def test_replies_read_back_as_a_post_and_in_their_topics_post_stream(discourse):
    headers = {"Api-Key": discourse.api_key, "Api-Username": "system"}
    made = [
        requests.post(
            f"{discourse.url}/posts.json", json={"topic_id": 42, "raw": text}, headers=headers, timeout=5
        ).json()
        for text in ("We opened ticket #1 for you.", "Ticket #1 is solved.")
    ]

    post = requests.get(f"{discourse.url}/posts/{made[0]['id']}.json", headers=headers, timeout=5)
    topic = requests.get(f"{discourse.url}/t/42.json", headers=headers, timeout=5)
    unknown = requests.get(f"{discourse.url}/t/43.json", headers=headers, timeout=5)

    assert post.status_code == 200 and post.json()["raw"] == "We opened ticket #1 for you."
    assert topic.json()["post_stream"]["stream"] == [p["id"] for p in made]
    assert [p["raw"] for p in topic.json()["post_stream"]["posts"]] == [
        "We opened ticket #1 for you.",
        "Ticket #1 is solved.",
    ]
    assert (unknown.status_code, unknown.json()["error_type"]) == (404, "not_found")
    discourse.delete_topics(42)
    assert requests.get(f"{discourse.url}/t/42.json", headers=headers, timeout=5).status_code == 404


def test_a_flush_sends_only_the_events_its_own_request_raised(discourse):
    # Each request hands on the webhooks it raised (Discourse enqueues one job per event): a user event sent while
    # a reply's post_created is still queued must not take that delivery into its own answer.
    discourse.add_users([a_user(17, "jane")])
    raised, go, flushed = threading.Event(), threading.Event(), {}

    def reply_in_flight() -> None:
        discourse.state.emit("post", "post_created", {"post": {"id": 5001, "topic_id": 7}})
        raised.set()
        go.wait(5)
        flushed["reply"] = discourse.state.flush()

    with Receiver() as receiver:
        discourse.set_webhook(receiver.url, secret=SECRET)
        reply = threading.Thread(target=reply_in_flight)
        reply.start()
        assert raised.wait(5)
        sent = discourse.send_user_event("user_created", "jane")
        go.set()
        reply.join(5)

    assert [d["headers"]["X-Discourse-Event"] for d in sent] == ["user_created"]
    assert [d["headers"]["X-Discourse-Event"] for d in flushed["reply"]] == ["post_created"]
    assert sorted(h["X-Discourse-Event"] for h, _ in receiver.requests) == ["post_created", "user_created"]
