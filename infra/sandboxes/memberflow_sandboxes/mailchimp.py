"""Sandbox of the Mailchimp Marketing API v3 for local runs and tests.

It serves the subset of the API memberflow uses (ping, lists, members, tags,
customer-journey triggers, batch subscribe) over real HTTP so the official
``mailchimp-marketing`` client can be pointed at it::

    client = mailchimp_marketing.Client()
    client.set_config({"api_key": sandbox.api_key})
    client.api_client.host = sandbox.url

Behaviour follows the documented API: RFC 7807 error bodies, compliance and
"forgotten" rules, a 10-connection concurrency limit answered with a bare 429,
plus fault injection and ``/_sandbox/`` admin endpoints for tests.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import secrets
import signal
import threading
import time
import traceback
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

API_PREFIX = "/3.0"
ADMIN_PREFIX = "/_sandbox"
ERROR_TYPE = "https://mailchimp.com/developer/marketing/docs/errors/"
PROBLEM_JSON = "application/problem+json; charset=utf-8"
JSON = "application/json; charset=utf-8"

WRITABLE_STATUSES = ("subscribed", "unsubscribed", "cleaned", "pending", "transactional")
# Members in these states may not be set back to "subscribed" through the API.
COMPLIANCE_STATUSES = ("unsubscribed", "cleaned")
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 10
MAX_BATCH_MEMBERS = 500


# --------------------------------------------------------------------------- helpers


def subscriber_hash(email: str) -> str:
    """Mailchimp's member id: MD5 hex of the lowercased address."""
    return hashlib.md5(email.lower().encode("utf-8")).hexdigest()


def hash_from_path(hash_or_email: str) -> str:
    """Member routes accept either the subscriber hash or the address itself."""
    return subscriber_hash(hash_or_email) if "@" in hash_or_email else hash_or_email.lower()


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


class ApiError(Exception):
    """An error answered as a Mailchimp problem document."""

    def __init__(self, status: int, title: str, detail: str, errors: list[dict] | None = None):
        super().__init__(f"{status} {title}: {detail}")
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = errors


def invalid_resource(detail: str | None = None, errors: list[dict] | None = None) -> ApiError:
    detail = detail or (
        "The resource submitted could not be validated. For field-specific details, see the 'errors' array."
    )
    return ApiError(400, "Invalid Resource", detail, errors)


def field_error(field_name: str, message: str) -> ApiError:
    return invalid_resource(errors=[{"field": field_name, "message": message}])


def not_found() -> ApiError:
    return ApiError(404, "Resource Not Found", "The requested resource could not be found.")


def problem_response(error: ApiError, extra_headers: dict[str, str] | None = None) -> Response:
    body: dict[str, Any] = {
        "type": ERROR_TYPE,
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
        "instance": str(uuid.uuid4()),
    }
    if error.errors is not None:
        body["errors"] = error.errors
    return Response(json.dumps(body), status=error.status, content_type=PROBLEM_JSON, headers=extra_headers)


def problem_for_status(status: int, detail: str) -> ApiError:
    return ApiError(status, HTTPStatus(status).phrase, detail)


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, content_type=JSON)


def empty_response(status: int) -> Response:
    """A body-less answer; without a Content-Type the official client hands back the raw Response."""
    response = Response(status=status)
    del response.headers["Content-Type"]
    return response


def looks_fake(email: str) -> bool:
    """True when Mailchimp would reject the address as fake or invalid."""
    local, at, domain = email.rpartition("@")
    if not at or not local or not domain or "@" in local:
        return True
    return domain.lower() == "example.invalid" or domain.lower().endswith(".invalid") or "fake" in local.lower()


def page_arguments(request: Request) -> tuple[int, int]:
    count = _int_query(request, "count", DEFAULT_PAGE_SIZE)
    offset = _int_query(request, "offset", 0)
    return min(count, MAX_PAGE_SIZE), offset


