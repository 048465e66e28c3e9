"""The Slack Web API sandbox: chat.postMessage, users.list (the bulk import's fetch), a request budget (per method if
asked), fault injection, the messages posted, channels the bot is not in (or that are gone), the token's scopes, and
token rotation.

Formats from Slack's method docs (api.slack.com/methods/chat.postMessage, /users.list: `members`,
`response_metadata.next_cursor`, errors as `{"ok": false, "error"}`) and the facts in ../shared/reference: the
`X-OAuth-Scopes` header, `limit` at most 1000. Not from a capture: the user count beyond which a missing `limit` is
refused, and `invalid_arguments` for a `limit` over 1000 (Slack documents neither)."""

from __future__ import annotations

import base64
import binascii
import copy
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from memberflow_sandboxes.base import BaseState, Reply, SandboxApp, SandboxError, SandboxServer, json_response
from memberflow_sandboxes.traffic import Budget, budget_from

API_PREFIX = "/api"


class SlackError(SandboxError):
    def __init__(
        self,
        error: str,
        status: int = 200,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(status, error, headers)
        self.error = error
        self.extra = dict(extra or {})
        """More fields of the error answer (`missing_scope` names the scope `needed` and those `provided`)."""

    def response(self) -> Response:
        response = json_response({"ok": False, "error": self.error, **self.extra}, self.status)
        response.headers.update(self.headers)
        return response


CHANNEL_ERRORS = ("not_in_channel", "channel_not_found", "is_archived")
"""What chat.postMessage answers for a channel the bot cannot post in: a public channel it was not invited to
(`not_in_channel`), a private one it is not in or one that does not exist (`channel_not_found`), an archived one."""


DEFAULT_SCOPES = ("chat:write", "users:read", "users:read.email", "channels:history")
"""The bot token's scopes unless a test says otherwise (`grant_scopes`): Slack sends them on every answer in
`X-OAuth-Scopes`, and leaves `profile.email` out of users.list without `users:read.email`. memberflow needs the first
three; `channels:history` lets whoever checks the sandbox read back what was posted."""
USERS_LIST_MAX_LIMIT = 1000
"""users.list's `limit` is at most 1000 (Slack advises 200 at most); beyond it the call is refused."""
METHOD_SCOPES = {
    "chat.postMessage": "chat:write",
    "users.list": "users:read",
    "conversations.history": "channels:history",
    "conversations.replies": "channels:history",
}
"""The scope each method accepts, sent as `X-Accepted-OAuth-Scopes` next to the token's `X-OAuth-Scopes` on every
answer to a token Slack knows, refusals included (api.slack.com "Scopes and permissions": "Checking scopes")."""
LIMIT_REQUIRED_ABOVE = 500
"""A workspace larger than this answers users.list without a `limit` with `limit_required` ("For large teams a limit
is required"); a smaller one gets everyone in one page."""


class SlackState(BaseState):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[dict[str, Any]] = []
        self.channel_errors: dict[str, str] = {}
        """Channel id -> the error chat.postMessage answers for it (see CHANNEL_ERRORS); other channels are open."""
        self.refusals: list[dict[str, Any]] = []
        """Posts refused for their channel: {"channel", "error", "thread_ts"}."""
        self.users: list[dict[str, Any]] = []
        """The workspace's users as users.list answers them (with `profile.email`; left out without the scope)."""
        self.scopes: list[str] = list(DEFAULT_SCOPES)
        self.method_budgets: dict[str, Budget] = {}
        """Slack's limits are per method (users.list is tier 2, about 20 calls a minute): method -> its budget, on
        top of `budget`, which every call counts against."""

    def reset(self) -> None:
        with self.lock:
            super().reset()
            self.messages = []
            self.channel_errors = {}
            self.refusals = []
            self.users = []
            self.scopes = list(DEFAULT_SCOPES)
            self.method_budgets = {}

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                **super().snapshot(),
                "messages": list(self.messages),
                "channel_errors": dict(self.channel_errors),
                "refusals": list(self.refusals),
                "users": len(self.users),
                "scopes": list(self.scopes),
            }


