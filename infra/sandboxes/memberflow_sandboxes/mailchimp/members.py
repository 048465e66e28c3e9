"""Mailchimp's member lifecycle rules, the part of the sandbox clients most often get wrong against."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from memberflow_sandboxes.mailchimp import fields
from memberflow_sandboxes.mailchimp.problems import ApiError, field_error, invalid_resource
from memberflow_sandboxes.mailchimp.state import (
    COMPLIANCE_STATUSES,
    Audience,
    Member,
    SandboxState,
    subscriber_hash,
)

# What Mailchimp accepts as an address: an ASCII dot-atom before the @ (Mailchimp cannot process UTF-8 in the
# prefix, https://mailchimp.com/help/international-characters-in-mailchimp/; internationalised domains are fine), at
# most 64 octets before the @ and 254 in all (RFC 5321), a domain of host-name labels. Anything else, including
# controls, NUL and invisible formatting characters, is refused as "looks fake or invalid".
_PREFIX = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*", re.ASCII)
_LABEL = re.compile(r"[^\W_]+(?:-+[^\W_]+)*")
MAX_PREFIX_OCTETS = 64
MAX_ADDRESS_OCTETS = 254


def looks_fake(email: str) -> bool:
    """True when Mailchimp would reject the address as fake or invalid."""
    local, at, domain = email.rpartition("@")
    if not at or not local or not domain or "@" in local:
        return True
    try:
        octets = len(email.encode())
    except UnicodeEncodeError:
        return True
    labels = domain.split(".")
    well_formed = (
        octets <= MAX_ADDRESS_OCTETS
        and len(local) <= MAX_PREFIX_OCTETS
        and _PREFIX.fullmatch(local) is not None
        and len(labels) > 1
        and all(len(label.encode()) <= 63 and _LABEL.fullmatch(label) for label in labels)
        and not labels[-1].isdigit()
    )
    if not well_formed:
        return True
    return domain.lower() == "example.invalid" or domain.lower().endswith(".invalid") or "fake" in local.lower()


MERGE_FIELDS_INVALID = "Your merge fields were invalid."
"""Mailchimp's 400 "Invalid Resource" detail, with `errors: [{"field": "<TAG>", "message"}]`, as users captured it:
"Please enter a value" for a required field left empty (ibericode/mailchimp-for-wordpress issue #545) and "Please
enter a complete address" for an address field (verbb/formie issue #2387). "Please enter a number" and "Please enter
text" (a wrong type) follow the same wording but were found in no capture."""
SIGNUP_THROTTLE_DETAIL = (
    "{email} has signed up to a lot of lists very recently; we're not allowing more signups for now"
)
"""Mailchimp's wording for its temporary per-address throttle (clients match "signed up to a lot of lists very
recently" to retry hours later rather than give up)."""
_ADDRESS_PARTS = ("addr1", "city", "state", "zip")


def checked_merge_fields(
    audience: Audience, body: dict[str, Any], *, new_member: bool, skip_required: bool
) -> dict[str, Any]:
    """The request's merge fields, refused as Mailchimp refuses them. A value no merge field can hold (true, a list)
    fails the request's schema. A value of the wrong type for its field, or a required field left empty on a new
    member (unless `?skip_merge_validation=true`), is "Your merge fields were invalid." with the field named. Tags the
    audience has no field for are stored unchecked: what Mailchimp does with them could not be confirmed."""
    values = fields.merge_fields(body)
    for tag, value in values.items():
        if isinstance(value, bool) or not isinstance(value, str | int | float | dict | None):
            raise field_error(f"merge_fields.{tag}", "Data did not match any of the schemas described in anyOf.")
    by_tag = {merge_field.tag: merge_field for merge_field in audience.merge_fields.values()}
    errors = [
        {"field": tag, "message": message}
        for tag, value in values.items()
        if tag in by_tag and value is not None and (message := _wrong_type(by_tag[tag].type, value))
    ]
    if new_member and not skip_required:
        errors += [
            {"field": tag, "message": "Please enter a value"}
            for tag, merge_field in by_tag.items()
            if merge_field.required and values.get(tag) in (None, "") and tag not in {e["field"] for e in errors}
        ]
    if errors:
        raise invalid_resource(MERGE_FIELDS_INVALID, errors)
    return values


def _wrong_type(type_: str, value: Any) -> str | None:
    """Why the value does not fit a merge field of this type, or None when it does."""
    if type_ == "number":
        return None if value == "" or _is_number(value) else "Please enter a number"
    if type_ == "address":
        if isinstance(value, dict) and not all(str(value.get(part) or "").strip() for part in _ADDRESS_PARTS):
            return "Please enter a complete address"
        return None if isinstance(value, dict | str) else "Please enter a complete address"
    return None if isinstance(value, str) else "Please enter text"


def _is_number(value: Any) -> bool:
    if isinstance(value, int | float):
        return True
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return isinstance(value, str)


def consent_fields(body: dict[str, Any]) -> dict[str, Any]:
    """`timestamp_signup` / `timestamp_opt` (ISO 8601, or Mailchimp's `YYYY-MM-DD HH:MM:SS`) and
    `marketing_permissions` (`[{"marketing_permission_id", "enabled"}]`), validated as Mailchimp does."""
    found: dict[str, Any] = {}
    for name in ("timestamp_signup", "timestamp_opt"):
        value = body.get(name)
        if value is None or value == "":
            continue
        try:
            moment = datetime.fromisoformat(str(value).replace(" ", "T"))
        except ValueError:
            raise field_error(name, "Data presented is not a valid ISO 8601 date and time.") from None
        found[name] = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    permissions = body.get("marketing_permissions")
    if permissions is not None:
        if not isinstance(permissions, list) or not all(
            isinstance(item, dict) and isinstance(item.get("marketing_permission_id"), str) for item in permissions
        ):
            raise field_error("marketing_permissions", "Schema describes an array of marketing permission objects.")
        found["marketing_permissions"] = {
            item["marketing_permission_id"]: bool(item.get("enabled")) for item in permissions
        }
    return found


def apply_consent(member: Member, consent: dict[str, Any]) -> None:
    for name in ("timestamp_signup", "timestamp_opt"):
        if name in consent:
            setattr(member, name, consent[name].strftime("%Y-%m-%dT%H:%M:%S+00:00"))
    member.marketing_permissions.update(consent.get("marketing_permissions", {}))


class MemberRules:
    """Creation, upsert, status changes, archive and forget, with Mailchimp's refusals."""

    def __init__(self, state: SandboxState):
        self.state = state

    def create(self, audience: Audience, body: dict[str, Any], *, skip_required: bool = False) -> Member:
        email = fields.required_string(body, "email_address")
        status = fields.status_field(body, "status", required=True)
        existing = audience.members.get(subscriber_hash(email))
        if existing and existing.status != "archived":
            raise ApiError(
                400,
                "Member Exists",
                f"{email} is already a list member. Use PUT to insert or update list members.",
            )
        return self._admit(audience, email, status, body, archived=existing, skip_required=skip_required)

    def upsert(
        self, audience: Audience, path_hash: str, body: dict[str, Any], *, skip_required: bool = False
    ) -> Member:
        email = fields.optional_string(body, "email_address")
        if email is not None and subscriber_hash(email) != path_hash:
            raise invalid_resource(
                "The subscriber hash in the URL does not match the hash of the email_address in the request body.",
                [{"field": "email_address", "message": "Does not match the subscriber hash in the URL."}],
            )
        status = fields.status_field(body, "status", required=False)
        status_if_new = fields.status_field(body, "status_if_new", required=False)
        member = audience.members.get(path_hash)
        if member and member.status != "archived":
            return self.update(audience, member, body)
        email = email or (member.email_address if member else None)
        if email is None:
            raise field_error("email_address", "This value should not be blank.")
        # An archived member is re-created, yet an explicit `status` still applies to it.
        new_status = (status if member else None) or status_if_new
        if new_status is None:
            raise field_error("status_if_new", "This value should not be blank.")
        return self._admit(audience, email, new_status, body, archived=member, skip_required=skip_required)

    def update(self, audience: Audience, member: Member, body: dict[str, Any]) -> Member:
        status = fields.status_field(body, "status", required=False)
        merge_fields = checked_merge_fields(audience, body, new_member=False, skip_required=True)
        consent = consent_fields(body)
        if status is not None:
            self._change_status(audience, member, status)
        member.merge_fields.update(merge_fields)
        apply_consent(member, consent)
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
        for name, active in fields.tag_changes(body):
            if active:
                audience.add_tag(member, name)
            else:
                audience.remove_tag(member, name)
        member.touch()

    # -- internals

    def _admit(
        self,
        audience: Audience,
        email: str,
        status: str,
        body: dict[str, Any],
        archived: Member | None,
        *,
        skip_required: bool,
    ) -> Member:
        """Add a new member, or bring back an archived one."""
        merge_fields = checked_merge_fields(audience, body, new_member=True, skip_required=skip_required)
        tags = fields.string_list(body, "tags")
        consent = consent_fields(body)
        if email.lower() in audience.forgotten:
            raise ApiError(
                400,
                "Forgotten Email Not Subscribed",
                f"{email} was permanently deleted and cannot be re-imported. "
                "The contact must re-subscribe to get back on the list.",
            )
        if looks_fake(email):
            raise invalid_resource(f"{email} looks fake or invalid, please enter a real email address.")
        if email.lower() in self.state.signup_throttled:
            raise invalid_resource(SIGNUP_THROTTLE_DETAIL.format(email=email))
        if status == "subscribed":
            self._ensure_may_subscribe(audience, email, archived.status_before_archive if archived else None)
        member = archived or Member(email, status, audience.id)
        audience.set_status(member, status)
        member.status_before_archive = None
        member.merge_fields.update(merge_fields)
        apply_consent(member, consent)
        for name in tags:
            audience.add_tag(member, name)
        member.touch()
        audience.members[member.id] = member
        return member

    def _change_status(self, audience: Audience, member: Member, status: str) -> None:
        current = member.status_before_archive if member.status == "archived" else member.status
        if status == "subscribed" and member.status != "subscribed":
            self._ensure_may_subscribe(audience, member.email_address, current)
        audience.set_status(member, status)
        member.status_before_archive = None

    def _ensure_may_subscribe(self, audience: Audience, email: str, current_status: str | None) -> None:
        """Compliance state sticks to the address until a `pending` re-opt-in is confirmed (`confirm_opt_in`)."""
        if (
            current_status in COMPLIANCE_STATUSES
            or audience.in_compliance_state(email)
            or self.state.in_compliance_review(email)
        ):
            raise ApiError(
                400,
                "Member In Compliance State",
                f"{email} is already a list member in compliance state due to unsubscribe, bounce, "
                "or compliance review and cannot be subscribed.",
            )
