"""The Eventbrite sandbox: state, the /v3 endpoints memberflow reads, webhook deliveries and test controls.

Sources: Eventbrite's API overview pages (Errors: `{"error", "error_description", "status_code"}`, the common codes
NO_AUTH 401, INVALID_AUTH_HEADER 400, NOT_AUTHORIZED 403, BAD_PAGE 400, NOT_FOUND 404, HIT_RATE_LIMIT 429;
Pagination: `pagination.{object_count, page_number, page_size, page_count, has_more_items, continuation}`, a page
asked by `page=N` or by `continuation`; Authentication: `Authorization: Bearer <token>` or `?token=<token>`), and
real webhook deliveries (headers `X-Eventbrite-Event`, `X-Eventbrite-Delivery`, `User-Agent: Eventbrite Webhooks
(Dilithium)`; captured in guscavalcante-dev/rio2c-private-sdlc SqlScripts/05_SampleData_Test.sql). An invalid token
answers 401 INVALID_AUTH "The OAuth token you provided was invalid." (what the API sends; the errors page says 400)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from memberflow_sandboxes.base import BaseState, SandboxApp, SandboxError, SandboxServer, json_response
from memberflow_sandboxes.traffic import Budget

API_PREFIX = "/v3"
HOUR_SECONDS = 3600.0
PAGE_SIZE = 50
ERROR_CODES = {
    400: "ARGUMENTS_ERROR",
    401: "INVALID_AUTH",
    403: "NOT_AUTHORIZED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    429: "HIT_RATE_LIMIT",
    500: "INTERNAL_ERROR",
    503: "SERVICE_UNAVAILABLE",
}


NOT_AUTHORIZED = "You do not have permission to access the resource you requested."
"""Eventbrite's 403 NOT_AUTHORIZED wording (its help centre's "Understanding errors in the API response")."""
WEBHOOK_USER_AGENT = "Eventbrite Webhooks (Dilithium)"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class EventbriteError(SandboxError):
    def __init__(self, status: int, detail: str, code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(status, detail, headers)
        self.code = code or ERROR_CODES.get(status, "ERROR")

    def response(self) -> Response:
        body = {"status_code": self.status, "error": self.code, "error_description": self.detail}
        response = json_response(body, self.status)
        response.headers.update(self.headers)
        return response


@dataclass
class Delivery:
    action: str
    api_url: str
    status: int | None
    """The answer's status; None when dropped on purpose or unreachable."""
    dropped: bool = False


@dataclass
class EventbriteState(BaseState):
    organization_id: str = "2001"
    user_id: str = "163054428874"
    """The user the OAuth token belongs to (the organizer): `GET /users/me/` (Eventbrite's "Retrieve your User":
    `id`, `name`, `emails`), and webhooks' `config.user_id`."""
    user_email: str = "organizer@example.org"
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    attendees: dict[str, dict[str, Any]] = field(default_factory=dict)
    deliveries: list[Delivery] = field(default_factory=list)
    next_id: int = 300000000
    retry_after: int | None = 1
    """The Retry-After (seconds) a 429 carries, the hourly limit's and injected ones; None: none at all (Eventbrite's
    documentation shows none)."""

    def __post_init__(self) -> None:
        super().__init__()

    # The OAuth token's hourly limit is the shared `budget`, an hour long (Eventbrite's default: 2,000 calls).
    def fresh_budget(self) -> Budget:
        return Budget(None, HOUR_SECONDS)

    @property
    def calls_per_hour(self) -> int | None:
        """The token's hourly limit; None: no limit. Beyond it, 429 HIT_RATE_LIMIT."""
        return self.budget.requests

    @property
    def calls_this_hour(self) -> int:
        """Requests the token made in the current hour, refused ones included."""
        return self.budget.asked

    def limit_hourly(self, calls_per_hour: int | None) -> None:
        """The token's hourly limit from now; the hour's count starts again."""
        with self.lock:
            self.budget = Budget(calls_per_hour, HOUR_SECONDS)

    def take_call(self) -> bool:
        """Count one authenticated request against the hour; whether it is within the limit."""
        with self.lock:
            return self.budget.take()[0]

    def throttle_headers(self) -> dict[str, str]:
        return {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}

    def new_id(self) -> str:
        self.next_id += 1
        return str(self.next_id)

    def reset(self) -> None:
        with self.lock:
            super().reset()
            self.events.clear()
            self.orders.clear()
            self.attendees.clear()
            self.deliveries.clear()
            self.retry_after = 1

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                **super().snapshot(),
                "events": len(self.events),
                "orders": len(self.orders),
                "attendees": len(self.attendees),
                "deliveries": len(self.deliveries),
                "dropped": sum(1 for d in self.deliveries if d.dropped),
                "calls_per_hour": self.calls_per_hour,
                "calls_this_hour": self.calls_this_hour,
                "retry_after": self.retry_after,
            }