def _int_query(request: Request, name: str, default: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise field_error(name, f"{name} must be a non-negative integer.") from None
    if value < 0:
        raise field_error(name, f"{name} must be a non-negative integer.")
    return value


# --------------------------------------------------------------------------- domain model


@dataclass
class Member:
    email_address: str
    status: str
    list_id: str
    merge_fields: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)  # tag name -> date added
    unique_email_id: str = field(default_factory=lambda: secrets.token_hex(5))
    web_id: int = field(default_factory=lambda: random.randint(10_000_000, 99_999_999))
    timestamp_signup: str = field(default_factory=now_iso)
    last_changed: str = field(default_factory=now_iso)
    # Status held before archiving: compliance rules still apply when the member is re-added.
    status_before_archive: str | None = None

    @property
    def id(self) -> str:
        return subscriber_hash(self.email_address)

    @property
    def full_name(self) -> str:
        parts = (str(self.merge_fields.get("FNAME", "")), str(self.merge_fields.get("LNAME", "")))
        return " ".join(part for part in parts if part).strip()

    def touch(self) -> None:
        self.last_changed = now_iso()


@dataclass
class Audience:
    """A Mailchimp list ("audience")."""

    id: str
    name: str
    date_created: str = field(default_factory=now_iso)
    members: dict[str, Member] = field(default_factory=dict)  # subscriber hash -> member
    tag_ids: dict[str, int] = field(default_factory=dict)
    forgotten: set[str] = field(default_factory=set)  # lowercased addresses deleted permanently

    def tag_id(self, name: str) -> int:
        if name not in self.tag_ids:
            self.tag_ids[name] = 10_000 + len(self.tag_ids) + 1
        return self.tag_ids[name]

    def member_json(self, member: Member) -> dict[str, Any]:
        tags = [{"id": self.tag_id(name), "name": name} for name in member.tags]
        return {
            "id": member.id,
            "email_address": member.email_address,
            "unique_email_id": member.unique_email_id,
            "web_id": member.web_id,
            "email_type": "html",
            "status": member.status,
            "merge_fields": dict(member.merge_fields),
            "interests": {},
            "full_name": member.full_name,
            "timestamp_signup": member.timestamp_signup,
            "timestamp_opt": member.timestamp_signup,
            "last_changed": member.last_changed,
            "language": "",
            "vip": False,
            "source": "API - Generic",
            "tags_count": len(tags),
            "tags": tags,
            "list_id": self.id,
        }

    def summary_json(self) -> dict[str, Any]:
        statuses = Counter(member.status for member in self.members.values())
        return {
            "id": self.id,
            "name": self.name,
            "date_created": self.date_created,
            "stats": {
                "member_count": statuses["subscribed"],
                "unsubscribe_count": statuses["unsubscribed"],
                "cleaned_count": statuses["cleaned"],
                "total_contacts": len(self.members),
            },
        }


class SandboxState:
    """All sandbox data, guarded by one re-entrant lock shared with the request handlers."""

    def __init__(self, list_ids: tuple[str, ...] = ("list123",)):
        self.lock = threading.RLock()
        self._initial_list_ids = tuple(list_ids)
        self.lists: dict[str, Audience] = {}
        self.compliance_review: set[str] = set()
        self.journey_triggers: list[dict[str, str]] = []
        self.request_counts: Counter[int] = Counter()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.lists = {list_id: Audience(list_id, f"Sandbox list {list_id}") for list_id in self._initial_list_ids}
            self.compliance_review.clear()
            self.journey_triggers.clear()
            self.request_counts.clear()

    # -- lookups

    def create_list(self, list_id: str, name: str | None = None) -> Audience:
        with self.lock:
            return self.lists.setdefault(list_id, Audience(list_id, name or f"Sandbox list {list_id}"))

    def audience(self, list_id: str) -> Audience:
        with self.lock:
            audience = self.lists.get(list_id)
        if audience is None:
            raise not_found()
        return audience

    def get_member(self, list_id: str, hash_or_email: str) -> Member | None:
        with self.lock:
            return self.audience(list_id).members.get(hash_from_path(hash_or_email))

    def in_compliance_review(self, email: str) -> bool:
        with self.lock:
            return email.lower() in {address.lower() for address in self.compliance_review}

    def record_status(self, status: int) -> None:
        with self.lock:
            self.request_counts[status] += 1

    # -- test helpers

    def seed_member(
        self,
        list_id: str,
        email: str,
        status: str,
        merge_fields: dict[str, Any] | None = None,
        tags: tuple[str, ...] | list[str] = (),
    ) -> dict[str, Any]:
        """Store a member as-is, bypassing the API's rules (e.g. to start from `unsubscribed`)."""
        if status not in (*WRITABLE_STATUSES, "archived"):
            raise ValueError(f"unknown member status {status!r}")
        with self.lock:
            audience = self.audience(list_id)
            member = Member(email, status, list_id, dict(merge_fields or {}))
            member.tags = {name: now_iso() for name in tags}
            audience.members[member.id] = member
            return audience.member_json(member)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "lists": {
                    list_id: {
                        "name": audience.name,
                        "members": [audience.member_json(m) for m in audience.members.values()],
                        "tags": sorted(audience.tag_ids),
                        "forgotten": sorted(audience.forgotten),
                    }
                    for list_id, audience in self.lists.items()
                },
                "compliance_review": sorted(self.compliance_review),
                "journey_triggers": list(self.journey_triggers),
                "request_counts": {str(status): n for status, n in sorted(self.request_counts.items())},
            }


