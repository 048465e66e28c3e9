"""The Slack Web API sandbox: chat.postMessage, a request budget, fault injection, the messages posted."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs

from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from memberflow_sandboxes.base import BaseState, Reply, SandboxApp, SandboxError, SandboxServer, json_response
from memberflow_sandboxes.zendesk.state import Budget

API_PREFIX = "/api"


class SlackError(SandboxError):
    def __init__(self, error: str, status: int = 200, headers: dict[str, str] | None = None) -> None:
        super().__init__(status, error, headers)
        self.error = error

    def response(self) -> Response:
        response = json_response({"ok": False, "error": self.error}, self.status)
        response.headers.update(self.headers)
        return response


class SlackState(BaseState):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[dict[str, Any]] = []
        self.budget = Budget()

    def reset(self) -> None:
        with self.lock:
            super().reset()
            self.messages = []
            self.budget = Budget()

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {**super().snapshot(), "messages": list(self.messages)}


class SlackApi:
    def __init__(self, state: SlackState) -> None:
        self.state = state

    def post_message(self, request: Request, body: Any) -> Reply:
        fields = (
            body if isinstance(body, dict) else {k: v[0] for k, v in parse_qs(request.get_data(as_text=True)).items()}
        )
        channel, text = fields.get("channel"), fields.get("text")
        if not channel:
            raise SlackError("channel_not_found")
        if not text and not fields.get("blocks"):
            raise SlackError("no_text")
        ts = f"{time.time():.6f}"
        message = {
            "type": "message",
            "channel": channel,
            "text": text,
            "ts": ts,
            "thread_ts": fields.get("thread_ts"),
            "bot_id": "B0SANDBOX",
            "user": "U0SANDBOXBOT",
        }
        self.state.messages.append(message)
        return 200, {"ok": True, "channel": channel, "ts": ts, "message": message}


class SlackApp(SandboxApp[SlackState]):
    api_prefix = API_PREFIX
    routes = Map([Rule("/chat.postMessage", methods=["POST"], endpoint="post_message")], strict_slashes=False)
    admin_routes = {("POST", "/budget"): "set_budget"}

    def __init__(self, state: SlackState, token: str) -> None:
        super().__init__(state, SlackApi(state))
        self.token = token

    def error(self, status: int, detail: str) -> SandboxError:
        return SlackError(
            "unknown_method" if status == 404 else "invalid_arguments" if status < 500 else "fatal_error",
            status if status >= 500 else 200,
        )

    def injected_error(self, status: int, targeted: bool) -> SandboxError:
        if status == 429:
            return SlackError("ratelimited", 429, {"Retry-After": "1"})
        return SlackError("fatal_error", status)

    def parse_body(self, request: Request) -> Any:
        if request.mimetype == "application/json":
            return super().parse_body(request)
        return None  # form posts are read by the handler

    def authenticate(self, request: Request) -> None:
        if request.headers.get("Authorization", "") != f"Bearer {self.token}":
            raise SlackError("invalid_auth")
        with self.state.lock:
            allowed, _, wait = self.state.budget.take()
        if not allowed:
            raise SlackError("ratelimited", 429, {"Retry-After": str(wait)})

    def set_budget(self, body: dict[str, Any]) -> dict[str, Any]:
        with self.state.lock:
            self.state.budget = Budget(body.get("requests"), float(body.get("window_seconds", 60)))
        return {"requests": body.get("requests")}


class SlackSandbox(SandboxServer):
    app: SlackApp

    def __init__(self, host: str = "127.0.0.1", port: int = 0, token: str = "xoxb-sandbox-token") -> None:
        self.token = token
        self.state = SlackState()
        super().__init__(SlackApp(self.state, token), host, port, name="slack-sandbox")

    def messages(self, channel: str | None = None) -> list[dict[str, Any]]:
        with self.state.lock:
            return [m for m in self.state.messages if channel is None or m["channel"] == channel]
