"""The /api/v2 endpoints memberflow uses; each handler returns (status, JSON payload or None)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request

from memberflow_sandboxes.base import Reply
from memberflow_sandboxes.zendesk.errors import ZendeskError, invalid, invalid_endpoint, not_found  # noqa: F401 (re-exported)
from memberflow_sandboxes.zendesk.pages import (
    SEARCH_RESULTS_MAX,
    matches,
    offset_page,
    page,
    parse_query,
)
from memberflow_sandboxes.zendesk.state import STATUSES, ZendeskState, now_iso

MAX_BULK = 100
API_USER_ID = 1
"""The API user (the agent whose email and token the sandbox accepts): the author of the replies `set_status` adds."""

API_ROUTES = Map(
    [
        Rule("/tickets.json", methods=["POST"], endpoint="create_ticket"),
        Rule("/tickets.json", methods=["GET"], endpoint="list_tickets"),
        Rule("/tickets/create_many.json", methods=["POST"], endpoint="create_many"),
        Rule("/tickets/<int:ticket_id>.json", methods=["GET"], endpoint="show_ticket"),
        Rule("/tickets/show_many.json", methods=["GET"], endpoint="show_many_tickets"),
        Rule("/tickets/<int:ticket_id>.json", methods=["PUT"], endpoint="update_ticket"),
        Rule("/tickets/<int:ticket_id>/comments.json", methods=["GET"], endpoint="list_comments"),
        Rule("/job_statuses/<job_id>.json", methods=["GET"], endpoint="show_job"),
        Rule("/users/create_or_update.json", methods=["POST"], endpoint="create_or_update_user"),
        Rule("/users.json", methods=["GET"], endpoint="list_users"),
        Rule("/users/search.json", methods=["GET"], endpoint="search_users"),
        Rule("/users/show_many.json", methods=["GET"], endpoint="show_many_users"),
        Rule("/users/me.json", methods=["GET"], endpoint="show_me"),
        Rule("/users/<int:user_id>.json", methods=["GET"], endpoint="show_user"),
        Rule("/users/<int:user_id>.json", methods=["DELETE"], endpoint="delete_user"),
        Rule("/users/<int:user_id>/tickets/requested.json", methods=["GET"], endpoint="requested_tickets"),
        Rule("/deleted_users.json", methods=["GET"], endpoint="list_deleted_users"),
        Rule("/deleted_users/<int:user_id>.json", methods=["DELETE"], endpoint="permanently_delete_user"),
        Rule("/search.json", methods=["GET"], endpoint="search"),
    ],
    strict_slashes=False,
)


class ZendeskApi:
    def __init__(
        self,
        state: ZendeskState,
        status_changed: Callable[[dict[str, Any], str], None],
        api_user_email: str = "agent@example.com",
    ) -> None:
        self.state = state
        self._status_changed = status_changed
        self.api_user_email = api_user_email

    def _object(self, body: Any, name: str) -> dict[str, Any]:
        value = body.get(name) if isinstance(body, dict) else None
        if not isinstance(value, dict):
            raise ZendeskError(400, "InvalidEndpoint", f"The request body needs a '{name}' object")
        return value

    # ---------------------------------------------------------------- tickets

    def create_ticket(self, request: Request, body: Any) -> Reply:
        self.state.count("tickets.create")
        fields = self._object(body, "ticket")
        key = request.headers.get("Idempotency-Key")
        if key:
            if len(key) > 255:
                raise ZendeskError(400, "InvalidIdempotencyKey", "Idempotency-Key is at most 255 characters")
            earlier = self.state.replay(key, body)
            if earlier == "conflict":
                raise ZendeskError(
                    400, "IdempotentRequestError", "The same Idempotency-Key was used with a different request body"
                )
            if earlier is not None:
                request.environ["sandbox.idempotency"] = "hit"
                return earlier  # type: ignore[return-value]
            request.environ["sandbox.idempotency"] = "miss"
        self._check_ticket(fields)
        ticket = self.state.create_ticket(fields)
        payload = {"ticket": dict(ticket), "audit": {"id": self.state.next_id(), "ticket_id": ticket["id"]}}
        if key:
            self.state.remember_key(key, body, 201, payload)
        return 201, payload

    def _check_ticket(self, fields: dict[str, Any]) -> None:
        comment = fields.get("comment") or {}
        if not (comment.get("body") or fields.get("description")):
            raise invalid("description", "Description: cannot be blank")
        if fields.get("priority") not in (None, "urgent", "high", "normal", "low"):
            raise invalid("priority", "Priority: is not valid")
        if fields.get("requester_id") is None and not isinstance(fields.get("requester"), dict):
            raise invalid("requester", "Requester: cannot be blank")
        followup = fields.get("via_followup_source_id")
        if followup is not None:
            source = self.state.tickets.get(int(followup))
            if source is None or source["status"] not in ("solved", "closed"):
                raise invalid("via_followup_source_id", "Follow-ups can only be created from solved or closed tickets")

    def create_many(self, request: Request, body: Any) -> Reply:
        self.state.count("tickets.create_many")
        tickets = body.get("tickets") if isinstance(body, dict) else None
        if not isinstance(tickets, list) or not tickets:
            raise ZendeskError(400, "InvalidEndpoint", "The request body needs a 'tickets' array")
        if len(tickets) > MAX_BULK:
            raise ZendeskError(400, "TooManyValues", f"You can only create up to {MAX_BULK} tickets at once")
        results = []
        for index, fields in enumerate(tickets):
            try:
                self._check_ticket(fields)
            except ZendeskError as error:
                results.append({"index": index, "error": error.error, "details": str(error.details)})
                continue
            results.append({"index": index, "id": self.state.create_ticket(fields)["id"]})
        job_id = uuid.uuid4().hex
        job = {
            "id": job_id,
            "url": f"/api/v2/job_statuses/{job_id}.json",
            "status": "completed",
            "total": len(tickets),
            "progress": len(tickets),
            "message": "Completed at " + now_iso(),
            "results": results,
        }
        self.state.add_job(job)
        return 200, {"job_status": {**job, "status": "queued", "progress": None, "results": None}}

    def show_job(self, request: Request, body: Any, job_id: str) -> Reply:
        self.state.count("job_statuses.show")
        job = self.state.job(job_id)
        if job is None:
            raise not_found()  # an unknown id, or one older than a day: Zendesk keeps job statuses one day
        return 200, {"job_status": job}

    def list_tickets(self, request: Request, body: Any) -> Reply:
        self.state.count("tickets.list")
        external_id = request.args.get("external_id")
        tickets = [t for t in self.state.tickets.values() if external_id is None or t["external_id"] == external_id]
        return 200, page(request, "tickets", tickets)

    def show_ticket(self, request: Request, body: Any, ticket_id: int) -> Reply:
        self.state.count("tickets.show")
        ticket = self.state.tickets.get(ticket_id)
        if ticket is None:
            raise not_found()
        return 200, {"ticket": ticket}

    def show_many_tickets(self, request: Request, body: Any) -> Reply:
        """`GET /tickets/show_many.json?ids=1,2`: the tickets of those ids that exist (zenpy's `tickets(ids=[...])`),
        as Zendesk's "Show Multiple Tickets" documents it (developer.zendesk.com/api-reference/ticketing/tickets/
        tickets: a comma-separated `ids` list, up to 100 tickets, answered `{"tickets": [...]}`). `next_page`,
        `previous_page` and `count` are what Zendesk's offset-paged lists add; the page's example does not show them."""
        self.state.count("tickets.show_many")
        ids = [int(i) for i in (request.args.get("ids") or "").split(",") if i.strip().isdigit()]
        tickets = [self.state.tickets[i] for i in dict.fromkeys(ids) if i in self.state.tickets]
        return 200, {"tickets": tickets, "next_page": None, "previous_page": None, "count": len(tickets)}

    def update_ticket(self, request: Request, body: Any, ticket_id: int) -> Reply:
        self.state.count("tickets.update")
        ticket = self.state.tickets.get(ticket_id)
        if ticket is None:
            raise not_found()
        fields = self._object(body, "ticket")
        if ticket["status"] == "closed":
            raise invalid("status", "Status: closed prevents ticket update")
        status = fields.get("status")
        if status is not None and status not in STATUSES:
            raise invalid("status", "Status: is not valid")
        comment = fields.get("comment")
        if isinstance(comment, dict) and comment.get("body"):
            self.state.comments[ticket_id].append(
                {
                    "id": self.state.next_id(),
                    "body": comment["body"],
                    "public": bool(comment.get("public", True)),
                    "author_id": comment.get("author_id"),
                }
            )
        for name in ("priority", "tags", "group_id", "subject"):
            if name in fields:
                ticket[name] = fields[name]
        previous = ticket["status"]
        if status is not None:
            ticket["status"] = status
        ticket["updated_at"] = now_iso()
        if status is not None and status != previous:
            self._status_changed(dict(ticket), previous)
        return 200, {"ticket": ticket, "audit": {"id": self.state.next_id(), "ticket_id": ticket_id}}

    def list_comments(self, request: Request, body: Any, ticket_id: int) -> Reply:
        self.state.count("tickets.comments")
        if ticket_id not in self.state.tickets:
            raise not_found()
        return 200, page(request, "comments", self.state.comments[ticket_id])

    # ---------------------------------------------------------------- users

    def create_or_update_user(self, request: Request, body: Any) -> Reply:
        self.state.count("users.create_or_update")
        fields = self._object(body, "user")
        if not fields.get("email") and not fields.get("external_id"):
            raise invalid("email", "Email: a user needs an email or an external id to be matched")
        email = fields.get("email")
        if email and not _EMAIL.fullmatch(str(email)):
            # Zendesk's validation error for an address it cannot use: 422 RecordInvalid naming the field
            # (developer.zendesk.com "Users": "Email: ... is not properly formatted", error "InvalidFormat").
            raise invalid("email", f"Email: {email} is not properly formatted", "InvalidFormat")
        user, created = self.state.upsert_user(fields)
        return (201 if created else 200), {"user": user}

    def show_user(self, request: Request, body: Any, user_id: int) -> Reply:
        self.state.count("users.show")
        user = self.state.users.get(user_id)
        if user is None:
            raise not_found()
        return 200, {"user": user}

    def show_me(self, request: Request, body: Any) -> Reply:
        """`GET /api/v2/users/me.json`: the user the request's credentials belong to. Zendesk answers it for any
        agent; the sandbox has one, the API user (`authenticate` refused any other credentials with 401)."""
        self.state.count("users.me")
        return 200, {"user": api_user(self.api_user_email)}

    def list_users(self, request: Request, body: Any) -> Reply:
        """`GET /api/v2/users.json` (zenpy `users()`): every user, cursor or offset pages, `role` to filter."""
        self.state.count("users.list")
        role = request.args.get("role")
        users = [u for u in self.state.users.values() if role is None or u.get("role") == role]
        return 200, page(request, "users", users)

    def search_users(self, request: Request, body: Any) -> Reply:
        """`GET /api/v2/users/search.json` (zenpy `users.search(query=... | external_id=...)`): `external_id` is an
        exact lookup; `query` a name or address, whole or in part, or `field:value` terms, answered from the search
        index (so it lags like `search.json`). Offset pages only: `users/search` has no cursor pagination (Zendesk's
        community, "Cannot use Search API with cursor-based Pagination": `page must be an integer from
        api/v2/users/search`)."""
        self.state.count("users.search")
        external_id = request.args.get("external_id")
        query = request.args.get("query")
        if not external_id and not query:
            raise ZendeskError(400, "InvalidEndpoint", "query or external_id is required")
        users = list(self.state.users.values())
        if external_id:
            found = [u for u in users if u.get("external_id") == external_id]
        else:
            terms, words = parse_query(query or "")
            found = [
                u
                for u in users
                if self.state.indexed(u) and matches(u, terms, words, _USER_TEXT, _USER_SPECIAL, substring=True)
            ]
        return 200, offset_page(request, "users", found)

    def show_many_users(self, request: Request, body: Any) -> Reply:
        self.state.count("users.show_many")
        wanted = set(filter(None, (request.args.get("external_ids") or "").split(",")))
        ids = {int(i) for i in (request.args.get("ids") or "").split(",") if i.isdigit()}
        users = [u for u in self.state.users.values() if u["external_id"] in wanted or u["id"] in ids]
        return 200, {"users": users, "next_page": None, "count": len(users)}

    def requested_tickets(self, request: Request, body: Any, user_id: int) -> Reply:
        self.state.count("users.requested")
        if user_id not in self.state.users:
            raise not_found()
        tickets = [t for t in self.state.tickets.values() if t["requester_id"] == user_id]
        return 200, page(request, "tickets", tickets)

    def delete_user(self, request: Request, body: Any, user_id: int) -> Reply:
        self.state.count("users.delete")
        user = self.state.users.get(user_id)
        if user is None:
            raise not_found()
        if any(t["requester_id"] == user_id and t["status"] != "closed" for t in self.state.tickets.values()):
            raise invalid("base", "The user is the requester of tickets that are not closed")
        del self.state.users[user_id]
        user = {**user, "active": False}
        self.state.deleted_users[user_id] = user
        return 200, {"user": user}

    def list_deleted_users(self, request: Request, body: Any) -> Reply:
        self.state.count("deleted_users.list")
        return 200, page(request, "deleted_users", list(self.state.deleted_users.values()))

    def permanently_delete_user(self, request: Request, body: Any, user_id: int) -> Reply:
        self.state.count("deleted_users.delete")
        user = self.state.deleted_users.pop(user_id, None)
        if user is None:
            raise not_found()  # only a soft-deleted user can be deleted for good
        for ticket in self.state.tickets.values():
            if ticket["requester_id"] == user_id:
                ticket["requester_id"] = None
        return 200, {"deleted_user": {"id": user_id, "name": "Permanently Deleted User", "active": False}}

    def search(self, request: Request, body: Any) -> Reply:
        """`GET /api/v2/search.json?query=...` (zenpy `search(...)`): tickets and users matching every `field:value`
        term (`type:ticket|user`, any field of the record, `tags`/`tag`, a ticket's `requester` by id or address) and
        every word (in a ticket's subject and description, a user's name and address). Like Zendesk's index it lags:
        a ticket or user created in the last `search_lag_seconds` (`POST /_sandbox/search_lag`) is not found yet.
        Offset pages of `per_page` (at most 100), up to 1,000 results in all (pages.py)."""
        self.state.count("search")
        terms, words = parse_query(request.args.get("query") or "")
        kinds = {value.lower() for name, value in terms if name == "type"}
        wanted = request.args.get("filter[type]")
        if wanted:
            kinds = kinds & {wanted} if kinds else {wanted}
        results: list[dict[str, Any]] = []
        if not kinds or "ticket" in kinds:
            special = {**_TICKET_SPECIAL, "requester": self._is_requester}
            results += [
                {**t, "result_type": "ticket"}
                for t in self.state.tickets.values()
                if self.state.ticket_indexed(t) and matches(t, terms, words, _TICKET_TEXT, special)
            ]
        if not kinds or "user" in kinds:
            results += [
                {**u, "result_type": "user"}
                for u in self.state.users.values()
                if self.state.indexed(u) and matches(u, terms, words, _USER_TEXT, _USER_SPECIAL)
            ]
        answer = offset_page(request, "results", results, cap=SEARCH_RESULTS_MAX)
        return 200, {**answer, "facets": None}

    def _is_requester(self, ticket: dict[str, Any], value: str) -> bool:
        requester = self.state.users.get(int(ticket.get("requester_id") or 0))
        if value.isdigit():
            return ticket.get("requester_id") == int(value)
        return requester is not None and (requester.get("email") or "").lower() == value.lower()


_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_TICKET_TEXT = ("subject", "description")
_USER_TEXT = ("name", "email")


def _has_tag(record: dict[str, Any], value: str) -> bool:
    return value.lower() in {str(tag).lower() for tag in record.get("tags") or []}


_TICKET_SPECIAL = {"tags": _has_tag, "tag": _has_tag}
_USER_SPECIAL = {"tags": _has_tag, "tag": _has_tag}


def api_user(email: str) -> dict[str, Any]:
    """The API user as Zendesk shows an agent (`GET /api/v2/users/me.json`, `{"user": {...}}`)."""
    return {
        "id": API_USER_ID,
        "url": f"/api/v2/users/{API_USER_ID}.json",
        "name": "memberflow",
        "email": email,
        "created_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-01-01T00:00:00Z",
        "time_zone": "UTC",
        "iana_time_zone": "Etc/UTC",
        "locale": "en-US",
        "locale_id": 1,
        "organization_id": None,
        "role": "agent",
        "role_type": None,
        "custom_role_id": None,
        "moderator": False,
        "ticket_restriction": None,
        "only_private_comments": False,
        "restricted_agent": False,
        "suspended": False,
        "verified": True,
        "active": True,
        "shared": False,
        "shared_agent": False,
        "external_id": None,
        "tags": [],
        "user_fields": {},
    }
