"""The Discourse API sandbox: replies in topics, the admin users list (the bulk import's fetch), the admin rate limit,
the posts made, topics that are gone, and key rotation.

Formats from discourse/discourse_api_docs `openapi.json` (`POST /posts.json`, `GET /admin/users/list/{flag}.json`:
a bare array of users, `email` only with `show_emails`) and the facts in ../shared/reference: the site-wide bucket of
60 admin calls a minute, its 429 `{"errors", "error_type": "rate_limit", "extras": {"wait_seconds"}}` with
`Retry-After`."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from memberflow_sandboxes.base import BaseState, Reply, SandboxApp, SandboxError, SandboxServer, json_response
from memberflow_sandboxes.zendesk.state import Budget


class DiscourseError(SandboxError):
    def __init__(self, status: int, message: str, error_type: str = "invalid_parameters", wait: int | None = None):
        super().__init__(status, message, {"Retry-After": str(wait)} if wait is not None else None)
        self.message, self.error_type, self.wait = message, error_type, wait

    def response(self) -> Response:
        body: dict[str, Any] = {"errors": [self.message], "error_type": self.error_type}
        if self.wait is not None:
            body["extras"] = {"wait_seconds": self.wait}
        response = json_response(body, self.status)
        response.headers.update(self.headers)
        return response


class PostRefused(SandboxError):
    """A reply PostCreator refuses, as PostsController answers it: 422 `{"action": "create_post", "errors"}`."""

    def __init__(self, message: str) -> None:
        super().__init__(422, message)
        self.message = message

    def response(self) -> Response:
        return json_response({"action": "create_post", "errors": [self.message]}, 422)


INVALID_KEY = "You are not permitted to view the requested resource. The API username or key is invalid."
"""Discourse's 403 (`invalid_api_credentials`) for an unknown or revoked key, or an API username it does not know."""


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
PRIVATE_FIELDS = ("email", "secondary_emails")
"""What the admin list shows only with `show_emails=true`."""
SYSTEM_USERNAME = "system"
"""Discourse's own admin user, which an `Api-Username` may always name."""


class DiscourseState(BaseState):
    def __init__(self) -> None:
        super().__init__()
        self.posts: list[dict[str, Any]] = []
        self.budget = Budget(60, 60.0)
        self.gone_topics: set[int] = set()
        """Topics deleted (or never there): a reply in one is refused 422 "Topic not found", as Discourse does."""
        self.users: list[dict[str, Any]] = []
        """The forum's users as the admin list shows them with `show_emails=true` (`id`, `username`, `email`,
        `active`, `admin`, `created_at`, `last_seen_at`, ...)."""

    def reset(self) -> None:
        with self.lock:
            super().reset()
            self.posts = []
            self.budget = Budget(60, 60.0)
            self.gone_topics = set()
            self.users = []

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {**super().snapshot(), "posts": list(self.posts), "users": len(self.users)}


class DiscourseApi:
    def __init__(self, state: DiscourseState) -> None:
        self.state = state

    def create_post(self, request: Request, body: Any) -> Reply:
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
            "created_at": datetime.now(UTC).isoformat(),
            "post_type": 1,
        }
        self.state.posts.append(post)
        return 200, post

    def list_users(self, request: Request, body: Any, flag: str) -> Reply:
        """`GET /admin/users/list/{flag}.json?page=N&show_emails=true&order=created&asc=true`: a JSON array of at most
        100 users (a short one is the last), for an admin's key only; emails only when asked."""
        username = request.headers.get("Api-Username", "")
        if username != SYSTEM_USERNAME and not any(
            user.get("username") == username and user.get("admin") for user in self.state.users
        ):
            raise DiscourseError(403, "You are not permitted to view the requested resource.", "invalid_access")
        try:
            page = max(0, int(request.args.get("page") or 0) - 1)
        except ValueError:
            page = 0
        users = [user for user in self.state.users if ADMIN_LIST_FLAGS.get(flag, lambda _: True)(user)]
        order = SORTABLE.get((request.args.get("order") or "").lower())
        if order:
            users = sorted(users, key=lambda user: (user.get(order) is not None, user.get(order) or ""))
            if not request.args.get("asc"):
                users.reverse()
        elif flag == "active":
            users = sorted(users, key=lambda user: user.get("username") or "")
            users = sorted(users, key=lambda user: user.get("last_seen_at") or "", reverse=True)
        else:
            users = sorted(users, key=lambda user: user.get("created_at") or "", reverse=True)
        shown = [copy.deepcopy(user) for user in users[page * ADMIN_LIST_PAGE : (page + 1) * ADMIN_LIST_PAGE]]
        if (request.args.get("show_emails") or "").lower() != "true":
            for user in shown:
                for field in PRIVATE_FIELDS:
                    user.pop(field, None)
        return 200, shown


