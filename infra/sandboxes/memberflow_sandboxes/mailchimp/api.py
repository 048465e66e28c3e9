"""The /3.0 endpoints memberflow uses; each handler returns (status, JSON payload or None)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request

from memberflow_sandboxes.base import Reply
from memberflow_sandboxes.mailchimp import fields
from memberflow_sandboxes.mailchimp.members import MemberRules
from memberflow_sandboxes.mailchimp.problems import ApiError, field_error, invalid_resource, not_found
from memberflow_sandboxes.mailchimp.state import (
    MERGE_FIELD_TYPES,
    WRITABLE_STATUSES,
    Audience,
    Member,
    MergeField,
    SandboxState,
    StaticSegment,
    hash_from_path,
    links,
    now_iso,
    subscriber_hash,
)

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 10
MAX_BATCH_MEMBERS = 500
MAX_SEGMENT_MEMBERS = 500
_MEMBER = "/lists/<list_id>/members/<subscriber_hash>"
_SEGMENT = "/lists/<list_id>/segments/<int:segment_id>"
_MERGE_FIELD = "/lists/<list_id>/merge-fields/<int:merge_id>"

API_ROUTES = Map(
    [
        Rule("/", methods=["GET"], endpoint="root"),
        Rule("/ping", methods=["GET"], endpoint="ping"),
        Rule("/search-members", methods=["GET"], endpoint="search_members"),
        Rule("/lists", methods=["GET"], endpoint="get_lists"),
        Rule("/lists/<list_id>", methods=["GET"], endpoint="get_list"),
        Rule("/lists/<list_id>", methods=["POST"], endpoint="batch_subscribe"),
        Rule("/lists/<list_id>/members", methods=["GET"], endpoint="get_members"),
        Rule("/lists/<list_id>/members", methods=["POST"], endpoint="add_member"),
        Rule(_MEMBER, methods=["GET"], endpoint="get_member"),
        Rule(_MEMBER, methods=["PUT"], endpoint="set_member"),
        Rule(_MEMBER, methods=["PATCH"], endpoint="update_member"),
        Rule(_MEMBER, methods=["DELETE"], endpoint="archive_member"),
        Rule(f"{_MEMBER}/actions/delete-permanent", methods=["POST"], endpoint="delete_member_permanent"),
        Rule(f"{_MEMBER}/tags", methods=["GET"], endpoint="get_member_tags"),
        Rule(f"{_MEMBER}/tags", methods=["POST"], endpoint="update_member_tags"),
        Rule("/lists/<list_id>/segments", methods=["GET"], endpoint="get_segments"),
        Rule("/lists/<list_id>/segments", methods=["POST"], endpoint="add_segment"),
        Rule(_SEGMENT, methods=["GET"], endpoint="get_segment"),
        Rule(_SEGMENT, methods=["POST"], endpoint="update_segment_members"),
        Rule(f"{_SEGMENT}/members", methods=["GET"], endpoint="get_segment_members"),
        Rule("/lists/<list_id>/webhooks", methods=["GET"], endpoint="get_webhooks"),
        Rule("/lists/<list_id>/webhooks", methods=["POST"], endpoint="add_webhook"),
        Rule("/lists/<list_id>/merge-fields", methods=["GET"], endpoint="get_merge_fields"),
        Rule("/lists/<list_id>/merge-fields", methods=["POST"], endpoint="add_merge_field"),
        Rule(_MERGE_FIELD, methods=["GET"], endpoint="get_merge_field"),
        Rule(_MERGE_FIELD, methods=["DELETE"], endpoint="delete_merge_field"),
        Rule(
            "/customer-journeys/journeys/<journey_id>/steps/<step_id>/actions/trigger",
            methods=["POST"],
            endpoint="trigger_journey",
        ),
    ],
    strict_slashes=False,
)


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


def skips_merge_validation(request: Request) -> bool:
    """`?skip_merge_validation=true`: a new member may leave required merge fields empty (the official client sends
    Python's `True`)."""
    return request.args.get("skip_merge_validation", "").lower() == "true"


def subject_hashes(route_args: dict[str, str], body: Any) -> set[str]:
    """Subscriber hashes a call is about, used to target injected per-address failures: a call naming a failing
    address fails as a whole, whether it names one member or many."""
    hashes = set()
    if "subscriber_hash" in route_args:
        hashes.add(hash_from_path(route_args["subscriber_hash"]))
    if isinstance(body, dict) and isinstance(body.get("email_address"), str):
        hashes.add(subscriber_hash(body["email_address"]))
    if isinstance(body, dict):
        # Calls about many members (batch subscribe, static segment members) are about each of them too.
        for member in body.get("members") or []:
            if isinstance(member, dict) and isinstance(member.get("email_address"), str):
                hashes.add(subscriber_hash(member["email_address"]))
        for field_name in ("members_to_add", "members_to_remove"):
            for email in body.get(field_name) or []:
                if isinstance(email, str):
                    hashes.add(subscriber_hash(email))
    return hashes


@dataclass
class BatchResult:
    audience: Audience
    created: list[Member] = field(default_factory=list)
    updated: list[Member] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)

    def add_error(self, email: str | None, error: ApiError) -> None:
        """A member's error as Mailchimp lists it: the text, `ERROR_CONTACT_EXISTS` for a member already in the
        audience (without update_existing), `ERROR_GENERIC` for anything else, and the field a validation names."""
        code = "ERROR_CONTACT_EXISTS" if error.title == "Member Exists" else "ERROR_GENERIC"
        field_errors = error.errors or [{}]
        self.errors.append(
            {
                "email_address": email or "",
                "error": error.detail if not error.errors else str(field_errors[0].get("message", error.detail)),
                "error_code": code,
                "field": str(field_errors[0].get("field", "")),
                "field_message": str(field_errors[0].get("message", "")),
            }
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "new_members": [self.audience.member_json(m) for m in self.created],
            "updated_members": [self.audience.member_json(m) for m in self.updated],
            "errors": self.errors,
            "total_created": len(self.created),
            "total_updated": len(self.updated),
            "error_count": len(self.errors),
        }