class SlackApi:
    def __init__(self, state: SlackState) -> None:
        self.state = state

    def _require_scope(self, needed: str) -> list[str]:
        """The token's scopes, or `missing_scope` naming the one `needed` and those `provided` (comma-separated, as
        Slack answers it) when the token lacks it; Slack checks the scope before reading the arguments."""
        scopes = list(self.state.scopes)
        if needed not in scopes:
            raise SlackError("missing_scope", extra={"needed": needed, "provided": ",".join(scopes)})
        return scopes

    def post_message(self, request: Request, body: Any) -> Reply:
        """`chat.postMessage`: needs `chat:write` (METHOD_SCOPES)."""
        self._require_scope(METHOD_SCOPES["chat.postMessage"])
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
            "bot_id": BOT_ID,
            "user": BOT_USER_ID,
        }
        self.state.messages.append(message)
        # The answer's `message` as Slack's chat.postMessage example shows it: `thread_ts` only on a thread reply
        # (api.slack.com/methods/chat.postMessage; slackapi/java-slack-sdk json-logs MessageBotPayload.json), no
        # `channel` inside it (the answer's own `channel` says where).
        return 200, {"ok": True, "channel": channel, "ts": ts, "message": _shown(message)}

    def auth_test(self, request: Request, body: Any) -> Reply:
        """`auth.test`: who the token is (a bot user of the sandbox's workspace); no scope needed. Fields as
        api.slack.com/methods/auth.test's example (`ok`, `url`, `team`, `user`, `team_id`, `user_id`) plus what a bot
        token adds, `bot_id` and `is_enterprise_install` (@slack/web-api `AuthTestResponse`)."""
        return 200, {
            "ok": True,
            "url": "https://sandbox.slack.com/",
            "team": "Sandbox",
            "user": "memberflow",
            "team_id": WORKSPACE_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def history(self, request: Request, body: Any) -> Reply:
        """`conversations.history`: a channel's messages, newest first, without thread replies (Slack lists those in
        conversations.replies), `limit` (default 100, at most 999) and `cursor` pages, `oldest`/`latest` bounds.
        Answer as api.slack.com/methods/conversations.history's example: `ok`, `messages`, `has_more`, `pin_count`,
        `response_metadata.next_cursor` (@slack/web-api `ConversationsHistoryResponse` has the same)."""
        self._require_scope(METHOD_SCOPES["conversations.history"])
        channel = _argument(request, body, "channel")
        if not channel:
            raise SlackError("channel_not_found")
        try:
            oldest = float(_argument(request, body, "oldest") or 0)
            latest = float(_argument(request, body, "latest") or "inf")
        except ValueError:
            raise SlackError("invalid_arguments") from None
        posted = [
            m
            for m in self.state.messages
            if m["channel"] == channel and m.get("thread_ts") in (None, m["ts"]) and oldest < float(m["ts"]) < latest
        ]
        messages = list(reversed(posted))
        page, next_cursor = _page(messages, request, body, _limit(request, body, default=100, most=999), _message_key)
        return 200, _messages_answer(page, next_cursor, pin_count=0)

    def replies(self, request: Request, body: Any) -> Reply:
        """`conversations.replies`: a thread, its parent first (when the parent was posted here: the platform's own
        members' messages never pass through the sandbox), then its replies oldest first; `thread_not_found` for a
        thread nothing was posted in. Answer as api.slack.com/methods/conversations.replies's example: `ok`,
        `messages`, `has_more`, `response_metadata.next_cursor`, and no `pin_count` (history's alone has one)."""
        self._require_scope(METHOD_SCOPES["conversations.replies"])
        channel, ts = _argument(request, body, "channel"), _argument(request, body, "ts")
        if not channel:
            raise SlackError("channel_not_found")
        if not ts:
            raise SlackError("invalid_arguments")
        thread = [m for m in self.state.messages if m["channel"] == channel and ts in (m["ts"], m.get("thread_ts"))]
        if not thread:
            raise SlackError("thread_not_found")
        thread.sort(key=lambda m: (m["ts"] != ts, float(m["ts"])))
        page, next_cursor = _page(thread, request, body, _limit(request, body, default=1000, most=1000), _message_key)
        return 200, _messages_answer(page, next_cursor)

    def users_list(self, request: Request, body: Any) -> Reply:
        """`users.list`: `limit` (1-1000; none on a large workspace is `limit_required`) and `cursor` (the previous
        page's `response_metadata.next_cursor`; an unknown one is `invalid_cursor`); needs `users:read`, and
        `users:read.email` for `profile.email`."""
        scopes = self._require_scope(METHOD_SCOPES["users.list"])
        users = self.state.users
        raw_limit = _argument(request, body, "limit")
        try:
            limit = int(raw_limit or 0)
        except ValueError:
            raise SlackError("invalid_arguments") from None
        if limit < 0 or limit > USERS_LIST_MAX_LIMIT:
            raise SlackError("invalid_arguments")
        if limit == 0:  # none (or 0, users.list's documented default): everyone, unless the workspace is large
            if len(users) > LIMIT_REQUIRED_ABOVE:
                raise SlackError("limit_required")
            limit = max(1, len(users))
        page, next_cursor = _page(users, request, body, limit, _user_key)
        page = [copy.deepcopy(user) for user in page]
        if "users:read.email" not in scopes:
            for user in page:
                (user.get("profile") or {}).pop("email", None)
        return 200, {
            "ok": True,
            "members": page,
            "cache_ts": int(time.time()),
            "response_metadata": {"next_cursor": next_cursor},
        }


WORKSPACE_ID = "T0SANDBOX"
BOT_USER_ID = "U0SANDBOXBOT"
BOT_ID = "B0SANDBOX"


def _shown(message: dict[str, Any]) -> dict[str, Any]:
    """A message as Slack shows it in answers: `thread_ts` only on a thread's messages (api.slack.com/methods/
    chat.postMessage; slackapi/java-slack-sdk json-logs MessageBotPayload.json), no `channel` inside it."""
    return {k: v for k, v in message.items() if k != "channel" and not (k == "thread_ts" and v is None)}


def _argument(request: Request, body: Any, name: str) -> str:
    """A method's argument, from a JSON body, a form body or the query string (Slack takes all three)."""
    value = body.get(name) if isinstance(body, dict) else None
    return str(value if value is not None else request.values.get(name) or "").strip()


def _limit(request: Request, body: Any, *, default: int, most: int) -> int:
    """A conversations.* `limit`: `default` when none is given, `most` at the most; not a positive number:
    `invalid_arguments`."""
    raw_limit = _argument(request, body, "limit")
    try:
        limit = min(int(raw_limit), most) if raw_limit else default
    except ValueError:
        raise SlackError("invalid_arguments") from None
    if limit < 1:
        raise SlackError("invalid_arguments")
    return limit


def _page(
    items: list[dict[str, Any]], request: Request, body: Any, limit: int, key: Callable[[dict[str, Any]], str]
) -> tuple[list[dict[str, Any]], str]:
    """Slack's cursor pagination (api.slack.com/docs/pagination): at most `limit` items from where `cursor` (a
    previous page's `response_metadata.next_cursor`; none: the start) points, and the next page's cursor, an empty
    string after the last page. A cursor is base64 of the key of the next page's first item, as Slack's look
    (users.list `dXNlcjpVMDYxTkZUVDI=` is `user:U061NFTT2`, conversations.history `bmV4dF90czoxNTEyMDg1ODYxMDAwNTQz`
    `next_ts:1512085861000543`), so a page does not shift when items are added before it; one that names no item
    is `invalid_cursor`."""
    start = 0
    cursor = _argument(request, body, "cursor")
    if cursor:
        try:
            wanted = base64.b64decode(cursor, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise SlackError("invalid_cursor") from None
        start = next((position for position, item in enumerate(items) if key(item) == wanted), -1)
        if start < 0:
            raise SlackError("invalid_cursor")
    following = start + limit
    next_cursor = base64.b64encode(key(items[following]).encode()).decode() if following < len(items) else ""
    return items[start:following], next_cursor


def _user_key(user: dict[str, Any]) -> str:
    return f"user:{user['id']}"


def _message_key(message: dict[str, Any]) -> str:
    return "next_ts:" + str(message["ts"]).replace(".", "")


def _messages_answer(page: list[dict[str, Any]], next_cursor: str, **extra: Any) -> dict[str, Any]:
    return {
        "ok": True,
        "messages": [_shown(m) for m in page],
        "has_more": bool(next_cursor),
        **extra,
        "response_metadata": {"next_cursor": next_cursor},
    }


def _missing_charset(request: Request) -> bool:
    return request.mimetype == "application/json" and "charset" not in request.mimetype_params


class SlackApp(SandboxApp[SlackState]):
    api_prefix = API_PREFIX
    routes = Map(
        [
            Rule("/chat.postMessage", methods=["POST"], endpoint="post_message"),
            Rule("/users.list", methods=["GET", "POST"], endpoint="users_list"),
            Rule("/auth.test", methods=["GET", "POST"], endpoint="auth_test"),
            Rule("/conversations.history", methods=["GET", "POST"], endpoint="history"),
            Rule("/conversations.replies", methods=["GET", "POST"], endpoint="replies"),
        ],
        strict_slashes=False,
    )
    admin_routes = {
        ("POST", "/budget"): "set_budget",
        ("POST", "/channels"): "set_channels",
        ("POST", "/token"): "rotate",
        ("POST", "/scopes"): "set_scopes",
    }

    credential_name = "token"

    def __init__(self, state: SlackState, token: str) -> None:
        super().__init__(state, SlackApi(state), credential=token)

    @property
    def token(self) -> str:
        assert self.credential is not None
        return self.credential.current

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
        # A JSON body that is not JSON is `invalid_json`, JSON that is no object `json_not_object` (the errors every
        # Web API method documents, e.g. api.slack.com/methods/chat.postMessage "Errors"), with HTTP 200 as ever.
        if request.mimetype == "application/json":
            try:
                body = super().parse_body(request)
            except SandboxError:
                raise SlackError("invalid_json") from None
            if body is not None and not isinstance(body, dict):
                raise SlackError("json_not_object")
            return body
        return None  # form posts are read by the handler

    def authenticate(self, request: Request) -> None:
        # As Slack: no token at all is `not_authed`, a token it revoked `token_revoked`, any other `invalid_auth`.
        header = request.headers.get("Authorization", "")
        sent = header[len("Bearer ") :].strip() if header.startswith("Bearer ") else ""
        if not sent:
            raise SlackError("not_authed")
        assert self.credential is not None
        if sent != self.credential.current:
            raise SlackError("token_revoked" if self.credential.retired(sent) else "invalid_auth")
        request.environ["sandbox.authed"] = True
        method = request.path[len(API_PREFIX) :].strip("/")
        with self.state.lock:
            allowed, _, wait = self.state.budget.take()
            tier = self.state.method_budgets.get(method)
            if allowed and tier is not None:
                allowed, _, wait = tier.take()
        if not allowed:
            raise SlackError("ratelimited", 429, {"Retry-After": str(wait)})

    def respond(self, request: Request, status: int, payload: Any) -> Response:
        if isinstance(payload, dict) and payload.get("ok") and _missing_charset(request):
            # A JSON body whose Content-Type names no charset is read as UTF-8 and answered with a warning (Slack's
            # "Using the Slack Web API", JSON-encoded bodies: `missing_charset`), at the top level and in
            # `response_metadata.warnings`. slack_sdk always sends `application/json;charset=utf-8`.
            metadata = {**payload.get("response_metadata", {})}
            metadata["warnings"] = [*metadata.get("warnings", []), "missing_charset"]
            payload = {**payload, "warning": "missing_charset", "response_metadata": metadata}
        return super().respond(request, status, payload)

    def _answer(self, request: Request) -> Response:
        """Every answer to a token Slack knows, refusals and 429s included, names the token's scopes and the
        method's (METHOD_SCOPES)."""
        response = super()._answer(request)
        if request.environ.get("sandbox.authed"):
            with self.state.lock:
                response.headers["X-OAuth-Scopes"] = ",".join(self.state.scopes)
            accepted = METHOD_SCOPES.get(request.path[len(API_PREFIX) :].strip("/"))
            if accepted:
                response.headers["X-Accepted-OAuth-Scopes"] = accepted
        return response

    def set_budget(self, body: dict[str, Any]) -> dict[str, Any]:
        """`{"requests": N, "window_seconds": W}`: every call's budget; with `"method": "users.list"`, that method's
        own (its rate tier), on top of it."""
        if not body.get("method"):
            return super().set_budget(body)
        budget = budget_from(body)
        with self.state.lock:
            self.state.method_budgets[str(body["method"])] = budget
        return {"requests": budget.requests, "window_seconds": budget.window_seconds, "method": body["method"]}

    def set_scopes(self, body: dict[str, Any]) -> dict[str, Any]:
        """`{"scopes": ["users:read", ...]}`: the bot token's scopes from now on."""
        scopes = body.get("scopes")
        if not isinstance(scopes, list) or not all(isinstance(scope, str) for scope in scopes):
            raise ValueError("scopes must be a list of scope names")
        with self.state.lock:
            self.state.scopes = list(scopes)
        return {"scopes": scopes}

    def seed(self, body: dict[str, Any]) -> dict[str, Any]:
        """`{"users": [{"id": "U...", "team_id", "name", "profile": {"email", ...}, "is_bot", ...}]}`: users added to
        the workspace (in users.list order)."""
        return self.seed_users(self.state.users, body, bool, "an id")

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

    def add_users(self, users: list[dict[str, Any]]) -> None:
        """Users of the workspace, as users.list answers them."""
        self.app.seed({"users": users})

    def grant_scopes(self, *scopes: str) -> None:
        """The bot token's scopes from now on (e.g. without `users:read.email`)."""
        self.app.set_scopes({"scopes": list(scopes)})

    def limit_method(self, method: str, requests: int | None, window_seconds: float = 60.0) -> None:
        """`method`'s own rate limit (None: none), e.g. users.list's tier 2 of about 20 calls a minute."""
        self.app.set_budget({"method": method, "requests": requests, "window_seconds": window_seconds})
