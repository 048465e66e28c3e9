"""The Discourse API sandbox: replies in topics (read back with `GET /posts/{id}.json` and `GET /t/{id}.json`), the
admin users list (the bulk import's fetch), one user's profile (`GET /u/{username}.json`, where `user_fields` live),
the admin rate limit, the posts made, topics that are gone, key rotation, and webhooks sent as Discourse's emitter
sends them.

Formats from discourse/discourse_api_docs `openapi.json` (`POST /posts.json`, `GET /admin/users/list/{flag}.json`:
a bare array of users, `email` only with `show_emails`; `GET /u/{username}.json`: `{"user_badges", "user"}`) and the
facts in ../shared/reference: the site-wide bucket of 60 admin calls a minute, its 429 `{"errors", "error_type":
"rate_limit", "extras": {"wait_seconds"}}` with `Retry-After`. Who may call what follows discourse/discourse
`lib/auth/default_current_user_provider.rb` (a key that matches no user: 403 `invalid_access`, worded as the
`invalid_api_credentials` message; no key: an anonymous request) and `config/routes.rb` (`namespace :admin,
constraints: StaffConstraint.new`)."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import threading
from datetime import UTC, datetime
from typing import Any

from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from memberflow_sandboxes.base import BaseState, Reply, SandboxApp, SandboxError, SandboxServer, json_response
from memberflow_sandboxes.traffic import Budget


class DiscourseError(SandboxError):
    def __init__(self, status: int, message: str, error_type: str = "invalid_parameters", wait: int | None = None):
        super().__init__(status, message, {"Retry-After": str(wait)} if wait is not None else None)
        self.message, self.error_type, self.wait = message, error_type, wait

    def response(self) -> Response:
        body: dict[str, Any] = {"errors": [self.message], "error_type": self.error_type}
        if self.wait is not None:
            body["extras"] = {"wait_seconds": self.wait, "time_left": _time_left(self.wait)}
        response = json_response(body, self.status)
        response.headers.update(self.headers)
        return response


def rate_limited(wait: int, error_code: str | None = "admin_api_key_rate_limit") -> DiscourseError:
    """Discourse's 429, as ApplicationController renders RateLimiter::LimitExceeded (discourse/discourse
    app/controllers/application_controller.rb): the limiter's description, `extras: {wait_seconds, time_left}`,
    `Retry-After` and, for a limiter with an error code, `Discourse-Rate-Limit-Error-Code` (the admin API's:
    `admin_api_key_rate_limit`, lib/auth/default_current_user_provider.rb)."""
    error = DiscourseError(429, TOO_MANY.format(time_left=_time_left(wait)), "rate_limit", wait)
    if error_code:
        error.headers["Discourse-Rate-Limit-Error-Code"] = error_code
    return error


def _time_left(seconds: int) -> str:
    """`RateLimiter.time_left` (discourse/discourse lib/rate_limiter/limit_exceeded.rb): 3 seconds or less is
    `rate_limiter.short_time` ("a few seconds"), then `rate_limiter.seconds|minutes|hours` (config/locales/
    server.en.yml)."""
    if seconds <= 3:
        return "a few seconds"
    if seconds < 60:
        return f"{seconds} second" + ("" if seconds == 1 else "s")
    if seconds < 3600:
        return f"{seconds // 60} minute" + ("" if seconds // 60 == 1 else "s")
    return f"{seconds // 3600} hour" + ("" if seconds // 3600 == 1 else "s")


class PostRefused(SandboxError):
    """A reply PostCreator refuses, as PostsController answers it: 422 `{"action": "create_post", "errors"}`."""

    def __init__(self, message: str) -> None:
        super().__init__(422, message)
        self.message = message

    def response(self) -> Response:
        return json_response({"action": "create_post", "errors": [self.message]}, 422)


INVALID_KEY = "You are not permitted to view the requested resource. The API username or key is invalid."
"""Discourse's 403 for an unknown or revoked key, or an API username it does not know: `error_type` `invalid_access`
(Discourse::InvalidAccess), the message the `invalid_api_credentials` string of config/locales/server.en.yml."""
NOT_LOGGED_IN = "You need to be logged in to do that."
"""Discourse's 403 `not_logged_in` for a request without any credentials to an action that `requires_login` (a JSON
or non-GET request; ApplicationController `rescue_from Discourse::NotLoggedIn`)."""
NOT_FOUND = "The requested URL or resource could not be found."
"""Discourse's 404 `not_found` (also what a route whose constraint refuses the caller answers)."""
TOO_MANY = "You’ve performed this action too many times. Please wait {time_left} before trying again."
"""`rate_limiter.too_many_requests` in config/locales/server.en.yml."""
PROFILE_ONLY = ("user_fields", "last_posted_at")
"""What the admin list never shows (AdminUserListSerializer): one user's `GET /u/{username}.json` has them."""


