"""The Zendesk sandbox on the shared plumbing: auth, the request budget, error wording, webhooks, the server."""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import threading
from datetime import UTC, datetime
from typing import Any

import requests
from werkzeug.wrappers import Request, Response

from memberflow_sandboxes.base import SandboxApp, SandboxError, SandboxServer, serve_until_signalled
from memberflow_sandboxes.zendesk.api import API_ROUTES, ZendeskApi
from memberflow_sandboxes.zendesk.errors import ZendeskError, invalid_endpoint, not_found
from memberflow_sandboxes.zendesk.state import STATUSES, ZendeskState

API_PREFIX = "/api/v2"
WEBHOOK_TIMEOUT_SECONDS = 10
ADVERTISED_RATE_LIMIT = 700
"""Without a budget (`set_budget(None)`, the default) the sandbox refuses nothing but still sends `X-Rate-Limit` and
`X-Rate-Limit-Remaining` on every answer, as Zendesk does (the reference, Zendesk: "Headers `X-Rate-Limit`,
`X-Rate-Limit-Remaining`"): an Enterprise account's 700 a minute, with 699 left. zenpy's `proactive_ratelimit` reads
the remaining count of every answer and, missing, takes it as 0 and sleeps before each call
(`zenpy/lib/api.py` `_ratelimit`, `_update_callsafety`)."""


