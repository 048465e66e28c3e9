"""Mailchimp's data model: audiences, members, compliance state and review, forgotten addresses, journey triggers."""

from __future__ import annotations

import hashlib
import random
import secrets
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from memberflow_sandboxes.base import BaseState
from memberflow_sandboxes.mailchimp.problems import not_found
from memberflow_sandboxes.mailchimp.webhooks import WebhookRegistry

WRITABLE_STATUSES = ("subscribed", "unsubscribed", "cleaned", "pending", "transactional")
MERGE_FIELD_TYPES = (
    "text",
    "number",
    "address",
    "phone",
    "date",
    "url",
    "imageurl",
    "radio",
    "dropdown",
    "birthday",
    "zip",
)
# (tag, name, type, options) of the merge fields every new Mailchimp audience starts with (EMAIL, merge id 0, is
# not one of the listed merge fields).
DEFAULT_MERGE_FIELDS: tuple[tuple[str, str, str, dict[str, Any]], ...] = (
    ("FNAME", "First Name", "text", {"size": 25}),
    ("LNAME", "Last Name", "text", {"size": 25}),
    ("ADDRESS", "Address", "address", {"default_country": 164}),
    ("PHONE", "Phone Number", "phone", {"phone_format": "none"}),
    ("BIRTHDAY", "Birthday", "birthday", {"date_format": "MM/DD"}),
)
DATE_FORMATS = {"date": "MM/DD/YYYY", "birthday": "MM/DD"}
# Once an address has held one of these in a list, the API may not make it `subscribed` again
# (whatever its status later becomes) until the person confirms a `pending` re-opt-in.
COMPLIANCE_STATUSES = ("unsubscribed", "cleaned")


def subscriber_hash(email: str) -> str:
    """Mailchimp's member id: MD5 hex of the lowercased address."""
    return hashlib.md5(email.lower().encode("utf-8")).hexdigest()


def hash_from_path(hash_or_email: str) -> str:
    """Member routes accept either the subscriber hash or the address itself."""
    return subscriber_hash(hash_or_email) if "@" in hash_or_email else hash_or_email.lower()


def links(path: str, *methods: tuple[str, str]) -> list[dict[str, str]]:
    """HATEOAS `_links` as Mailchimp attaches them, (rel, method) pairs on one resource path under /3.0."""
    return [{"rel": rel, "href": f"/3.0{path}", "method": method} for rel, method in methods]


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


@dataclass
class Member:
    email_address: str
    status: str
    list_id: str
    merge_fields: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)  # tag name -> date added
    unique_email_id: str = field(default_factory=lambda: secrets.token_hex(5))
    web_id: int = field(default_factory=lambda: random.randint(10_000_000, 99_999_999))
    # What the client sent (`timestamp_signup`, `timestamp_opt`), or the moment the member confirmed a double opt-in;
    # empty otherwise: the sandbox invents no consent record, so a test can tell what a client provided.
    timestamp_signup: str = ""
    timestamp_opt: str = ""
    last_changed: str = field(default_factory=now_iso)
    marketing_permissions: dict[str, bool] = field(default_factory=dict)
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


def webhook_data(member: Member) -> dict[str, Any]:
    """The member as audience webhooks describe them (`data[...]`)."""
    return {
        "id": member.id,
        "email": member.email_address,
        "email_type": "html",
        "web_id": member.web_id,
        "merges": {"EMAIL": member.email_address, **{k: v for k, v in member.merge_fields.items() if v is not None}},
    }


@dataclass
class StaticSegment:
    """A tag, seen as the static segment it is in Mailchimp: its members are the members carrying the tag."""

    id: int
    name: str
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)


@dataclass
class MergeField:
    merge_id: int
    tag: str
    name: str
    type: str
    required: bool = False
    default_value: str = ""
    public: bool = True
    display_order: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    help_text: str = ""