ADMIN_LIST_PAGE = 100
"""`GET /admin/users/list/{flag}.json` answers 100 users a page: `page` 1 (or 0, or none) is the first hundred."""
ADMIN_LIST_FLAGS = {
    "active": lambda user: True,  # AdminUserIndexQuery orders `active` by last seen; it does not filter on `active`
    "new": lambda user: user.get("trust_level") == 0,
    "staff": lambda user: bool(user.get("admin") or user.get("moderator")),
    "admins": lambda user: bool(user.get("admin")),
    "moderators": lambda user: bool(user.get("moderator")),
    "suspended": lambda user: bool(user.get("suspended_at")),
    "silenced": lambda user: bool(user.get("silenced_till")),
    "staged": lambda user: bool(user.get("staged")),
    "pending": lambda user: user.get("approved") is False and bool(user.get("active")),
}
"""The lists an admin can read (AdminUserIndexQuery's classifications); another flag lists everyone."""
SORTABLE = {"created": "created_at", "seen": "last_seen_at", "username": "username", "email": "email"}
COALESCED_TO_1970 = ("last_seen_at",)
"""Sort fields AdminUserIndexQuery orders by `COALESCE(field, to_date('1970-01-01', ...))`: a user never seen sorts
as the oldest, first ascending and last descending."""
EPOCH = "1970-01-01"
PRIVATE_FIELDS = ("email", "secondary_emails")
"""What the admin list shows only with `show_emails=true`."""
SYSTEM_USERNAME = "system"
"""Discourse's own admin user, which an `Api-Username` may always name."""
DISCOURSE_VERSION = "3.3.2"
WEBHOOK_CONTENT_TYPES = ("application/json", "application/x-www-form-urlencoded")
USER_EVENTS = (
    "user_created",
    "user_confirmed_email",
    "user_approved",
    "user_updated",
    "user_logged_in",
    "user_logged_out",
    "user_destroyed",
)
"""The user events of config/initializers/012-web_hook_events.rb."""
NOT_IN_WEBHOOK_USER = (
    "active",
    "approved",
    "suspended_at",
    "silenced_till",
    "last_emailed_at",
    "last_seen_age",
    "last_emailed_age",
    "created_at_age",
    "days_visited",
    "posts_read_count",
    "topics_entered",
    "manual_locked_trust_level",
)
"""Admin-list fields WebHookUserSerializer does not have: above all no `active`, so a delivery alone never says
whether the address is confirmed (app/serializers/web_hook_user_serializer.rb)."""


def webhook_user(user: dict[str, Any]) -> dict[str, Any]:
    """A stored user as WebHookUserSerializer shows it to the system user: `email` included, no `active`,
    `user_fields` keyed by the field's numeric id as a string (`"1"`, never `user_field_1`), an unticked box null."""
    shown = {k: copy.deepcopy(v) for k, v in user.items() if k not in NOT_IN_WEBHOOK_USER}
    fields = shown.get("user_fields") or {}
    shown["user_fields"] = {str(key).removeprefix("user_field_"): value for key, value in fields.items()}
    shown.setdefault("secondary_emails", [])
    shown.setdefault("last_posted_at", None)
    return shown