class MailchimpApi:
    """Route handlers, called with the state lock held."""

    def __init__(self, state: SandboxState):
        self.state = state
        self.rules = MemberRules(state)

    def ping(self, request: Request, body: Any) -> Reply:
        return 200, {"health_status": "Everything's Chimpy!"}

    def root(self, request: Request, body: Any) -> Reply:
        """API Root (`GET /3.0/`): the account the key belongs to. Mailchimp's fields, values of the sandbox's own.
        The fields are the API Root schema's (Mailchimp Marketing API `getRoot`, mailchimp-client-lib-codegen
        spec/marketing.json as mirrored in APIs-guru openapi-directory mailchimp.com); `contact`, `industry_stats`,
        `avatar_url`, `last_login` and the rest it also has are left out."""
        subscribed = sum(a.summary_json()["stats"]["member_count"] for a in self.state.lists.values())
        return 200, {
            "account_id": "sandbox0account",
            "login_id": "sandbox0login",
            "account_name": "memberflow sandbox",
            "email": "owner@example.org",
            "first_name": "Sandbox",
            "last_name": "Owner",
            "username": "sandbox",
            "role": "owner",
            "member_since": "2020-01-01T00:00:00+00:00",
            "pricing_plan_type": "monthly",
            "account_timezone": "UTC",
            "pro_enabled": False,
            "total_subscribers": subscribed,
            "_links": links("/", ("self", "GET")),
        }

    def search_members(self, request: Request, body: Any) -> Reply:
        """`GET /search-members?query=[&list_id=]`: members whose address is the query (`exact_matches`), and those
        whose address or name contains it (`full_search`), each as `{"members", "total_items"}` (Mailchimp's
        "Search members" reference). The query is required."""
        query = (request.args.get("query") or "").strip().lower()
        if not query:
            raise field_error("query", "This value should not be blank.")
        list_id = request.args.get("list_id")
        audiences = [self.state.audience(list_id)] if list_id else list(self.state.lists.values())
        exact, full = [], []
        for audience in audiences:
            for member in audience.members.values():
                if member.email_address.lower() == query:
                    exact.append(audience.member_json(member))
                elif query in member.email_address.lower() or query in member.full_name.lower():
                    full.append(audience.member_json(member))
        return 200, {
            "exact_matches": {"members": exact, "total_items": len(exact)},
            "full_search": {"members": full, "total_items": len(full)},
            "_links": links("/search-members", ("self", "GET")),
        }

    def get_lists(self, request: Request, body: Any) -> Reply:
        count, offset = page_arguments(request)
        audiences = list(self.state.lists.values())
        page = [audience.summary_json() for audience in audiences[offset : offset + count]]
        return 200, {"lists": page, "total_items": len(audiences)}

    def get_list(self, request: Request, body: Any, list_id: str) -> Reply:
        return 200, self.state.audience(list_id).summary_json()

    def batch_subscribe(self, request: Request, body: Any, list_id: str) -> Reply:
        audience = self.state.audience(list_id)
        body = fields.object_body(body)
        members = body.get("members")
        if not isinstance(members, list) or len(members) > MAX_BATCH_MEMBERS:
            raise field_error("members", f"Schema describes an array of at most {MAX_BATCH_MEMBERS} members.")
        result = BatchResult(audience)
        for entry in members:
            self._batch_one(audience, entry, bool(body.get("update_existing")), skips_merge_validation(request), result)
        return 200, result.as_json()

    def _batch_one(
        self, audience: Audience, entry: Any, update_existing: bool, skip_required: bool, result: BatchResult
    ) -> None:
        email = entry.get("email_address") if isinstance(entry, dict) else None
        if isinstance(entry, dict):
            # Mailchimp does not reliably apply a batch member's tags; here they are never applied, so nothing that
            # counts on them passes locally (tags in bulk are static segments).
            entry = {name: value for name, value in entry.items() if name != "tags"}
        try:
            if not isinstance(email, str):
                raise field_error("email_address", "This value should not be blank.")
            existing = audience.members.get(subscriber_hash(email))
            if existing and existing.status != "archived":
                if not update_existing:
                    raise ApiError(
                        400,
                        "Member Exists",
                        f"{email} is already a list member, do you want to update? please provide "
                        "update_existing:true in the request body",
                    )
                result.updated.append(self.rules.update(audience, existing, entry))
            else:
                # Batch subscribe has no `status_if_new`: a new member needs `status` (an unknown field is ignored).
                result.created.append(self.rules.create(audience, entry, skip_required=skip_required))
        except ApiError as error:
            result.add_error(email, error)

    def get_members(self, request: Request, body: Any, list_id: str) -> Reply:
        audience = self.state.audience(list_id)
        count, offset = page_arguments(request)
        wanted_status = request.args.get("status")
        if wanted_status and wanted_status not in (*WRITABLE_STATUSES, "archived"):
            raise field_error("status", "Data presented is not one of the accepted values.")
        members = [m for m in audience.members.values() if not wanted_status or m.status == wanted_status]
        page = [audience.member_json(m) for m in members[offset : offset + count]]
        return 200, {
            "members": page,
            "list_id": list_id,
            "total_items": len(members),
            "_links": links(f"/lists/{list_id}/members", ("self", "GET"), ("create", "POST")),
        }

    def add_member(self, request: Request, body: Any, list_id: str) -> Reply:
        audience = self.state.audience(list_id)
        member = self.rules.create(audience, fields.object_body(body), skip_required=skips_merge_validation(request))
        return 200, audience.member_json(member)

    def get_member(self, request: Request, body: Any, list_id: str, subscriber_hash: str) -> Reply:
        audience, member = self._existing_member(list_id, subscriber_hash)
        return 200, audience.member_json(member)

    def set_member(self, request: Request, body: Any, list_id: str, subscriber_hash: str) -> Reply:
        audience = self.state.audience(list_id)
        body = fields.object_body(body)
        if "@" in subscriber_hash:  # the address in the path stands in for a missing email_address
            body = {"email_address": subscriber_hash, **body}
        member = self.rules.upsert(
            audience, hash_from_path(subscriber_hash), body, skip_required=skips_merge_validation(request)
        )
        return 200, audience.member_json(member)

    def update_member(self, request: Request, body: Any, list_id: str, subscriber_hash: str) -> Reply:
        audience, member = self._existing_member(list_id, subscriber_hash)
        self.rules.update(audience, member, fields.object_body(body))
        return 200, audience.member_json(member)

    def archive_member(self, request: Request, body: Any, list_id: str, subscriber_hash: str) -> Reply:
        _, member = self._existing_member(list_id, subscriber_hash)
        self.rules.archive(member)
        return 204, None

    def delete_member_permanent(self, request: Request, body: Any, list_id: str, subscriber_hash: str) -> Reply:
        audience, member = self._existing_member(list_id, subscriber_hash)
        self.rules.forget(audience, member)
        return 204, None

    def get_member_tags(self, request: Request, body: Any, list_id: str, subscriber_hash: str) -> Reply:
        audience, member = self._existing_member(list_id, subscriber_hash)
        count, offset = page_arguments(request)
        tags = [{"id": audience.tag_id(name), "name": name, "date_added": added} for name, added in member.tags.items()]
        return 200, {"tags": tags[offset : offset + count], "total_items": len(tags)}

    def update_member_tags(self, request: Request, body: Any, list_id: str, subscriber_hash: str) -> Reply:
        audience, member = self._existing_member(list_id, subscriber_hash)
        self.rules.set_tags(audience, member, fields.object_body(body))
        return 204, None

    def get_segments(self, request: Request, body: Any, list_id: str) -> Reply:
        """Static segments only: every tag is one; `type=saved` or `type=fuzzy` find none here."""
        audience = self.state.audience(list_id)
        count, offset = page_arguments(request)
        wanted_type = request.args.get("type")
        if wanted_type and wanted_type not in ("saved", "static", "fuzzy"):
            raise field_error("type", "Data presented is not one of the accepted values: saved, static, fuzzy.")
        segments = [] if wanted_type in ("saved", "fuzzy") else list(audience.segments.values())
        return 200, {
            "segments": [audience.segment_json(s) for s in segments[offset : offset + count]],
            "list_id": list_id,
            "total_items": len(segments),
            "_links": links(f"/lists/{list_id}/segments", ("self", "GET"), ("create", "POST")),
        }

    def add_segment(self, request: Request, body: Any, list_id: str) -> Reply:
        """A static segment (a tag) from `name` and `static_segment` (addresses; those not in the audience are
        ignored). Saved segments (`options`) are not served by the sandbox."""
        audience = self.state.audience(list_id)
        body = fields.object_body(body)
        name = fields.required_string(body, "name")
        if "options" in body:
            raise field_error("options", "The sandbox serves static segments only: send static_segment, not options.")
        if "static_segment" not in body:
            raise field_error("static_segment", "This value should not be blank.")
        emails = fields.email_list(body, "static_segment", MAX_SEGMENT_MEMBERS)
        if name in audience.tag_ids:
            raise invalid_resource(f'A segment or tag named "{name}" already exists in this list.')
        segment = audience.segments[audience.tag_id(name)]
        for member in self._members_of(audience, emails):
            audience.add_tag(member, name)
        return 200, audience.segment_json(segment)

    def get_segment(self, request: Request, body: Any, list_id: str, segment_id: int) -> Reply:
        audience, segment = self._existing_segment(list_id, segment_id)
        return 200, audience.segment_json(segment)

    def update_segment_members(self, request: Request, body: Any, list_id: str, segment_id: int) -> Reply:
        """Batch add or remove members (at most 500 addresses per field); addresses not in the audience are
        ignored, and so are members already as asked."""
        audience, segment = self._existing_segment(list_id, segment_id)
        body = fields.object_body(body)
        to_add = fields.email_list(body, "members_to_add", MAX_SEGMENT_MEMBERS)
        to_remove = fields.email_list(body, "members_to_remove", MAX_SEGMENT_MEMBERS)
        added = [m for m in self._members_of(audience, to_add) if audience.add_tag(m, segment.name)]
        removed = [m for m in self._members_of(audience, to_remove) if audience.remove_tag(m, segment.name)]
        for member in (*added, *removed):
            member.touch()
        return 200, {
            "members_added": [audience.member_json(m) for m in added],
            "members_removed": [audience.member_json(m) for m in removed],
            "errors": [],
            "total_added": len(added),
            "total_removed": len(removed),
            "error_count": 0,
            "_links": links(f"/lists/{list_id}/segments/{segment_id}", ("self", "GET")),
        }

    def get_segment_members(self, request: Request, body: Any, list_id: str, segment_id: int) -> Reply:
        audience, segment = self._existing_segment(list_id, segment_id)
        count, offset = page_arguments(request)
        members = audience.segment_members(segment)
        return 200, {
            "members": [audience.member_json(m) for m in members[offset : offset + count]],
            "total_items": len(members),
            "_links": links(f"/lists/{list_id}/segments/{segment_id}/members", ("self", "GET")),
        }

    def _existing_segment(self, list_id: str, segment_id: int) -> tuple[Audience, StaticSegment]:
        audience = self.state.audience(list_id)
        segment = audience.segments.get(segment_id)
        if segment is None:
            raise not_found()
        return audience, segment

    @staticmethod
    def _members_of(audience: Audience, emails: list[str]) -> list[Member]:
        """The audience's members among the addresses, each once; the others are ignored, as Mailchimp does."""
        found: dict[str, Member] = {}
        for email in emails:
            member = audience.members.get(subscriber_hash(email))
            if member is not None and member.status != "archived":
                found.setdefault(member.id, member)
        return list(found.values())

    def get_webhooks(self, request: Request, body: Any, list_id: str) -> Reply:
        self.state.audience(list_id)
        hooks = [hook.as_json() for hook in self.state.webhooks.for_list(list_id)]
        return 200, {"webhooks": hooks, "list_id": list_id, "total_items": len(hooks)}

    def add_webhook(self, request: Request, body: Any, list_id: str) -> Reply:
        """Mailchimp checks the URL with a GET before saving the webhook and refuses one that does not answer."""
        self.state.audience(list_id)
        body = fields.object_body(body)
        url = fields.required_string(body, "url")
        try:
            hook = self.state.webhooks.add(list_id, url, body.get("events"), body.get("sources"))
        except ValueError as error:
            raise invalid_resource(f"The resource submitted could not be validated: {error}.") from None
        return 200, hook.as_json()

    def get_merge_fields(self, request: Request, body: Any, list_id: str) -> Reply:
        audience = self.state.audience(list_id)
        count, offset = page_arguments(request)
        wanted_type = request.args.get("type")
        fields_ = [f for f in audience.merge_fields.values() if not wanted_type or f.type == wanted_type]
        return 200, {
            "merge_fields": [audience.merge_field_json(f) for f in fields_[offset : offset + count]],
            "list_id": list_id,
            "total_items": len(fields_),
            "_links": links(f"/lists/{list_id}/merge-fields", ("self", "GET"), ("create", "POST")),
        }

    def add_merge_field(self, request: Request, body: Any, list_id: str) -> Reply:
        audience = self.state.audience(list_id)
        body = fields.object_body(body)
        name = fields.required_string(body, "name")
        type_ = body.get("type")
        if type_ not in MERGE_FIELD_TYPES:
            accepted = ", ".join(MERGE_FIELD_TYPES)
            raise field_error("type", f"Data presented is not one of the accepted values: {accepted}.")
        tag = fields.optional_string(body, "tag")
        if tag is not None and tag.upper() in {f.tag for f in audience.merge_fields.values()}:
            raise invalid_resource(f'A Merge Field with the tag "{tag.upper()}" already exists for this list.')
        options = body.get("options") or {}
        if not isinstance(options, dict):
            raise field_error("options", "Schema describes object, but a different type was found.")
        merge_field = audience.add_merge_field(
            tag, name, type_, options, required=bool(body.get("required", False)), public=bool(body.get("public", True))
        )
        return 200, audience.merge_field_json(merge_field)

    def get_merge_field(self, request: Request, body: Any, list_id: str, merge_id: int) -> Reply:
        audience, merge_field = self._existing_merge_field(list_id, merge_id)
        return 200, audience.merge_field_json(merge_field)

    def delete_merge_field(self, request: Request, body: Any, list_id: str, merge_id: int) -> Reply:
        audience, merge_field = self._existing_merge_field(list_id, merge_id)
        del audience.merge_fields[merge_field.merge_id]
        return 204, None

    def _existing_merge_field(self, list_id: str, merge_id: int) -> tuple[Audience, MergeField]:
        audience = self.state.audience(list_id)
        merge_field = audience.merge_fields.get(merge_id)
        if merge_field is None:
            raise not_found()
        return audience, merge_field

    def trigger_journey(self, request: Request, body: Any, journey_id: str, step_id: str) -> Reply:
        """The same 404 for a journey or step the account does not have as for a contact in no audience: Mailchimp
        does not say which is missing."""
        if not self.state.has_journey(journey_id, step_id):
            raise not_found()
        email = fields.required_string(fields.object_body(body), "email_address")
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
