"""The Discourse API sandbox: replies in topics, the admin rate limit, the posts made, topics that are gone, and key
rotation."""

from __future__ import annotations

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


class DiscourseState(BaseState):
    def __init__(self) -> None:
        super().__init__()
        self.posts: list[dict[str, Any]] = []
        self.budget = Budget(60, 60.0)
        self.gone_topics: set[int] = set()
        """Topics deleted (or never there): a reply in one is refused 422 "Topic not found", as Discourse does."""

    def reset(self) -> None:
        with self.lock:
            super().reset()
            self.posts = []
            self.budget = Budget(60, 60.0)
            self.gone_topics = set()

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {**super().snapshot(), "posts": list(self.posts)}


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


class DiscourseApp(SandboxApp[DiscourseState]):
    routes = Map([Rule("/posts.json", methods=["POST"], endpoint="create_post")], strict_slashes=False)
    admin_routes = {("POST", "/topics/gone"): "set_gone_topics", ("POST", "/key"): "rotate"}

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