class DiscourseState(BaseState):
    def __init__(self) -> None:
        super().__init__()
        self.posts: list[dict[str, Any]] = []
        self.gone_topics: set[int] = set()
        """Topics deleted (or never there): a reply in one is refused 422 "Topic not found", as Discourse does."""
        self.users: list[dict[str, Any]] = []
        """The forum's users as the admin list shows them with `show_emails=true` (`id`, `username`, `email`,
        `active`, `admin`, `created_at`, `last_seen_at`, ...)."""

        self.webhook: dict[str, Any] | None = None
        """The site's one webhook (`url`, `secret`, `content_type`, `instance`), sent every event; None: none."""
        self.next_event_id = 100
        self.pending: dict[int, list[tuple[str, str, dict[str, Any]]]] = {}
        """Events raised while a handler ran (event type, event name, body), by the thread that raised them: each
        request's are sent once its own answer is ready, never by another request's `flush`."""
        self.deliveries: list[dict[str, Any]] = []
        """What was posted: `headers`, `body` (the raw bytes' text) and the receiver's `status` (None: unreachable)."""

    def fresh_budget(self) -> Budget:
        """The site-wide admin bucket: `max_admin_api_reqs_per_minute`, 60 by default."""
        return Budget(60, 60.0)

    def reset(self) -> None:
        with self.lock:
            super().reset()
            self.posts = []
            self.gone_topics = set()
            self.users = []
            self.webhook, self.next_event_id, self.pending, self.deliveries = None, 100, {}, []

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                **super().snapshot(),
                "posts": list(self.posts),
                "users": len(self.users),
                "deliveries": len(self.deliveries),
            }

    def user_named(self, username: str) -> dict[str, Any] | None:
        with self.lock:
            wanted = username.lower()
            return next((u for u in self.users if str(u.get("username") or "").lower() == wanted), None)

    def emit(self, event_type: str, event_name: str, body: dict[str, Any]) -> None:
        """Queue a webhook event (sent by this thread's `flush`), when the site has a webhook."""
        with self.lock:
            if self.webhook is not None:
                self.pending.setdefault(threading.get_ident(), []).append((event_type, event_name, body))

    def drop_pending(self) -> None:
        with self.lock:
            self.pending.pop(threading.get_ident(), None)

    def flush(self) -> list[dict[str, Any]]:
        """Send the queued events as Jobs::EmitWebHookEvent does (discourse/discourse
        app/jobs/regular/emit_web_hook_event.rb): the body is `MultiJson.dump({event_type => payload})` (compact
        JSON) whatever the content type; headers `Accept`, `Connection: close`, `Content-Type` (application/json, or
        application/x-www-form-urlencoded when the webhook is set so: only the header changes), `User-Agent:
        Discourse/<version>`, `X-Discourse-Instance`, `X-Discourse-Event-Id` (the new WebHookEvent record's id: each
        attempt has its own), `X-Discourse-Event-Type`, `X-Discourse-Event`, and `X-Discourse-Event-Signature:
        sha256=<hex HMAC-SHA256 of the raw body>` only when the webhook has a secret. Sent outside the state lock.
        Only the calling thread's events: a request hands on what it raised, never what a concurrent one did."""
        import requests

        with self.lock:
            pending, webhook = self.pending.pop(threading.get_ident(), []), self.webhook
        sent = []
        for event_type, event_name, payload in pending if webhook else []:
            raw = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
            with self.lock:
                self.next_event_id += 1
                event_id = self.next_event_id
            headers = {
                "Accept": "*/*",
                "Connection": "close",
                "Content-Type": webhook["content_type"],
                "User-Agent": f"Discourse/{DISCOURSE_VERSION}",
                "X-Discourse-Instance": webhook["instance"],
                "X-Discourse-Event-Id": str(event_id),
                "X-Discourse-Event-Type": event_type,
                "X-Discourse-Event": event_name,
            }
            if webhook.get("secret"):
                digest = hmac.new(webhook["secret"].encode(), raw, hashlib.sha256).hexdigest()
                headers["X-Discourse-Event-Signature"] = f"sha256={digest}"
            status: int | None
            try:
                status = requests.post(webhook["url"], data=raw, headers=headers, timeout=20).status_code
            except requests.RequestException:
                status = None
            delivery = {"headers": headers, "body": raw.decode(), "status": status}
            with self.lock:
                self.deliveries.append(delivery)
            sent.append(delivery)
        return sent