@dataclass
class Audience:
    """A Mailchimp list ("audience")."""

    id: str
    name: str
    date_created: str = field(default_factory=now_iso)
    members: dict[str, Member] = field(default_factory=dict)  # subscriber hash -> member
    tag_ids: dict[str, int] = field(default_factory=dict)
    segments: dict[int, StaticSegment] = field(default_factory=dict)  # segment id (= tag id) -> segment
    # Each time a tag became active on a member (a journey starting on "tag added" starts once per entry).
    tag_events: list[dict[str, str]] = field(default_factory=list)
    forgotten: set[str] = field(default_factory=set)  # lowercased addresses deleted permanently
    # Lowercased addresses in compliance state: they were unsubscribed or cleaned in this list.
    # The flag belongs to the address, so it survives archive, re-adding and status changes.
    compliance: set[str] = field(default_factory=set)
    merge_fields: dict[int, MergeField] = field(default_factory=dict)  # merge id -> field

    def add_merge_field(
        self, tag: str | None, name: str, type_: str, options: dict[str, Any] | None = None, **extra: Any
    ) -> MergeField:
        """A merge field as Mailchimp adds one: the next merge id, `MMERGE<id>` without a tag, ordered last."""
        merge_id = max(self.merge_fields, default=0) + 1
        options = dict(options or {})
        if type_ in DATE_FORMATS:
            options.setdefault("date_format", DATE_FORMATS[type_])
        merge_field = MergeField(
            merge_id,
            (tag or f"MMERGE{merge_id}").upper(),
            name,
            type_,
            display_order=len(self.merge_fields) + 2,  # EMAIL is first
            options=options,
            **extra,
        )
        self.merge_fields[merge_id] = merge_field
        return merge_field

    def merge_field_json(self, merge_field: MergeField) -> dict[str, Any]:
        return {
            "merge_id": merge_field.merge_id,
            "tag": merge_field.tag,
            "name": merge_field.name,
            "type": merge_field.type,
            "required": merge_field.required,
            "default_value": merge_field.default_value,
            "public": merge_field.public,
            "display_order": merge_field.display_order,
            "options": dict(merge_field.options),
            "help_text": merge_field.help_text,
            "list_id": self.id,
            "_links": links(
                f"/lists/{self.id}/merge-fields/{merge_field.merge_id}",
                ("self", "GET"),
                ("update", "PATCH"),
                ("delete", "DELETE"),
            ),
        }

    def set_status(self, member: Member, status: str) -> None:
        """Every status a member takes goes through here, so compliance state is never missed."""
        member.status = status
        if status in COMPLIANCE_STATUSES:
            self.compliance.add(member.email_address.lower())

    def in_compliance_state(self, email: str) -> bool:
        return email.lower() in self.compliance

    def tag_id(self, name: str) -> int:
        """The tag's id, which is also its static segment's id: naming a tag makes the segment exist."""
        if name not in self.tag_ids:
            segment_id = 10_000 + len(self.tag_ids) + 1
            self.tag_ids[name] = segment_id
            self.segments[segment_id] = StaticSegment(segment_id, name)
        return self.tag_ids[name]

    def add_tag(self, member: Member, name: str) -> bool:
        """Make the tag active on the member; True (and a tag event) when it was not already."""
        segment = self.segments[self.tag_id(name)]
        if name in member.tags:
            return False
        member.tags[name] = now_iso()
        segment.updated_at = member.tags[name]
        self.tag_events.append(
            {"list_id": self.id, "email_address": member.email_address, "tag": name, "at": member.tags[name]}
        )
        return True

    def remove_tag(self, member: Member, name: str) -> bool:
        """Make the tag inactive on the member; True when it was active."""
        if member.tags.pop(name, None) is None:
            return False
        if name in self.tag_ids:
            self.segments[self.tag_ids[name]].updated_at = now_iso()
        return True

    def segment_members(self, segment: StaticSegment) -> list[Member]:
        return [member for member in self.members.values() if segment.name in member.tags]

    def segment_json(self, segment: StaticSegment) -> dict[str, Any]:
        return {
            "id": segment.id,
            "name": segment.name,
            "member_count": len(self.segment_members(segment)),
            "type": "static",
            "created_at": segment.created_at,
            "updated_at": segment.updated_at,
            "options": {},
            "list_id": self.id,
            "_links": links(
                f"/lists/{self.id}/segments/{segment.id}",
                ("self", "GET"),
                ("update", "PATCH"),
                ("delete", "DELETE"),
            ),
        }

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
            "timestamp_opt": member.timestamp_opt,
            "marketing_permissions": [
                {"marketing_permission_id": permission, "text": "", "enabled": enabled}
                for permission, enabled in member.marketing_permissions.items()
            ],
            "last_changed": member.last_changed,
            "language": "",
            "vip": False,
            "source": "API - Generic",
            "tags_count": len(tags),
            "tags": tags,
            "list_id": self.id,
            "_links": links(
                f"/lists/{self.id}/members/{member.id}",
                ("self", "GET"),
                ("update", "PATCH"),
                ("upsert", "PUT"),
                ("delete", "DELETE"),
            ),
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