class ZendeskApp(SandboxApp[ZendeskState]):
    api_prefix = API_PREFIX
    routes = API_ROUTES
    invalid_json_detail = "Unprocessable Entity"
    admin_routes = {
        ("POST", "/status"): "set_status",
        ("POST", "/budget"): "set_budget",
        ("POST", "/webhook"): "set_webhook",
        ("POST", "/jobs/expire"): "expire_jobs",
        ("POST", "/search_lag"): "set_search_lag",
    }

    def __init__(self, state: ZendeskState, email: str, api_token: str, max_connections: int | None = None) -> None:
        super().__init__(state, ZendeskApi(state, self._status_changed, email), max_connections)
        self.email = email
        self.api_token = api_token
        self.webhook_url = ""
        self.webhook_secret = ""
        self._senders: list[threading.Thread] = []

    def error(self, status: int, detail: str) -> SandboxError:
        if status == 404:
            return invalid_endpoint()  # the plumbing's 404 is a path with no endpoint; handlers say RecordNotFound
        names = {400: "InvalidEndpoint", 401: "Couldn't authenticate you", 405: "InvalidEndpoint"}
        return ZendeskError(status, names.get(status, "InternalError" if status >= 500 else "Error"), detail)

    def injected_error(self, status: int, targeted: bool) -> SandboxError:
        if status == 429:
            return ZendeskError(429, "TooManyRequests", "Rate limit exceeded", headers={"Retry-After": "1"})
        return super().injected_error(status, targeted)

    def over_limit_response(self) -> Response:
        busy = ZendeskError(429, "TooManyRequests", "Too many concurrent requests", headers={"Retry-After": "1"})
        return busy.response()

    def authenticate(self, request: Request) -> None:
        auth = request.authorization
        if (
            auth is None
            or auth.type != "basic"
            or (auth.username, auth.password)
            != (
                f"{self.email}/token",
                self.api_token,
            )
        ):
            raise ZendeskError(401, "Couldn't authenticate you")
        with self.state.lock:
            allowed, remaining, wait = self.state.budget.take()
            limit = self.state.budget.requests
        request.environ["sandbox.rate"] = (limit, remaining)
        if not allowed:
            raise ZendeskError(
                429,
                "TooManyRequests",
                f"Rate limit of {limit} requests exceeded",
                headers={"Retry-After": str(wait), "X-Rate-Limit": str(limit), "X-Rate-Limit-Remaining": "0"},
            )

    def respond(self, request: Request, status: int, payload: Any) -> Response:
        # Zendesk's records name themselves by absolute URL (`"url": "https://{subdomain}.zendesk.com/api/v2/..."`):
        # here, the host the request reached.
        response = super().respond(request, status, _absolute_urls(payload, request.host_url.rstrip("/")))
        lookup = request.environ.get("sandbox.idempotency")
        if lookup:
            response.headers["x-idempotency-lookup"] = lookup
        return response

    def _answer(self, request: Request) -> Response:
        """Every authenticated answer, errors too, carries the rate-limit headers (see ADVERTISED_RATE_LIMIT)."""
        response = super()._answer(request)
        if "sandbox.rate" in request.environ:
            limit, remaining = request.environ["sandbox.rate"]
            if limit is None:
                limit, remaining = ADVERTISED_RATE_LIMIT, ADVERTISED_RATE_LIMIT - 1
            response.headers.setdefault("X-Rate-Limit", str(limit))
            response.headers.setdefault("X-Rate-Limit-Remaining", str(remaining))
        return response

    def reset(self) -> None:
        super().reset()
        self.wait_for_webhooks()

    # ---------------------------------------------------------------- admin

    def set_status(self, body: dict[str, Any]) -> dict[str, Any]:
        """`POST /_sandbox/status {"ticket_id", "status", "public_reply"?}`: an agent moves a ticket (and answers
        the requester publicly, with `public_reply`)."""
        status = body.get("status")
        if status not in STATUSES:
            raise ZendeskError(400, "InvalidValue", f"status must be one of {', '.join(STATUSES)}")
        with self.state.lock:
            ticket = self.state.tickets.get(int(body.get("ticket_id", 0)))
            if ticket is None:
                raise not_found()
            previous = ticket["status"]
            if body.get("public_reply"):
                self.state.comments[ticket["id"]].append(
                    {"id": self.state.next_id(), "body": str(body["public_reply"]), "public": True, "author_id": 1}
                )
            ticket["status"] = status
            if status != previous:
                self._status_changed(dict(ticket), previous)
            return dict(ticket)

    def expire_jobs(self, body: dict[str, Any]) -> dict[str, Any]:
        """`POST /_sandbox/jobs/expire {"ids"?: [...]}`: a day passes for these job statuses (all without `ids`):
        Zendesk no longer has them and answers 404 `RecordNotFound`."""
        ids = body.get("ids")
        if ids is not None and (not isinstance(ids, list) or not all(isinstance(i, str) for i in ids)):
            raise ValueError("ids must be a list of job status ids")
        with self.state.lock:
            return {"expired": self.state.age_jobs(ids)}

    def set_search_lag(self, body: dict[str, Any]) -> dict[str, Any]:
        """`POST /_sandbox/search_lag {"seconds": 120}`: users created in the last `seconds` are not yet in search
        results, as with Zendesk's index (minutes behind); 0 (the default, and after a reset): found at once."""
        seconds = body.get("seconds", 0)
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
            raise ValueError("seconds must be a number, 0 or more")
        with self.state.lock:
            self.state.search_lag_seconds = float(seconds)
        return {"seconds": self.state.search_lag_seconds}

    def set_webhook(self, body: dict[str, Any]) -> dict[str, Any]:
        """`POST /_sandbox/webhook {"url", "secret"}`: where status changes are sent, signed with `secret`."""
        self.webhook_url, self.webhook_secret = str(body.get("url", "")), str(body.get("secret", ""))
        return {"url": self.webhook_url}

    # ---------------------------------------------------------------- webhooks

    def _status_changed(self, ticket: dict[str, Any], previous: str) -> None:
        if not self.webhook_url:
            return
        event = {
            "type": "zen:event-type:ticket.status_changed",
            "account_id": 1,
            "id": _uuid(),
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "zendesk_event_version": "2022-11-06",
            "subject": f"zen:ticket:{ticket['id']}",
            "detail": {
                "id": str(ticket["id"]),
                "status": ticket["status"].upper(),
                "external_id": ticket.get("external_id") or "",
                "requester_id": str(ticket.get("requester_id") or ""),
                "priority": (ticket.get("priority") or "").upper(),
                "subject": ticket.get("subject"),
                "tags": ticket.get("tags") or [],
                "created_at": ticket["created_at"],
                "updated_at": ticket["updated_at"],
            },
            "event": {"current": ticket["status"].upper(), "previous": previous.upper()},
        }
        sender = threading.Thread(target=self._send, args=(event,), name="zendesk-webhook", daemon=True)
        self._senders.append(sender)
        sender.start()

    def _send(self, event: dict[str, Any]) -> None:
        body = json.dumps(event).encode()
        timestamp = event["time"]
        signature = base64.b64encode(
            hmac.new(self.webhook_secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
        ).decode()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Zendesk Webhook",
            "X-Zendesk-Webhook-Id": "01SANDBOXWEBHOOK",
            "X-Zendesk-Webhook-Signature": signature,
            "X-Zendesk-Webhook-Signature-Timestamp": timestamp,
        }
        try:
            answer = requests.post(self.webhook_url, data=body, headers=headers, timeout=WEBHOOK_TIMEOUT_SECONDS)
            status = answer.status_code
        except requests.RequestException as error:
            status = 0
            print(f"zendesk sandbox: webhook not delivered: {error}")
        with self.state.lock:
            self.state.webhooks.append(
                {
                    "id": event["id"],
                    "ticket_id": int(event["detail"]["id"]),
                    "status": status,
                    "ticket_status": event["event"]["current"].lower(),
                }
            )

    def wait_for_webhooks(self, timeout: float = 15) -> None:
        for sender in list(self._senders):
            sender.join(timeout)
        self._senders = [s for s in self._senders if s.is_alive()]