# --------------------------------------------------------------------------- member rules


class MemberRules:
    """Mailchimp's member lifecycle: creation, upsert, status changes, archive and forget."""

    def __init__(self, state: SandboxState):
        self.state = state

    def create(self, audience: Audience, body: dict[str, Any]) -> Member:
        email = _required_string(body, "email_address")
        status = _status_field(body, "status", required=True)
        existing = audience.members.get(subscriber_hash(email))
        if existing and existing.status != "archived":
            raise ApiError(
                400,
                "Member Exists",
                f"{email} is already a list member. Use PUT to insert or update list members.",
            )
        return self._admit(audience, email, status, body, archived=existing)

    def upsert(self, audience: Audience, path_hash: str, body: dict[str, Any]) -> Member:
        email = _optional_string(body, "email_address")
        if email is not None and subscriber_hash(email) != path_hash:
            raise invalid_resource(
                "The subscriber hash in the URL does not match the hash of the email_address in the request body.",
                [{"field": "email_address", "message": "Does not match the subscriber hash in the URL."}],
            )
        status = _status_field(body, "status", required=False)
        status_if_new = _status_field(body, "status_if_new", required=False)
        member = audience.members.get(path_hash)
        if member and member.status != "archived":
            return self.update(member, body)
        email = email or (member.email_address if member else None)
        if email is None:
            raise field_error("email_address", "This value should not be blank.")
        # An archived member is re-created, yet an explicit `status` still applies to it.
        new_status = (status if member else None) or status_if_new
        if new_status is None:
            raise field_error("status_if_new", "This value should not be blank.")
        return self._admit(audience, email, new_status, body, archived=member)

    def update(self, member: Member, body: dict[str, Any]) -> Member:
        status = _status_field(body, "status", required=False)
        merge_fields = _merge_fields(body)
        if status is not None:
            self._change_status(member, status)
        member.merge_fields.update(merge_fields)
        member.touch()
        return member

    def archive(self, member: Member) -> None:
        if member.status != "archived":
            member.status_before_archive = member.status
            member.status = "archived"
            member.touch()

    def forget(self, audience: Audience, member: Member) -> None:
        del audience.members[member.id]
        audience.forgotten.add(member.email_address.lower())

    def set_tags(self, audience: Audience, member: Member, body: dict[str, Any]) -> None:
        for name, active in _tag_changes(body):
            if active:
                member.tags.setdefault(name, now_iso())
                audience.tag_id(name)
            else:
                member.tags.pop(name, None)
        member.touch()

    # -- internals

    def _admit(
        self, audience: Audience, email: str, status: str, body: dict[str, Any], archived: Member | None
    ) -> Member:
        """Add a new member, or bring back an archived one."""
        merge_fields = _merge_fields(body)
        tags = _string_list(body, "tags")
        if email.lower() in audience.forgotten:
            raise ApiError(
                400,
                "Forgotten Email Not Subscribed",
                f"{email} was permanently deleted and cannot be re-imported. "
                "The contact must re-subscribe to get back on the list.",
            )
        if looks_fake(email):
            raise invalid_resource(f"{email} looks fake or invalid, please enter a real email address.")
        if status == "subscribed":
            self._ensure_may_subscribe(email, archived.status_before_archive if archived else None)
        member = archived or Member(email, status, audience.id)
        member.status = status
        member.status_before_archive = None
        member.merge_fields.update(merge_fields)
        for name in tags:
            member.tags.setdefault(name, now_iso())
            audience.tag_id(name)
        member.touch()
        audience.members[member.id] = member
        return member

    def _change_status(self, member: Member, status: str) -> None:
        current = member.status_before_archive if member.status == "archived" else member.status
        if status == "subscribed" and member.status != "subscribed":
            self._ensure_may_subscribe(member.email_address, current)
        member.status = status
        member.status_before_archive = None

    def _ensure_may_subscribe(self, email: str, current_status: str | None) -> None:
        if current_status in COMPLIANCE_STATUSES or self.state.in_compliance_review(email):
            raise ApiError(
                400,
                "Member In Compliance State",
                f"{email} is already a list member in compliance state due to unsubscribe, bounce, "
                "or compliance review and cannot be subscribed.",
            )


