"""The Zendesk sandbox's data: tickets, users, bulk jobs, idempotency keys, the request budget, webhooks sent."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime
from typing import Any

from memberflow_sandboxes.base import BaseState

IDEMPOTENCY_SECONDS = 2 * 3600
JOB_STATUS_SECONDS = 24 * 3600
"""Zendesk keeps a job status one day; after that its id answers 404 `RecordNotFound` like an unknown one."""
STATUSES = ("new", "open", "pending", "hold", "solved", "closed")


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ZendeskState(BaseState):
    def __init__(self) -> None:
        super().__init__()
        self._fresh()

    def _fresh(self) -> None:
        self.tickets: dict[int, dict[str, Any]] = {}
        self.comments: dict[int, list[dict[str, Any]]] = {}
        self.users: dict[int, dict[str, Any]] = {}
        self.deleted_users: dict[int, dict[str, Any]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.job_created: dict[str, float] = {}
        self.idempotency: dict[str, tuple[str, float, int, dict[str, Any]]] = {}
        self.webhooks: list[dict[str, Any]] = []
        self.user_created: dict[int, float] = {}
        """When each user was created (monotonic seconds): search finds a user only `search_lag_seconds` later."""
        self.ticket_created: dict[int, float] = {}
        """When each ticket was created (monotonic seconds): search finds it only `search_lag_seconds` later too
        (the reference, Zendesk: "Search ... can take a few minutes to index new tickets")."""
        self.search_lag_seconds = 0.0
        """Zendesk's search index lags (minutes, in production): a user or ticket created less than this long ago is
        not in search results yet (`search.json`, and `users/search.json?query=`). Every other lookup (show,
        show_many, create_or_update, lists, requested tickets, `users/search.json?external_id=`) sees them."""
        self.operations: dict[str, int] = {}
        """Calls per Zendesk API operation (tickets.create, ...); the base counts them per route in `calls`."""
        self._next_id = 1000

    def reset(self) -> None:
        with self.lock:
            super().reset()
            self._fresh()

    def next_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def count(self, name: str) -> None:
        with self.lock:
            self.operations[name] = self.operations.get(name, 0) + 1

    # ---------------------------------------------------------------- users

    def find_user(self, email: str | None, external_id: str | None) -> dict[str, Any] | None:
        for user in self.users.values():
            if email and (user.get("email") or "").lower() == email.lower():
                return user
        for user in self.users.values():
            if external_id and user.get("external_id") == external_id:
                return user
        return None

    def upsert_user(self, fields: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        user = self.find_user(fields.get("email"), fields.get("external_id"))
        if user is not None:
            user.update({k: v for k, v in fields.items() if v is not None and k in ("name", "email", "external_id")})
            user["updated_at"] = now_iso()
            return user, False
        user_id = self.next_id()
        user = {
            "id": user_id,
            "url": f"/api/v2/users/{user_id}.json",
            "name": fields.get("name") or (fields.get("email") or "").split("@")[0] or "Unknown",
            "email": fields.get("email"),
            "external_id": fields.get("external_id"),
            "role": "end-user",
            "active": True,
            "created_at": now_iso(),
            "updated_at": now_iso(),
        }
        self.users[user_id] = user
        self.user_created[user_id] = time.monotonic()
        return user, True

    def indexed(self, user: dict[str, Any]) -> bool:
        """The user is in search results: created at least `search_lag_seconds` ago."""
        created = self.user_created.get(int(user["id"]))
        return created is None or time.monotonic() - created >= self.search_lag_seconds

    def ticket_indexed(self, ticket: dict[str, Any]) -> bool:
        """The ticket is in search results: created at least `search_lag_seconds` ago."""
        created = self.ticket_created.get(int(ticket["id"]))
        return created is None or time.monotonic() - created >= self.search_lag_seconds

    # ---------------------------------------------------------------- tickets

    def create_ticket(self, fields: dict[str, Any]) -> dict[str, Any]:
        requester_id = fields.get("requester_id")
        requester = fields.get("requester")
        if requester_id is None and isinstance(requester, dict):
            requester_id = self.upsert_user(requester)[0]["id"]
        ticket_id = self.next_id()
        comment = fields.get("comment") or {}
        body = comment.get("body") or fields.get("description") or ""
        ticket = {
            "id": ticket_id,
            "url": f"/api/v2/tickets/{ticket_id}.json",
            "subject": fields.get("subject"),
            "description": body,
            "status": "new",
            "priority": fields.get("priority"),
            "tags": sorted(set(fields.get("tags") or [])),
            "external_id": fields.get("external_id"),
            "requester_id": requester_id,
            "submitter_id": requester_id,
            "group_id": fields.get("group_id"),
            "via_followup_source_id": fields.get("via_followup_source_id"),
            "created_at": now_iso(),
            "updated_at": now_iso(),
        }
        self.tickets[ticket_id] = ticket
        self.ticket_created[ticket_id] = time.monotonic()
        self.comments[ticket_id] = [
            {"id": self.next_id(), "body": body, "public": bool(comment.get("public", True)), "author_id": requester_id}
        ]
        return ticket

    # ---------------------------------------------------------------- bulk jobs

    def add_job(self, job: dict[str, Any]) -> None:
        self.jobs[job["id"]] = job
        self.job_created[job["id"]] = time.time()

    def job(self, job_id: str) -> dict[str, Any] | None:
        """A job status, or None when its id is unknown or it is older than Zendesk keeps one (then it is gone)."""
        if job_id in self.jobs and time.time() - self.job_created[job_id] > JOB_STATUS_SECONDS:
            del self.jobs[job_id], self.job_created[job_id]
        return self.jobs.get(job_id)

    def age_jobs(self, job_ids: list[str] | None = None) -> int:
        """Make the given job statuses (all when None) older than Zendesk keeps them; returns how many."""
        aged = [job_id for job_id in (self.jobs if job_ids is None else job_ids) if job_id in self.job_created]
        for job_id in aged:
            self.job_created[job_id] -= JOB_STATUS_SECONDS + 1
        return len(aged)

    # ---------------------------------------------------------------- idempotency keys

    def remember_key(self, key: str, body: Any, status: int, payload: dict[str, Any]) -> None:
        self.idempotency[key] = (_digest(body), time.time(), status, payload)

    def replay(self, key: str, body: Any) -> tuple[int, dict[str, Any]] | str | None:
        """The stored answer for a repeated key and body; "conflict" for another body; None when new or expired."""
        stored = self.idempotency.get(key)
        if stored is None or time.time() - stored[1] > IDEMPOTENCY_SECONDS:
            return None
        digest, _, status, payload = stored
        return (status, payload) if digest == _digest(body) else "conflict"

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                **super().snapshot(),
                "tickets": list(self.tickets.values()),
                "users": list(self.users.values()),
                "deleted_users": list(self.deleted_users.values()),
                "jobs": len(self.jobs),
                "webhooks": list(self.webhooks),
                "operations": dict(self.operations),
                "budget": {"requests": self.budget.requests, "window_seconds": self.budget.window_seconds},
                "search_lag_seconds": self.search_lag_seconds,
            }


def _digest(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