class DiscourseApp(SandboxApp[DiscourseState]):
    routes = Map(
        [
            Rule("/posts.json", methods=["POST"], endpoint="create_post"),
            Rule("/admin/users/list/<flag>.json", methods=["GET"], endpoint="list_users"),
        ],
        strict_slashes=False,
    )
    admin_routes = {
        ("POST", "/topics/gone"): "set_gone_topics",
        ("POST", "/key"): "rotate",
        ("POST", "/budget"): "set_budget",
    }

    def __init__(self, state: DiscourseState, api_key: str) -> None:
        super().__init__(state, DiscourseApi(state))
        self.api_key = api_key
        self.initial_api_key = api_key

    def reset(self) -> None:
        super().reset()
        self.api_key = self.initial_api_key

    def set_gone_topics(self, body: dict[str, Any]) -> dict[str, Any]:
        """`{"ids": [77, ...]}`: these topics are deleted from now on (`[]`: none is)."""
        ids = body.get("ids")
        if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
            raise ValueError("ids must be a list of topic ids")
        with self.state.lock:
            self.state.gone_topics = set(ids)
        return {"ids": sorted(ids)}

    def rotate(self, body: dict[str, Any]) -> dict[str, Any]:
        """`{"api_key": "new"}`: the key is rotated; the old one is refused as an invalid key."""
        key = str(body.get("api_key") or "")
        if not key:
            raise ValueError("api_key is required")
        self.api_key = key
        return {"rotated": True}

    def seed(self, body: dict[str, Any]) -> dict[str, Any]:
        """`{"users": [{"id", "username", "email", "active", "admin", "created_at", ...}]}`: users added."""
        users = body.get("users")
        if not isinstance(users, list) or not all(isinstance(u, dict) and isinstance(u.get("id"), int) for u in users):
            raise ValueError("users must be a list of users, each with a numeric id")
        with self.state.lock:
            self.state.users.extend(copy.deepcopy(users))
            return {"users": len(self.state.users)}

    def set_budget(self, body: dict[str, Any]) -> dict[str, Any]:
        """`{"requests": 60, "window_seconds": 60}`: the site-wide admin bucket (null requests: no limit)."""
        with self.state.lock:
            self.state.budget = Budget(body.get("requests"), float(body.get("window_seconds", 60)))
        return {"requests": body.get("requests")}

    def error(self, status: int, detail: str) -> SandboxError:
        return DiscourseError(status, detail, "not_found" if status == 404 else "invalid_parameters")

    def injected_error(self, status: int, targeted: bool) -> SandboxError:
        if status == 429:
            return DiscourseError(429, "You've performed this action too many times.", "rate_limit", 1)
        return DiscourseError(status, "Internal Server Error", "server_error")

    def authenticate(self, request: Request) -> None:
        if request.headers.get("Api-Key") != self.api_key or not request.headers.get("Api-Username"):
            raise DiscourseError(403, INVALID_KEY, "invalid_access")
        with self.state.lock:
            allowed, _, wait = self.state.budget.take()
        if not allowed:
            raise DiscourseError(429, "You've performed this action too many times.", "rate_limit", wait)


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

    def set_budget(self, requests: int | None, window_seconds: float = 60.0) -> None:
        """The site-wide admin bucket (Discourse's default: 60 a minute), restarted now."""
        self.app.set_budget({"requests": requests, "window_seconds": window_seconds})