def _required_string(body: dict[str, Any], name: str) -> str:
    value = _optional_string(body, name)
    if value is None:
        raise field_error(name, "This value should not be blank.")
    return value


def _optional_string(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise field_error(name, "Schema describes string, but a different type or an empty value was found.")
    return value.strip()


def _status_field(body: dict[str, Any], name: str, *, required: bool) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise field_error(name, "This value should not be blank.")
        return None
    if value not in WRITABLE_STATUSES:
        raise field_error(name, f"Data presented is not one of the accepted values: {', '.join(WRITABLE_STATUSES)}.")
    return value


def _merge_fields(body: dict[str, Any]) -> dict[str, Any]:
    value = body.get("merge_fields") or {}
    if not isinstance(value, dict):
        raise field_error("merge_fields", "Schema describes object, but a different type was found.")
    return value


def _string_list(body: dict[str, Any], name: str) -> list[str]:
    value = body.get(name) or []
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise field_error(name, "Schema describes an array of strings.")
    return value


def _tag_changes(body: dict[str, Any]) -> list[tuple[str, bool]]:
    tags = body.get("tags")
    if not isinstance(tags, list):
        raise field_error("tags", "Schema describes array, but a different type was found.")
    changes = []
    for tag in tags:
        if not isinstance(tag, dict) or not isinstance(tag.get("name"), str) or not tag["name"].strip():
            raise field_error("tags", "Each tag needs a non-empty name.")
        if tag.get("status") not in ("active", "inactive"):
            raise field_error("tags", "Tag status must be one of: active, inactive.")
        changes.append((tag["name"].strip(), tag["status"] == "active"))
    return changes


# --------------------------------------------------------------------------- traffic control


class ConcurrencyGate:
    """Counts requests in flight; Mailchimp allows 10 simultaneous connections per account."""

    def __init__(self, limit: int):
        self.limit = limit
        self._in_flight = 0
        self._lock = threading.Lock()

    def try_enter(self) -> bool:
        with self._lock:
            if self._in_flight >= self.limit:
                return False
            self._in_flight += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight


@dataclass
class FaultSettings:
    rate_429: float = 0.0
    rate_500: float = 0.0
    latency_ms: int = 0
    fail_emails: dict[str, int] = field(default_factory=dict)
    seed: int | None = None

    def __post_init__(self) -> None:
        for name in ("rate_429", "rate_500"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.latency_ms < 0:
            raise ValueError("latency_ms must not be negative")
        for email, status in self.fail_emails.items():
            if not isinstance(status, int) or not 400 <= status <= 599:
                raise ValueError(f"fail_emails[{email!r}] must be an HTTP error status")

    def as_json(self) -> dict[str, Any]:
        return {
            "rate_429": self.rate_429,
            "rate_500": self.rate_500,
            "latency_ms": self.latency_ms,
            "fail_emails": dict(self.fail_emails),
            "seed": self.seed,
        }


class FaultInjector:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.configure(FaultSettings())

    def configure(self, settings: FaultSettings) -> None:
        with self._lock:
            self.settings = settings
            self._random = random.Random(settings.seed)
            self._failing_hashes = {subscriber_hash(email): status for email, status in settings.fail_emails.items()}

    def delay(self) -> None:
        if self.settings.latency_ms:
            time.sleep(self.settings.latency_ms / 1000)

    def random_failure(self) -> ApiError | None:
        """One draw decides: below rate_429 a 429, below rate_429 + rate_500 a 500."""
        with self._lock:
            settings = self.settings
            if not (settings.rate_429 or settings.rate_500):
                return None
            draw = self._random.random()
        if draw < settings.rate_429:
            return ApiError(429, "Too Many Requests", "You have exceeded the limit of 10 simultaneous connections.")
        if draw < settings.rate_429 + settings.rate_500:
            return ApiError(500, "Internal Server Error", "An unexpected internal error has occurred.")
        return None

    def failure_for(self, hashes: set[str]) -> ApiError | None:
        with self._lock:
            statuses = [self._failing_hashes[h] for h in hashes if h in self._failing_hashes]
        if not statuses:
            return None
        return problem_for_status(statuses[0], "Injected failure for this email address.")


# --------------------------------------------------------------------------- HTTP API


API_ROUTES = Map(
    [
        Rule("/ping", methods=["GET"], endpoint="ping"),
        Rule("/lists", methods=["GET"], endpoint="get_lists"),
        Rule("/lists/<list_id>", methods=["GET"], endpoint="get_list"),
        Rule("/lists/<list_id>", methods=["POST"], endpoint="batch_subscribe"),
        Rule("/lists/<list_id>/members", methods=["GET"], endpoint="get_members"),
        Rule("/lists/<list_id>/members", methods=["POST"], endpoint="add_member"),
        Rule("/lists/<list_id>/members/<subscriber_hash>", methods=["GET"], endpoint="get_member"),
        Rule("/lists/<list_id>/members/<subscriber_hash>", methods=["PUT"], endpoint="set_member"),
        Rule("/lists/<list_id>/members/<subscriber_hash>", methods=["PATCH"], endpoint="update_member"),
        Rule("/lists/<list_id>/members/<subscriber_hash>", methods=["DELETE"], endpoint="archive_member"),
        Rule(
            "/lists/<list_id>/members/<subscriber_hash>/actions/delete-permanent",
            methods=["POST"],
            endpoint="delete_member_permanent",
        ),
        Rule("/lists/<list_id>/members/<subscriber_hash>/tags", methods=["GET"], endpoint="get_member_tags"),
        Rule("/lists/<list_id>/members/<subscriber_hash>/tags", methods=["POST"], endpoint="update_member_tags"),
        Rule(
            "/customer-journeys/journeys/<journey_id>/steps/<step_id>/actions/trigger",
            methods=["POST"],
            endpoint="trigger_journey",
        ),
    ],
    strict_slashes=False,
)


class MailchimpApi:
    """Route handlers; each returns (status, JSON payload or None for an empty body)."""

    def __init__(self, state: SandboxState):
        self.state = state
        self.rules = MemberRules(state)

    def ping(self, request: Request, body: Any) -> tuple[int, Any]:
        return 200, {"health_status": "Everything's Chimpy!"}

    def get_lists(self, request: Request, body: Any) -> tuple[int, Any]:
        count, offset = page_arguments(request)
        audiences = list(self.state.lists.values())
        page = [audience.summary_json() for audience in audiences[offset : offset + count]]
        return 200, {"lists": page, "total_items": len(audiences)}

    def get_list(self, request: Request, body: Any, list_id: str) -> tuple[int, Any]:
        return 200, self.state.audience(list_id).summary_json()

    def batch_subscribe(self, request: Request, body: Any, list_id: str) -> tuple[int, Any]:
        audience = self.state.audience(list_id)
        body = _object_body(body)
        members = body.get("members")
        if not isinstance(members, list) or len(members) > MAX_BATCH_MEMBERS:
            raise field_error("members", f"Schema describes an array of at most {MAX_BATCH_MEMBERS} members.")
        result = BatchResult(audience)
        for entry in members:
            self._batch_one(audience, entry, bool(body.get("update_existing")), result)
        return 200, result.as_json()

    def _batch_one(self, audience: Audience, entry: Any, update_existing: bool, result: BatchResult) -> None:
        email = entry.get("email_address") if isinstance(entry, dict) else None
        try:
            if not isinstance(email, str):
                raise field_error("email_address", "This value should not be blank.")
            existing = audience.members.get(subscriber_hash(email))
            if existing and existing.status != "archived":
                if not update_existing:
                    raise ApiError(400, "Member Exists", f"{email} is already a list member.")
                result.updated.append(self.rules.update(existing, entry))
            else:
                status = entry.get("status") or entry.get("status_if_new")
                result.created.append(self.rules.create(audience, {**entry, "status": status}))
        except ApiError as error:
            result.add_error(email, error)

    def get_members(self, request: Request, body: Any, list_id: str) -> tuple[int, Any]:
        audience = self.state.audience(list_id)
        count, offset = page_arguments(request)
        wanted_status = request.args.get("status")
        if wanted_status and wanted_status not in (*WRITABLE_STATUSES, "archived"):
            raise field_error("status", "Data presented is not one of the accepted values.")
        members = [m for m in audience.members.values() if not wanted_status or m.status == wanted_status]
        page = [audience.member_json(m) for m in members[offset : offset + count]]
        return 200, {"members": page, "list_id": list_id, "total_items": len(members)}

    def add_member(self, request: Request, body: Any, list_id: str) -> tuple[int, Any]:
        audience = self.state.audience(list_id)
        member = self.rules.create(audience, _object_body(body))
        return 200, audience.member_json(member)

    def get_member(self, request: Request, body: Any, list_id: str, subscriber_hash: str) -> tuple[int, Any]:
        audience, member = self._existing_member(list_id, subscriber_hash)
        return 200, audience.member_json(member)

    def set_member(self, request: Request, body: Any, list_id: str, subscriber_hash: str) -> tuple[int, Any]:
        audience = self.state.audience(list_id)
        body = _object_body(body)
        if "@" in subscriber_hash:  # the address in the path stands in for a missing email_address
            body = {"email_address": subscriber_hash, **body}
        member = self.rules.upsert(audience, hash_from_path(subscriber_hash), body)
        return 200, audience.member_json(member)

    def update_member(self, request: Request, body: Any, list_id: str, subscriber_hash: str) -> tuple[int, Any]:
        audience, member = self._existing_member(list_id, subscriber_hash)
        self.rules.update(member, _object_body(body))
        return 200, audience.member_json(member)

    def archive_member(self, request: Request, body: Any, list_id: str, subscriber_hash: str) -> tuple[int, Any]:
        _, member = self._existing_member(list_id, subscriber_hash)
        self.rules.archive(member)
        return 204, None

    def delete_member_permanent(
        self, request: Request, body: Any, list_id: str, subscriber_hash: str
    ) -> tuple[int, Any]:
        audience, member = self._existing_member(list_id, subscriber_hash)
        self.rules.forget(audience, member)
        return 204, None

    def get_member_tags(self, request: Request, body: Any, list_id: str, subscriber_hash: str) -> tuple[int, Any]:
        audience, member = self._existing_member(list_id, subscriber_hash)
        count, offset = page_arguments(request)
        tags = [{"id": audience.tag_id(name), "name": name, "date_added": added} for name, added in member.tags.items()]
        return 200, {"tags": tags[offset : offset + count], "total_items": len(tags)}

    def update_member_tags(self, request: Request, body: Any, list_id: str, subscriber_hash: str) -> tuple[int, Any]:
        audience, member = self._existing_member(list_id, subscriber_hash)
        self.rules.set_tags(audience, member, _object_body(body))
        return 204, None

    def trigger_journey(self, request: Request, body: Any, journey_id: str, step_id: str) -> tuple[int, Any]:
        email = _required_string(_object_body(body), "email_address")
        memberships = [
            audience.members[subscriber_hash(email)]
            for audience in self.state.lists.values()
            if subscriber_hash(email) in audience.members
        ]
        if not memberships:
            raise not_found()
        if not any(member.status == "subscribed" for member in memberships):
            raise invalid_resource(
                f"The contact must be subscribed to enter this journey: {email} is {memberships[0].status}."
            )
        self.state.journey_triggers.append(
            {"journey_id": journey_id, "step_id": step_id, "email_address": email, "triggered_at": now_iso()}
        )
        return 204, None

    def _existing_member(self, list_id: str, hash_or_email: str) -> tuple[Audience, Member]:
        audience = self.state.audience(list_id)
        member = audience.members.get(hash_from_path(hash_or_email))
        if member is None:
            raise not_found()
        return audience, member


@dataclass
class BatchResult:
    audience: Audience
    created: list[Member] = field(default_factory=list)
    updated: list[Member] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)

    def add_error(self, email: str | None, error: ApiError) -> None:
        code = "ERROR_CONTACT_EXISTS" if error.title == "Member Exists" else "ERROR_GENERIC"
        self.errors.append({"email_address": email or "", "error": error.detail, "error_code": code})

    def as_json(self) -> dict[str, Any]:
        return {
            "new_members": [self.audience.member_json(m) for m in self.created],
            "updated_members": [self.audience.member_json(m) for m in self.updated],
            "errors": self.errors,
            "total_created": len(self.created),
            "total_updated": len(self.updated),
            "error_count": len(self.errors),
        }


def _object_body(body: Any) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise ApiError(400, "Bad Request", "The request body must be a JSON object.")
    return body


def parse_json_body(request: Request) -> Any:
    # The official client sends the literal `null` when a call has no body.
    raw = request.get_data(cache=True)
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "Bad Request", "We encountered an unspecified JSON parsing error.") from None