class SandboxState(BaseState):
    """All Mailchimp sandbox data; tests read and seed it directly."""

    def __init__(
        self,
        list_ids: tuple[str, ...] = ("list123",),
        merge_fields: tuple[tuple[str, str, str], ...] = (),
        journeys: tuple[tuple[str, str], ...] | None = None,
    ):
        super().__init__()
        self._initial_list_ids = tuple(list_ids)
        self._initial_merge_fields = tuple(merge_fields)
        """(tag, name, type) added to every audience after Mailchimp's defaults, as an operator would."""
        self._initial_journeys = None if journeys is None else frozenset(journeys)
        self.lists: dict[str, Audience] = {}
        self.compliance_review: set[str] = set()
        self.journey_triggers: list[dict[str, str]] = []
        self.journeys: set[tuple[str, str]] | None = None
        """(journey id, step id) of each API-trigger starting point the account has. None: journeys are not modelled
        and every trigger finds its journey (for callers that never name one); once any is known, only those."""
        self.signup_throttled: set[str] = set()
        """Lowercased addresses Mailchimp's signup throttle holds back (signed up to many lists very recently)."""
        self.shed_calls = 0
        """API calls still to be answered with a bare 403, as Mailchimp's load shedder does at very high volume."""
        self.webhooks = WebhookRegistry()
        self.reset()

    @property
    def tag_events(self) -> list[dict[str, str]]:
        """Every time a tag became active on a member, in every audience (what a "tag added" journey counts)."""
        with self.lock:
            return [event for audience in self.lists.values() for event in audience.tag_events]

    def reset(self) -> None:
        with self.lock:
            self.lists = {list_id: self._new_audience(list_id) for list_id in self._initial_list_ids}
            self.compliance_review.clear()
            self.journey_triggers.clear()
            self.journeys = None if self._initial_journeys is None else set(self._initial_journeys)
            self.signup_throttled.clear()
            self.shed_calls = 0
            self.webhooks.reset()
            super().reset()

    # -- lookups

    def _new_audience(self, list_id: str, name: str | None = None) -> Audience:
        audience = Audience(list_id, name or f"Sandbox list {list_id}")
        for tag, field_name, type_, options in DEFAULT_MERGE_FIELDS:
            audience.add_merge_field(tag, field_name, type_, options)
        for tag, field_name, type_ in self._initial_merge_fields:
            audience.add_merge_field(tag, field_name, type_)
        return audience

    def create_list(self, list_id: str, name: str | None = None) -> Audience:
        with self.lock:
            if list_id not in self.lists:
                self.lists[list_id] = self._new_audience(list_id, name)
            return self.lists[list_id]

    def audience(self, list_id: str) -> Audience:
        with self.lock:
            audience = self.lists.get(list_id)
        if audience is None:
            raise not_found()
        return audience

    def get_member(self, list_id: str, hash_or_email: str) -> Member | None:
        with self.lock:
            return self.audience(list_id).members.get(hash_from_path(hash_or_email))

    def has_journey(self, journey_id: str, step_id: str) -> bool:
        with self.lock:
            return self.journeys is None or (journey_id, step_id) in self.journeys

    def add_journey(self, journey_id: str, step_id: str) -> None:
        """An API-trigger starting point built in Mailchimp's journey editor (the API cannot create one)."""
        with self.lock:
            self.journeys = {*(self.journeys or ()), (journey_id, step_id)}

    def shed_this_call(self) -> bool:
        """True (and one fewer left) while calls are being shed."""
        with self.lock:
            if self.shed_calls <= 0:
                return False
            self.shed_calls -= 1
            return True

    def in_compliance_review(self, email: str) -> bool:
        with self.lock:
            return email.lower() in {address.lower() for address in self.compliance_review}

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
            # A member who got here some other way (a signup form, an import) carries Mailchimp's own record of it.
            if status != "transactional":
                member.timestamp_signup = now_iso()
            if status in ("subscribed", *COMPLIANCE_STATUSES):
                member.timestamp_opt = member.timestamp_signup
            audience.set_status(member, status)
            member.tags = {name: now_iso() for name in tags}
            audience.members[member.id] = member
            return audience.member_json(member)

    def confirm_opt_in(self, list_id: str, email: str) -> dict[str, Any]:
        """The member clicks the confirmation link: `pending` becomes `subscribed`, compliance state ends."""
        with self.lock:
            audience = self.audience(list_id)
            member = audience.members.get(subscriber_hash(email))
            if member is None:
                raise not_found()
            if member.status != "pending":
                raise ValueError(f"{email} is {member.status}, not pending: there is no opt-in to confirm")
            audience.set_status(member, "subscribed")
            audience.compliance.discard(member.email_address.lower())
            member.timestamp_opt = now_iso()
            member.touch()
            answer, data = audience.member_json(member), webhook_data(member)
        self.webhooks.send(list_id, "subscribe", data, "user")
        return answer

    # -- the member's own actions (and Mailchimp's), each followed by the audience's webhooks

    def unsubscribe(self, list_id: str, email: str, reason: str = "manual") -> dict[str, Any]:
        """The member clicks the unsubscribe link of a campaign."""
        member, data = self._change(list_id, email, "unsubscribed")
        self.webhooks.send(list_id, "unsubscribe", {"action": "unsub", "reason": reason, **data}, "user")
        return member

    def clean(self, list_id: str, email: str, reason: str = "hard") -> dict[str, Any]:
        """The address bounces for good (`hard`) or its owner reports abuse: Mailchimp cleans it."""
        member, data = self._change(list_id, email, "cleaned")
        self.webhooks.send(list_id, "cleaned", {"reason": reason, "email": data["email"]}, "admin")
        return member

    def change_email(self, list_id: str, email: str, new_email: str) -> dict[str, Any]:
        """The member changes their address through the update-profile form."""
        with self.lock:
            audience = self.audience(list_id)
            member = audience.members.pop(subscriber_hash(email), None)
            if member is None:
                raise not_found()
            member.email_address = new_email
            member.merge_fields["EMAIL"] = new_email
            member.touch()
            audience.members[member.id] = member
            answer = audience.member_json(member)
        data = {"new_id": member.id, "new_email": new_email, "old_email": email}
        self.webhooks.send(list_id, "upemail", data, "user")
        return answer

    def _change(self, list_id: str, email: str, status: str) -> tuple[dict[str, Any], dict[str, Any]]:
        with self.lock:
            audience = self.audience(list_id)
            member = audience.members.get(subscriber_hash(email))
            if member is None:
                raise not_found()
            audience.set_status(member, status)
            member.touch()
            return audience.member_json(member), webhook_data(member)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "lists": {
                    list_id: {
                        "name": audience.name,
                        "members": [audience.member_json(m) for m in audience.members.values()],
                        "tags": sorted(audience.tag_ids),
                        "tag_events": list(audience.tag_events),
                        "forgotten": sorted(audience.forgotten),
                        "compliance_state": sorted(audience.compliance),
                        "merge_fields": sorted(f.tag for f in audience.merge_fields.values()),
                    }
                    for list_id, audience in self.lists.items()
                },
                "compliance_review": sorted(self.compliance_review),
                "journey_triggers": list(self.journey_triggers),
                "journeys": None if self.journeys is None else sorted(self.journeys),
                "signup_throttled": sorted(self.signup_throttled),
                "shed_calls": self.shed_calls,
                **self.webhooks.snapshot(),
                **super().snapshot(),
            }