ROUTES = Map(
    [
        Rule("/events/<event_id>/", methods=["GET"], endpoint="get_event"),
        Rule("/events/<event_id>/attendees/", methods=["GET"], endpoint="get_attendees"),
        Rule("/events/<event_id>/attendees/<attendee_id>/", methods=["GET"], endpoint="get_event_attendee"),
        Rule("/orders/<order_id>/", methods=["GET"], endpoint="get_order"),
        Rule("/users/me/", methods=["GET"], endpoint="get_me"),
    ],
    strict_slashes=False,
)


class Api:
    def __init__(self, state: EventbriteState, base_url: Any) -> None:
        self.state = state
        self._base_url = base_url

    def _event(self, event_id: str) -> dict[str, Any]:
        event = self.state.events.get(event_id)
        if event is None:
            raise EventbriteError(404, "The event you requested does not exist.")
        return event

    def get_me(self, request: Request, body: Any) -> tuple[int, Any]:
        """The user the OAuth token belongs to (`authenticate` refused any other token with 401)."""
        return 200, {
            "emails": [{"email": self.state.user_email, "verified": True, "primary": True}],
            "id": self.state.user_id,
            "name": "Community Organizer",
            "first_name": "Community",
            "last_name": "Organizer",
            "is_public": False,
            "image_id": None,
        }

    def get_event(self, request: Request, body: Any, event_id: str) -> tuple[int, Any]:
        return 200, dict(self._event(event_id))

    def _own_event(self, event_id: str) -> dict[str, Any]:
        """An event whose attendees and orders the token may read: another organization's is 403 NOT_AUTHORIZED."""
        event = self._event(event_id)
        if str(event.get("organization_id")) != str(self.state.organization_id):
            raise EventbriteError(403, NOT_AUTHORIZED)
        return event

    def get_attendees(self, request: Request, body: Any, event_id: str) -> tuple[int, Any]:
        self._own_event(event_id)
        items = [a for a in self.state.attendees.values() if a["event_id"] == event_id]
        token = request.args.get("continuation")
        start = 0
        if token:
            try:
                start = int(json.loads(base64.urlsafe_b64decode(token.encode()))["offset"])
            except (ValueError, KeyError, TypeError):
                raise EventbriteError(400, "The continuation token is not valid.", "INVALID_CONTINUATION") from None
        elif request.args.get("page") is not None:
            # "You can specify the page number you would like to request using the page parameter"; one that "does
            # not exist or makes no sense (e.g. negative)" is 400 BAD_PAGE (API overview, Pagination and Errors).
            raw = request.args.get("page", "")
            pages = max(1, -(-len(items) // PAGE_SIZE))
            if not raw.isdigit() or not 1 <= int(raw) <= pages:
                raise EventbriteError(400, f"The page number {raw!r} does not exist.", "BAD_PAGE")
            start = (int(raw) - 1) * PAGE_SIZE
        page = items[start : start + PAGE_SIZE]
        more = start + PAGE_SIZE < len(items)
        pagination: dict[str, Any] = {
            "object_count": len(items),
            "page_number": start // PAGE_SIZE + 1,
            "page_size": PAGE_SIZE,
            "page_count": max(1, -(-len(items) // PAGE_SIZE)),
            "has_more_items": more,
        }
        if more:
            pagination["continuation"] = base64.urlsafe_b64encode(
                json.dumps({"offset": start + PAGE_SIZE}).encode()
            ).decode()
        return 200, {"pagination": pagination, "attendees": [self._attendee(a, request) for a in page]}

    def get_event_attendee(self, request: Request, body: Any, event_id: str, attendee_id: str) -> tuple[int, Any]:
        attendee = self.state.attendees.get(attendee_id)
        if attendee is None or attendee["event_id"] != event_id:
            raise EventbriteError(404, "The attendee you requested does not exist.")
        self._own_event(event_id)
        return 200, self._attendee(attendee, request)

    def get_order(self, request: Request, body: Any, order_id: str) -> tuple[int, Any]:
        order = self.state.orders.get(order_id)
        if order is None:
            raise EventbriteError(404, "The order you requested does not exist.")
        self._own_event(order["event_id"])
        answer = dict(order)
        expand = _expansions(request)
        if "attendees" in expand:
            answer["attendees"] = [
                self._attendee(a, request, with_event=False)
                for a in self.state.attendees.values()
                if a["order_id"] == order_id
            ]
        if "event" in expand:
            answer["event"] = dict(self._event(order["event_id"]))
        return 200, answer

    def _attendee(self, attendee: dict[str, Any], request: Request, *, with_event: bool = True) -> dict[str, Any]:
        answer = dict(attendee)
        answer["profile"] = dict(attendee["profile"])
        if with_event and "event" in _expansions(request):
            answer["event"] = dict(self._event(attendee["event_id"]))
        return answer


def _expansions(request: Request) -> set[str]:
    return {part.strip() for part in request.args.get("expand", "").split(",") if part.strip()}


class EventbriteApp(SandboxApp[EventbriteState]):
    api_prefix = API_PREFIX
    routes = ROUTES
    admin_routes = {
        ("POST", "/events"): "admin_create_event",
        ("POST", "/orders"): "admin_place_order",
        ("POST", "/refund"): "admin_refund",
        ("POST", "/delete_order"): "admin_delete_order",
        ("POST", "/check_in"): "admin_check_in",
        ("POST", "/rate_limit"): "admin_rate_limit",
    }
    invalid_json_detail = "The request body is not valid JSON."

    def __init__(self, state: EventbriteState, token: str, max_connections: int | None = None) -> None:
        self.token = token
        self.server: EventbriteSandbox | None = None
        super().__init__(state, Api(state, lambda: self.server.url if self.server else ""), max_connections)

    def error(self, status: int, detail: str) -> SandboxError:
        return EventbriteError(status, detail)

    def injected_error(self, status: int, targeted: bool) -> SandboxError:
        if status == 429:
            return EventbriteError(429, "You have hit the rate limit.", headers=self.state.throttle_headers())
        return super().injected_error(status, targeted)

    def authenticate(self, request: Request) -> None:
        header = request.headers.get("Authorization")
        if header is not None:
            scheme, _, given = header.strip().partition(" ")
            if scheme.lower() != "bearer" or not given.strip():
                raise EventbriteError(400, "The Authorization header is malformed.", "INVALID_AUTH_HEADER")
            given = given.strip()
        else:
            given = request.args.get("token", "")  # the documented alternative: `?token=<private token>`
        if not given:
            raise EventbriteError(401, "An OAuth token is required for this request.", "NO_AUTH")
        if given != self.token:
            raise EventbriteError(401, "The OAuth token you provided was invalid.", "INVALID_AUTH")
        if not self.state.take_call():
            raise EventbriteError(429, "You have hit the rate limit.", headers=self.state.throttle_headers())

    # -- test controls (also reachable as /_sandbox/* with JSON bodies)
    def admin_create_event(self, body: dict[str, Any]) -> dict[str, Any]:
        assert self.server is not None
        return self.server.create_event(**body)

    def admin_place_order(self, body: dict[str, Any]) -> dict[str, Any]:
        assert self.server is not None
        return self.server.place_order(**body)

    def admin_refund(self, body: dict[str, Any]) -> dict[str, Any]:
        assert self.server is not None
        return self.server.refund(**body)

    def admin_delete_order(self, body: dict[str, Any]) -> dict[str, Any]:
        assert self.server is not None
        return self.server.delete_order(**body)

    def admin_check_in(self, body: dict[str, Any]) -> dict[str, Any]:
        assert self.server is not None
        return self.server.check_in(**body)

    def admin_rate_limit(self, body: dict[str, Any]) -> dict[str, Any]:
        assert self.server is not None
        return self.server.set_rate_limit(**body)


class EventbriteSandbox(SandboxServer):
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str = "sandbox-eventbrite-token",
        organization_id: str = "2001",
        user_id: str = "163054428874",
        max_connections: int | None = None,
    ) -> None:
        self.token = token
        self.state = EventbriteState(organization_id=organization_id, user_id=user_id)
        self.user_id = user_id
        self.webhook_url: str | None = None
        self.webhook_id = "4181001"
        app = EventbriteApp(self.state, token, max_connections)
        app.server = self
        super().__init__(app, host, port, name="eventbrite-sandbox")

    # -- the token's rate limit
    def set_rate_limit(self, calls_per_hour: int | None = None, retry_after: int | None = 1) -> dict[str, Any]:
        """The token's hourly limit from now (None: none; the hour's count starts again) and the Retry-After of every
        429 (None: no Retry-After, as Eventbrite documents none). Also `POST /_sandbox/rate_limit`."""
        for name, value in (("calls_per_hour", calls_per_hour), ("retry_after", retry_after)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise ValueError(f"{name} must be a whole number of at least 0, or null")
        with self.state.lock:
            self.state.limit_hourly(calls_per_hour)
            self.state.retry_after = retry_after
        return {"calls_per_hour": calls_per_hour, "retry_after": retry_after}

    @property
    def calls_this_hour(self) -> int:
        """Requests the token made this hour (refused ones too); per endpoint: `state.calls`."""
        with self.state.lock:
            return self.state.calls_this_hour

    # -- the organizer's side
    def create_event(
        self,
        event_id: str | None = None,
        name: str = "Community webinar",
        starts_in_minutes: float = 60,
        duration_minutes: float = 60,
        organization_id: str | None = None,
    ) -> dict[str, Any]:
        now = datetime.now(UTC)
        with self.state.lock:
            event_id = event_id or self.state.new_id()
            start = now + timedelta(minutes=starts_in_minutes)
            event = {
                "id": event_id,
                "name": {"text": name, "html": name},
                "organization_id": organization_id or self.state.organization_id,
                "start": {"timezone": "UTC", "utc": _iso(start), "local": _iso(start)[:-1]},
                "end": {
                    "timezone": "UTC",
                    "utc": _iso(start + timedelta(minutes=duration_minutes)),
                    "local": _iso(start + timedelta(minutes=duration_minutes))[:-1],
                },
                "status": "live",
                "online_event": True,
                "created": _iso(now),
                "changed": _iso(now),
            }
            self.state.events[event_id] = event
            return dict(event)

    def end_event(self, event_id: str) -> None:
        """The event is over now (its end moves to a moment ago)."""
        with self.state.lock:
            ended = datetime.now(UTC) - timedelta(seconds=1)
            self.state.events[event_id]["end"]["utc"] = _iso(ended)

    def place_order(self, event_id: str, attendees: list[dict[str, str]], drop_webhook: bool = False) -> dict[str, Any]:
        """A buyer orders tickets for `attendees` ({"email", "first_name", "last_name"}); Eventbrite then sends
        `order.placed` (unless `drop_webhook`: the delivery is lost)."""
        now = _iso(datetime.now(UTC))
        with self.state.lock:
            if event_id not in self.state.events:
                raise EventbriteError(404, "The event you requested does not exist.")
            order_id = self.state.new_id()
            first = attendees[0] if attendees else {}
            self.state.orders[order_id] = {
                "id": order_id,
                "event_id": event_id,
                "status": "placed",
                "email": first.get("email", ""),
                "name": f"{first.get('first_name', '')} {first.get('last_name', '')}".strip(),
                "created": now,
                "changed": now,
            }
            ids = []
            for person in attendees:
                attendee_id = self.state.new_id()
                ids.append(attendee_id)
                self.state.attendees[attendee_id] = {
                    "id": attendee_id,
                    "order_id": order_id,
                    "event_id": event_id,
                    "ticket_class_name": "General Admission",
                    "profile": {
                        "email": person["email"],
                        "first_name": person.get("first_name", ""),
                        "last_name": person.get("last_name", ""),
                        "name": f"{person.get('first_name', '')} {person.get('last_name', '')}".strip(),
                    },
                    "status": "Attending",
                    "checked_in": False,
                    "cancelled": False,
                    "refunded": False,
                    "created": now,
                    "changed": now,
                }
        self._send("order.placed", f"{self.url}/orders/{order_id}/", drop=drop_webhook)
        return {"order_id": order_id, "attendee_ids": ids}

    def refund(
        self, order_id: str, drop_webhook: bool = False, attendee_ids: list[str] | None = None
    ) -> dict[str, Any]:
        """The order is refunded: all its tickets, or only `attendee_ids` (a partial refund: the order itself stays
        placed). Eventbrite then sends `order.refunded`."""
        now = _iso(datetime.now(UTC))
        with self.state.lock:
            order = self.state.orders.get(order_id)
            if order is None:
                raise EventbriteError(404, "The order you requested does not exist.")
            tickets = [a for a in self.state.attendees.values() if a["order_id"] == order_id]
            for attendee in tickets:
                if attendee_ids is None or attendee["id"] in attendee_ids:
                    attendee.update(status="Not Attending", cancelled=True, refunded=True, changed=now)
            whole = all(attendee["refunded"] for attendee in tickets)
            order.update(status="refunded" if whole else "placed", changed=now)
        self._send("order.refunded", f"{self.url}/orders/{order_id}/", drop=drop_webhook)
        return {"order_id": order_id}

    def delete_order(self, order_id: str, action: str = "order.updated", drop_webhook: bool = False) -> dict[str, Any]:
        """The organizer deletes the order (a test or fraudulent one): it and its attendees are gone, so fetching
        either answers 404 NOT_FOUND. A webhook about it (`action`) may still arrive: sent here."""
        with self.state.lock:
            if self.state.orders.pop(order_id, None) is None:
                raise EventbriteError(404, "The order you requested does not exist.")
            for attendee_id in [a for a, item in self.state.attendees.items() if item["order_id"] == order_id]:
                del self.state.attendees[attendee_id]
        self._send(action, f"{self.url}/orders/{order_id}/", drop=drop_webhook)
        return {"order_id": order_id}

    def check_in(self, attendee_id: str, drop_webhook: bool = False) -> dict[str, Any]:
        with self.state.lock:
            attendee = self.state.attendees.get(attendee_id)
            if attendee is None:
                raise EventbriteError(404, "The attendee you requested does not exist.")
            attendee.update(status="Checked In", checked_in=True, changed=_iso(datetime.now(UTC)))
            event_id = attendee["event_id"]
        self._send("attendee.checked_in", f"{self.url}/events/{event_id}/attendees/{attendee_id}/", drop=drop_webhook)
        return {"attendee_id": attendee_id}

    def attendees_of(self, event_id: str) -> list[dict[str, Any]]:
        with self.state.lock:
            return [json.loads(json.dumps(a)) for a in self.state.attendees.values() if a["event_id"] == event_id]

    # -- webhooks
    def set_webhook(self, endpoint_url: str | None) -> None:
        """Where Eventbrite posts its webhooks (the organization's webhook, all actions)."""
        self.webhook_url = endpoint_url

    def _send(self, action: str, api_url: str, *, drop: bool) -> None:
        if self.webhook_url is None:
            return
        if drop:
            with self.state.lock:
                self.state.deliveries.append(Delivery(action, api_url, None, dropped=True))
            return
        import requests

        # Body and headers as real deliveries carry them (rio2c-private-sdlc SqlScripts/05_SampleData_Test.sql):
        # `endpoint_url` is the webhook's URL as registered, `X-Eventbrite-Delivery` the webhook's id (the same on
        # every delivery: no per-delivery id), `X-Eventbrite-Event` the action; no signature.
        body = {
            "config": {
                "action": action,
                "user_id": self.user_id,
                "endpoint_url": self.webhook_url,
                "webhook_id": self.webhook_id,
            },
            "api_url": api_url,
        }
        status: int | None
        try:
            status = requests.post(
                self.webhook_url,
                data=json.dumps(body),
                headers={
                    "Accept": "text/plain",
                    "Content-Type": "application/json",
                    "User-Agent": WEBHOOK_USER_AGENT,
                    "X-Eventbrite-Delivery": self.webhook_id,
                    "X-Eventbrite-Event": action,
                },
                timeout=10,
            ).status_code
        except requests.RequestException:
            status = None
        with self.state.lock:
            self.state.deliveries.append(Delivery(action, api_url, status))