def subject_hashes(route_args: dict[str, str], body: Any) -> set[str]:
    """Subscriber hashes a call is about, used to target injected per-address failures."""
    hashes = set()
    if "subscriber_hash" in route_args:
        hashes.add(hash_from_path(route_args["subscriber_hash"]))
    if isinstance(body, dict) and isinstance(body.get("email_address"), str):
        hashes.add(subscriber_hash(body["email_address"]))
    return hashes


# --------------------------------------------------------------------------- WSGI application


class SandboxApp:
    """WSGI entry point: admin endpoints, then the concurrency gate, faults, auth and routing."""

    def __init__(self, state: SandboxState, api_key: str, max_connections: int):
        self.state = state
        self.api_key = api_key
        self.gate = ConcurrencyGate(max_connections)
        self.faults = FaultInjector()
        self.api = MailchimpApi(state)
        self.admin = AdminEndpoints(self)

    def reset(self) -> None:
        self.state.reset()
        self.faults.configure(FaultSettings())

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        if request.path == ADMIN_PREFIX or request.path.startswith(ADMIN_PREFIX + "/"):
            response = self.admin.handle(request)
        else:
            response = self._gated(request)
            self.state.record_status(response.status_code)
        return response(environ, start_response)

    def _gated(self, request: Request) -> Response:
        if not self.gate.try_enter():
            # Mailchimp's connection limit can answer without any body at all.
            return empty_response(429)
        try:
            self.faults.delay()  # inside the gate: slow requests occupy a connection slot
            return self._api_response(request)
        finally:
            self.gate.leave()

    def _api_response(self, request: Request) -> Response:
        try:
            return self._dispatch(request)
        except ApiError as error:
            return problem_response(error)
        except Exception:  # a sandbox bug still answers the way Mailchimp would
            traceback.print_exc()
            return problem_response(problem_for_status(500, "An unexpected internal error has occurred."))

    def _dispatch(self, request: Request) -> Response:
        if not (request.path == API_PREFIX or request.path.startswith(API_PREFIX + "/")):
            raise not_found()
        self._authenticate(request)
        injected = self.faults.random_failure()
        if injected:
            raise injected
        endpoint, args = self._match(request)
        body = parse_json_body(request)
        injected = self.faults.failure_for(subject_hashes(args, body))
        if injected:
            raise injected
        with self.state.lock:
            status, payload = getattr(self.api, endpoint)(request, body, **args)
        return empty_response(status) if payload is None else json_response(payload, status)

    def _authenticate(self, request: Request) -> None:
        auth = request.authorization
        if auth is None or auth.type != "basic" or auth.password != self.api_key:
            raise ApiError(
                401,
                "API Key Invalid",
                "Your API key may be invalid, or you've attempted to access the wrong datacenter.",
            )

    def _match(self, request: Request) -> tuple[str, dict[str, str]]:
        path = request.path[len(API_PREFIX) :] or "/"
        adapter = API_ROUTES.bind("sandbox", path_info=path)
        try:
            return adapter.match(method=request.method)
        except MethodNotAllowed as error:
            raise ApiError(
                405,
                "Method Not Allowed",
                "The requested method and resource are not compatible. "
                f"Allowed methods: {', '.join(sorted(error.valid_methods or []))}.",
            ) from None
        except (NotFound, HTTPException):
            raise not_found() from None