class DiscourseApi:
    def __init__(self, state: DiscourseState) -> None:
        self.state = state

    def create_post(self, request: Request, body: Any) -> Reply:
        if _anonymous(request):  # PostsController `requires_login`
            raise DiscourseError(403, NOT_LOGGED_IN, "not_logged_in")
        fields = body if isinstance(body, dict) else {}
        if not isinstance(fields.get("topic_id"), int):
            raise DiscourseError(422, "topic_id is missing or not a number")
        if not str(fields.get("raw") or "").strip():
            raise DiscourseError(422, "Body is too short (minimum is 1 character)")
        if fields["topic_id"] in self.state.gone_topics:
            raise PostRefused("Topic not found")
        topic_posts = [p for p in self.state.posts if p["topic_id"] == fields["topic_id"]]
        post = {
            "id": 5000 + len(self.state.posts) + 1,
            "topic_id": fields["topic_id"],
            "post_number": 100 + len(topic_posts) + 1,
            "reply_to_post_number": fields.get("reply_to_post_number"),
            "raw": fields["raw"],
            "cooked": f"<p>{fields['raw']}</p>",
            "username": request.headers.get("Api-Username"),
            "created_at": _rails_time(datetime.now(UTC)),
            "post_type": 1,
        }
        self.state.posts.append(post)
        # PostCreator triggers :post_created; the webhook's body is WebHookPostSerializer's (a few more fields).
        poster = self.state.user_named(str(post["username"] or ""))
        webhook_post = {
            **post,
            "name": (poster or {}).get("name", "system" if post["username"] == SYSTEM_USERNAME else None),
            "user_id": (poster or {}).get("id", -1),
            "updated_at": post["created_at"],
            "topic_posts_count": len(topic_posts) + 1,
            "deleted_at": None,
            "hidden": False,
            "wiki": False,
        }
        self.state.emit("post", "post_created", {"post": webhook_post})
        return 200, post

    def list_users(self, request: Request, body: Any, flag: str) -> Reply:
        """`GET /admin/users/list/{flag}.json?page=N&show_emails=true&order=created&asc=true`: a JSON array of at most
        100 users (a short one is the last), for an admin's key only; emails only when asked."""
        if _anonymous(request):  # `namespace :admin, constraints: StaffConstraint.new`: no route for anyone else
            raise DiscourseError(404, NOT_FOUND, "not_found")
        username = request.headers.get("Api-Username", "")
        caller = self.state.user_named(username)
        if caller is None and username != SYSTEM_USERNAME:
            # An Api-Username Discourse does not know matches no user (DefaultCurrentUserProvider): 403.
            raise DiscourseError(403, INVALID_KEY, "invalid_access")
        staff = username == SYSTEM_USERNAME or bool(caller and (caller.get("admin") or caller.get("moderator")))
        if not staff:
            # A known user who is not staff: the route's StaffConstraint does not match, so Discourse answers its
            # not-found page (404), as to a visitor; not a 403.
            raise DiscourseError(404, NOT_FOUND, "not_found")
        admin = username == SYSTEM_USERNAME or bool(caller and caller.get("admin"))
        try:
            page = max(0, int(request.args.get("page") or 0) - 1)
        except ValueError:
            page = 0
        users = [user for user in self.state.users if ADMIN_LIST_FLAGS.get(flag, lambda _: True)(user)]
        users = _admin_order(users, request.args.get("order") or "", flag, bool(request.args.get("asc")))
        shown = [copy.deepcopy(user) for user in users[page * ADMIN_LIST_PAGE : (page + 1) * ADMIN_LIST_PAGE]]
        # Emails only when asked, and to a moderator only where `moderators_view_emails` is on (off by default).
        show_emails = admin and (request.args.get("show_emails") or "").lower() == "true"
        for user in shown:
            for field in PROFILE_ONLY + (() if show_emails else PRIVATE_FIELDS):
                user.pop(field, None)
        return 200, shown

    def get_user(self, request: Request, body: Any, username: str) -> Reply:
        """`GET /u/{username}.json`: `{"user_badges": [], "user": {...}}`, with `user_fields` keyed by the field's
        numeric id as a string and `last_posted_at` (discourse_api_docs `getUser`). UserSerializer shows `email` only
        to the user themself (or staff, of a staged user); an admin reads others' at `/u/{username}/emails.json`."""
        user = self.state.user_named(username)
        if user is None:
            raise DiscourseError(404, NOT_FOUND, "not_found")
        shown = copy.deepcopy(user)
        fields = shown.get("user_fields") or {}
        shown["user_fields"] = {str(key).removeprefix("user_field_"): value for key, value in fields.items()}
        shown.setdefault("last_posted_at", None)
        own = request.headers.get("Api-Username", "").lower() == username.lower() and not _anonymous(request)
        if not own and not (shown.get("staged") and not _anonymous(request)):
            for field in PRIVATE_FIELDS:
                shown.pop(field, None)
        return 200, {"user_badges": [], "user": shown}

    def get_post(self, request: Request, body: Any, post_id: int) -> Reply:
        """`GET /posts/{id}.json`: one post made through the API (discourse_api_docs `getPost`); 404 `not_found` for
        any other (the sandbox holds only the posts it was sent)."""
        post = next((p for p in self.state.posts if p["id"] == post_id), None)
        if post is None or post["topic_id"] in self.state.gone_topics:
            raise DiscourseError(404, NOT_FOUND, "not_found")
        return 200, dict(post)

    def get_topic(self, request: Request, body: Any, topic_id: int) -> Reply:
        """`GET /t/{id}.json`: the topic's posts made through the API in `post_stream.posts` (oldest first) and their
        ids in `post_stream.stream` (discourse_api_docs `getTopic`); 404 `not_found` for a topic that is gone or that
        nothing was posted in (the sandbox knows no other)."""
        posts = [dict(p) for p in self.state.posts if p["topic_id"] == topic_id]
        if not posts or topic_id in self.state.gone_topics:
            raise DiscourseError(404, NOT_FOUND, "not_found")
        return 200, {
            "id": topic_id,
            "posts_count": len(posts),
            "post_stream": {"posts": posts, "stream": [p["id"] for p in posts]},
        }