def _absolute_urls(payload: Any, root: str) -> Any:
    """A copy of `payload` whose `url` fields (stored as `/api/v2/...`) are absolute under `root`."""
    if isinstance(payload, dict):
        return {
            key: root + value
            if key == "url" and isinstance(value, str) and value.startswith(API_PREFIX + "/")
            else _absolute_urls(value, root)
            for key, value in payload.items()
        }
    if isinstance(payload, list):
        return [_absolute_urls(item, root) for item in payload]
    return payload


def _uuid() -> str:
    import uuid

    return str(uuid.uuid4())


class ZendeskSandbox(SandboxServer):
    """The sandbox server. Point zenpy at it with ZENPY_FORCE_SCHEME=http and ZENPY_FORCE_NETLOC=host:port."""

    app: ZendeskApp

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        email: str = "agent@example.com",
        api_token: str = "sandbox-zendesk-token",
        max_connections: int | None = 50,
    ) -> None:
        self.email = email
        self.api_token = api_token
        self.state = ZendeskState()
        super().__init__(ZendeskApp(self.state, email, api_token, max_connections), host, port, name="zendesk-sandbox")

    @property
    def netloc(self) -> str:
        return self.base_url.split("://", 1)[1]

    def set_search_lag(self, seconds: float) -> None:
        """Users created in the last `seconds` are not yet found by search (Zendesk's index lags minutes)."""
        self.app.set_search_lag({"seconds": seconds})

    def send_webhooks_to(self, url: str, secret: str) -> None:
        self.app.set_webhook({"url": url, "secret": secret})

    def set_status(self, ticket_id: int, status: str, public_reply: str | None = None) -> dict[str, Any]:
        return self.app.set_status({"ticket_id": ticket_id, "status": status, "public_reply": public_reply})

    def expire_jobs(self, *job_ids: str) -> int:
        """A day passes for these job statuses (all when none is named): they answer 404 `RecordNotFound`."""
        return int(self.app.expire_jobs({"ids": list(job_ids) if job_ids else None})["expired"])

    def calls(self) -> int:
        """API requests answered (any status)."""
        with self.state.lock:
            return sum(self.state.request_counts.values())

    def zenpy(self) -> Any:
        """The official client, pointed here by configuration only (the environment variables zenpy reads)."""
        import os

        from zenpy import Zenpy

        os.environ["ZENPY_FORCE_SCHEME"] = "http"
        os.environ["ZENPY_FORCE_NETLOC"] = self.netloc
        return Zenpy(subdomain="sandbox", email=self.email, token=self.api_token, disable_cache=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the Zendesk Support API sandbox.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8030)
    parser.add_argument("--email", default="agent@example.com")
    parser.add_argument("--api-token", default="sandbox-zendesk-token")
    args = parser.parse_args(argv)
    serve_until_signalled(ZendeskSandbox(args.host, args.port, args.email, args.api_token))