class AdminEndpoints:
    """`/_sandbox/*`: test controls, never subject to auth, limits or faults."""

    def __init__(self, app: SandboxApp):
        self.app = app

    def handle(self, request: Request) -> Response:
        route = (request.method, request.path[len(ADMIN_PREFIX) :].rstrip("/"))
        try:
            if route == ("POST", "/reset"):
                self.app.reset()
                return json_response({"reset": True})
            if route == ("POST", "/faults"):
                settings = FaultSettings(**_object_body(parse_json_body(request)))
                self.app.faults.configure(settings)
                return json_response(settings.as_json())
            if route == ("GET", "/state"):
                return json_response({**self.app.state.snapshot(), "faults": self.app.faults.settings.as_json()})
            if route == ("POST", "/seed"):
                return json_response(self._seed(_object_body(parse_json_body(request))), 201)
        except ApiError as error:
            return problem_response(error)
        except (TypeError, ValueError) as error:
            return problem_response(ApiError(400, "Bad Request", str(error)))
        return problem_response(not_found())

    def _seed(self, body: dict[str, Any]) -> dict[str, Any]:
        member = self.app.state.seed_member(
            body.get("list_id", "list123"),
            body["email"] if "email" in body else body["email_address"],
            body.get("status", "subscribed"),
            body.get("merge_fields"),
            tuple(body.get("tags") or ()),
        )
        if body.get("compliance_review"):
            with self.app.state.lock:
                self.app.state.compliance_review.add(member["email_address"])
        return member