def _admin_order(users: list[dict[str, Any]], order: str, flag: str, asc: bool) -> list[dict[str, Any]]:
    """AdminUserIndexQuery#initialize_query_with_order (discourse/discourse lib/admin_user_index_query.rb): an
    `order` it knows is `<field> ASC|DESC NULLS LAST` (so a user without the field comes last both ways; `seen` is
    COALESCEd to 1970 instead); none is `last_seen_at DESC NULLS LAST` for `active`, else `created_at DESC`, then
    `username`. The sorts below are stable, so the last one applied decides first."""
    by_username = sorted(users, key=lambda user: str(user.get("username") or ""))
    field = SORTABLE.get(order.lower().removesuffix(" asc").removesuffix(" desc"))
    if field is None:
        if flag == "active":
            field, asc = "last_seen_at", False
        else:
            return sorted(by_username, key=lambda user: str(user.get("created_at") or ""), reverse=True)
        users = by_username
    if field in COALESCED_TO_1970:
        return sorted(users, key=lambda user: str(user.get(field) or EPOCH), reverse=not asc)
    present = sorted((u for u in users if u.get(field) is not None), key=lambda u: str(u[field]), reverse=not asc)
    return present + [u for u in users if u.get(field) is None]


def _rails_time(moment: datetime) -> str:
    """A time as Rails renders it in JSON: `2024-11-14T22:30:05.456Z`."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _anonymous(request: Request) -> bool:
    """No `Api-Key` at all: Discourse treats the request as a visitor's (no user, no admin bucket)."""
    return not request.headers.get("Api-Key")


