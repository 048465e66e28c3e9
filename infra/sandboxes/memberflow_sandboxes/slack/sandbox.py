"""The Slack Web API sandbox: chat.postMessage, a request budget, fault injection, the messages posted, channels the
bot is not in (or that are gone), and token rotation."""

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


CHANNEL_ERRORS = ("not_in_channel", "channel_not_found", "is_archived")
"""What chat.postMessage answers for a channel the bot cannot post in: a public channel it was not invited to
(`not_in_channel`), a private one it is not in or one that does not exist (`channel_not_found`), an archived one."""


class SlackState(BaseState):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[dict[str, Any]] = []
        self.budget = Budget()
        self.channel_errors: dict[str, str] = {}
        """Channel id -> the error chat.postMessage answers for it (see CHANNEL_ERRORS); other channels are open."""
        self.refusals: list[dict[str, Any]] = []
        """Posts refused for their channel: {"channel", "error", "thread_ts"}."""
        self.revoked_tokens: set[str] = set()

    def reset(self) -> None:
        with self.lock:
            super().reset()
            self.messages = []
            self.budget = Budget()
            self.channel_errors = {}
            self.refusals = []
            self.revoked_tokens = set()

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                **super().snapshot(),
                "messages": list(self.messages),
                "channel_errors": dict(self.channel_errors),
                "refusals": list(self.refusals),
            }


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
        refused = self.state.channel_errors.get(str(channel))
        if refused:
            self.state.refusals.append({"channel": channel, "error": refused, "thread_ts": fields.get("thread_ts")})
            raise SlackError(refused)
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
    admin_routes = {
        ("POST", "/budget"): "set_budget",
        ("POST", "/channels"): "set_channels",
        ("POST", "/token"): "rotate",
    }

    def __init__(self, state: SlackState, token: str) -> None:
        super().__init__(state, SlackApi(state))
        self.token = token
        self.initial_token = token

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

    def reset(self) -> None:
        super().reset()
        self.token = self.initial_token

    def authenticate(self, request: Request) -> None:
        # As Slack: no token at all is `not_authed`, a token it revoked `token_revoked`, any other `invalid_auth`.
        header = request.headers.get("Authorization", "")
        sent = header[len("Bearer ") :].strip() if header.startswith("Bearer ") else ""
        if not sent:
            raise SlackError("not_authed")
        if sent != self.token:
            with self.state.lock:
                revoked = sent in self.state.revoked_tokens
            raise SlackError("token_revoked" if revoked else "invalid_auth")
        with self.state.lock:
            allowed, _, wait = self.state.budget.take()
        if not allowed:
            raise SlackError("ratelimited", 429, {"Retry-After": str(wait)})

    def set_budget(self, body: dict[str, Any]) -> dict[str, Any]:
        with self.state.lock:
            self.state.budget = Budget(body.get("requests"), float(body.get("window_seconds", 60)))
        return {"requests": body.get("requests")}

    def set_channels(self, body: dict[str, Any]) -> dict[str, Any]:
        """`{"C0MODS": "not_in_channel", "C0GONE": "channel_not_found", "C0OLD": "is_archived", "C1": null}`: how
        chat.postMessage answers for each channel from now on (null: the bot is in it again)."""
        for channel, error in body.items():
            if error is not None and error not in CHANNEL_ERRORS:
                raise ValueError(f"{channel}: the error must be one of {', '.join(CHANNEL_ERRORS)} or null")
        with self.state.lock:
            for channel, error in body.items():
                if error is None:
                    self.state.channel_errors.pop(channel, None)
                else:
                    self.state.channel_errors[channel] = error
            return dict(self.state.channel_errors)

    def rotate(self, body: dict[str, Any]) -> dict[str, Any]:
        """`{"token": "xoxb-new"}`: the app's token is rotated; the old one is answered `token_revoked`."""
        token = str(body.get("token") or "")
        if not token:
            raise ValueError("token is required")
        with self.state.lock:
            self.state.revoked_tokens.add(self.token)
            self.state.revoked_tokens.discard(token)
            self.token = token
        return {"rotated": True}


class SlackSandbox(SandboxServer):
    app: SlackApp

    def __init__(self, host: str = "127.0.0.1", port: int = 0, token: str = "xoxb-sandbox-token") -> None:
        self.state = SlackState()
        super().__init__(SlackApp(self.state, token), host, port, name="slack-sandbox")

    @property
    def token(self) -> str:
        """The bot token Slack accepts now."""
        return self.app.token

    def messages(self, channel: str | None = None) -> list[dict[str, Any]]:
        with self.state.lock:
            return [m for m in self.state.messages if channel is None or m["channel"] == channel]

    def refuse_channel(self, channel: str, error: str = "not_in_channel") -> None:
        """The bot is not in `channel` (`not_in_channel`), it is gone or private (`channel_not_found`), or archived."""
        self.app.set_channels({channel: error})

    def admit_channel(self, channel: str) -> None:
        """The bot was invited to `channel` (or it was unarchived): posts go through again."""
        self.app.set_channels({channel: None})

    def refusals(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Posts refused for their channel, oldest first."""
        with self.state.lock:
            return [r for r in self.state.refusals if channel is None or r["channel"] == channel]

    def rotate_token(self, token: str) -> None:
        """A new bot token; the one before it is now `token_revoked`."""
        self.app.rotate({"token": token})