# --------------------------------------------------------------------------- server lifecycle


class _QuietRequestHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:  # one line per request drowns test output
        pass


class MailchimpSandbox:
    """A threaded HTTP server running the sandbox in a background thread."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str = "sandbox-key-us1",
        max_connections: int = 10,
        lists: tuple[str, ...] = ("list123",),
    ):
        if "server" in host:
            # The official client rewrites every "server" substring of the URL.
            raise ValueError("the sandbox host must not contain the text 'server'")
        self.host = host
        self.port = port
        self.api_key = api_key
        self.state = SandboxState(tuple(lists))
        self.app = SandboxApp(self.state, api_key, max_connections)
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None and self.port == 0:
            raise RuntimeError("start the sandbox first: port 0 is chosen when it starts")
        port = self._server.server_port if self._server else self.port
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{port}{API_PREFIX}"

    @property
    def admin_url(self) -> str:
        return self.url[: -len(API_PREFIX)] + ADMIN_PREFIX

    def start(self) -> MailchimpSandbox:
        if self._server is not None:
            return self
        self._server = make_server(self.host, self.port, self.app, threaded=True, request_handler=_QuietRequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="mailchimp-sandbox", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> MailchimpSandbox:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def set_faults(
        self,
        *,
        rate_429: float = 0.0,
        rate_500: float = 0.0,
        latency_ms: int = 0,
        fail_emails: dict[str, int] | None = None,
        seed: int | None = None,
    ) -> None:
        self.app.faults.configure(FaultSettings(rate_429, rate_500, latency_ms, dict(fail_emails or {}), seed))

    def reset(self) -> None:
        self.app.reset()

    def seed_member(
        self,
        list_id: str,
        email: str,
        status: str,
        merge_fields: dict[str, Any] | None = None,
        tags: tuple[str, ...] | list[str] = (),
    ) -> dict[str, Any]:
        return self.state.seed_member(list_id, email, status, merge_fields, tags)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the Mailchimp Marketing API v3 sandbox.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--api-key", default="sandbox-key-us1")
    parser.add_argument("--list", dest="lists", action="append", help="list id to create (repeatable)")
    parser.add_argument("--max-connections", type=int, default=10)
    args = parser.parse_args(argv)
    sandbox = MailchimpSandbox(
        args.host, args.port, args.api_key, args.max_connections, tuple(args.lists or ("list123",))
    )
    stopping = threading.Event()
    # Handle both explicitly: a shell's background job ignores SIGINT, and containers stop with SIGTERM.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    with sandbox:
        print(sandbox.url, flush=True)
        stopping.wait()


if __name__ == "__main__":
    main()