class DiscourseApp(SandboxApp[DiscourseState]):
    routes = Map(
        [
            Rule("/posts.json", methods=["POST"], endpoint="create_post"),
            Rule("/admin/users/list/<flag>.json", methods=["GET"], endpoint="list_users"),
            Rule("/u/<username>.json", methods=["GET"], endpoint="get_user"),
            Rule("/posts/<int:post_id>.json", methods=["GET"], endpoint="get_post"),
            Rule("/t/<int:topic_id>.json", methods=["GET"], endpoint="get_topic"),
        ],
        strict_slashes=False,
    )
    admin_routes = {
        ("POST", "/topics/gone"): "set_gone_topics",
        ("POST", "/key"): "rotate",
        ("POST", "/budget"): "set_budget",
        ("POST", "/webhook"): "set_webhook",
        ("POST", "/user_event"): "user_event",
    }

    def __init__(self, state: DiscourseState, api_key: str) -> None:
        super().__init__(state, DiscourseApi(state), credential=api_key)

    @property
    def api_key(self) -> str:
        assert self.credential is not None
        return self.credential.current

    def set_gone_topics(self, body: dict[str, Any]) -> dict[str, Any]:
        """`{"ids": [77, ...]}`: these topics are deleted from now on (`[]`: none is)."""
        ids = body.get("ids")
        if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
            raise ValueError("ids must be a list of topic ids")
        with self.state.lock:
            self.state.gone_topics = set(ids)
        return {"ids": sorted(ids)}

    def seed(self, body: dict[str, Any]) -> dict[str, Any]:
        """`{"users": [{"id", "username", "email", "active", "admin", "created_at", ...}]}`: users added."""
        return self.seed_users(self.state.users, body, lambda i: isinstance(i, int), "a numeric id")

    def set_webhook(self, body: dict[str, Any]) -> dict[str, Any]:
        """`{"url", "secret"?, "content_type"?, "instance"?}`: the site's webhook, sent every event (url null: none).
        `content_type` is the webhook's setting: application/json (default) or application/x-www-form-urlencoded."""
        url = body.get("url")
        content_type = body.get("content_type") or "application/json"
        if content_type not in WEBHOOK_CONTENT_TYPES:
            raise ValueError(f"content_type must be one of {', '.join(WEBHOOK_CONTENT_TYPES)}")
        webhook = None
        if url:
            instance = str(body.get("instance") or "https://forum.example.com")
            webhook = {"url": str(url), "secret": body.get("secret") or None, "content_type": content_type}
            webhook["instance"] = instance
        with self.state.lock:
            self.state.webhook = webhook
        return {"webhook": webhook is not None}

    def user_event(self, body: dict[str, Any]) -> dict[str, Any]:
        """`{"event": "user_created", "username"}`: the forum raises that user event for a stored user (a `user` body
        as WebHookUserSerializer renders it), sent at once. `{"event": "ping"}`: the webhook's Ping button."""
        event = str(body.get("event") or "")
        if event == "ping":
            self.state.emit("ping", "ping", {"ping": "OK"})
        else:
            if event not in USER_EVENTS:
                raise ValueError(f"event must be ping or one of {', '.join(USER_EVENTS)}")
            user = self.state.user_named(str(body.get("username") or ""))
            if user is None:
                raise ValueError("no such user")
            self.state.emit("user", event, {"user": webhook_user(user)})
        return {"deliveries": self.state.flush()}

    def respond(self, request: Request, status: int, payload: Any) -> Response:
        self.state.flush()  # Discourse's Sidekiq job; here, before the answer, so a test sees it at once
        return super().respond(request, status, payload)

    def _answer(self, request: Request) -> Response:
        try:
            return super()._answer(request)
        finally:
            # A refused request sends nothing it raised, and a later request on a reused thread id inherits nothing.
            self.state.drop_pending()

    def error(self, status: int, detail: str) -> SandboxError:
        return DiscourseError(status, detail, "not_found" if status == 404 else "invalid_parameters")

    def injected_error(self, status: int, targeted: bool) -> SandboxError:
        if status == 429:
            return rate_limited(1)
        return DiscourseError(status, "Internal Server Error", "server_error")

    def authenticate(self, request: Request) -> None:
        """As Auth::DefaultCurrentUserProvider: no key at all is a visitor (each action then decides: 403
        `not_logged_in` or 404); a key that is not the site's, or a key without an `Api-Username`, matches no user:
        403 `invalid_access` (worded as `invalid_api_credentials`); a good key takes one request from the site-wide
        admin bucket."""
        if _anonymous(request):
            return
        if request.headers.get("Api-Key") != self.api_key or not request.headers.get("Api-Username"):
            raise DiscourseError(403, INVALID_KEY, "invalid_access")
        with self.state.lock:
            allowed, _, wait = self.state.budget.take()
        if not allowed:
            raise rate_limited(wait)


class DiscourseSandbox(SandboxServer):
    app: DiscourseApp

    def __init__(self, host: str = "127.0.0.1", port: int = 0, api_key: str = "sandbox-discourse-key") -> None:
        self.state = DiscourseState()
        super().__init__(DiscourseApp(self.state, api_key), host, port, name="discourse-sandbox")

    @property
    def api_key(self) -> str:
        """The API key Discourse accepts now."""
        return self.app.api_key

    def posts(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return list(self.state.posts)

    def delete_topics(self, *ids: int) -> None:
        """These topics are gone: a reply in one is refused 422 "Topic not found"."""
        self.app.set_gone_topics({"ids": sorted(set(ids) | self.state.gone_topics)})

    def rotate_key(self, api_key: str) -> None:
        """A new API key; the one before it is refused from now on."""
        self.app.rotate({"api_key": api_key})

    def add_users(self, users: list[dict[str, Any]]) -> None:
        """Users of the forum, as the admin list shows them with `show_emails=true`."""
        self.app.seed({"users": users})

    def set_webhook(
        self,
        url: str | None,
        secret: str | None = None,
        content_type: str = "application/json",
        instance: str = "https://forum.example.com",
    ) -> None:
        """The site's webhook (all events): `post_created` for each reply made through the API, and the user events
        `send_user_event` raises. None: no webhook."""
        self.app.set_webhook({"url": url, "secret": secret, "content_type": content_type, "instance": instance})

    def send_user_event(self, event: str, username: str) -> list[dict[str, Any]]:
        """Discourse raises `event` (user_created, user_confirmed_email, user_updated, ...) for a stored user; the
        deliveries made (`headers`, `body`, `status`)."""
        return self.app.user_event({"event": event, "username": username})["deliveries"]

    def deliveries(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return list(self.state.deliveries)
