"""Mailchimp's member lifecycle rules, the part of the sandbox clients most often get wrong against."""

from __future__ import annotations

import re
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


class MemberRules:
    """Creation, upsert, status changes, archive and forget, with Mailchimp's refusals."""

    def __init__(self, state: SandboxState):
        self.state = state

    def create(self, audience: Audience, body: dict[str, Any]) -> Member:
        email = fields.required_string(body, "email_address")
        status = fields.status_field(body, "status", required=True)
        existing = audience.members.get(subscriber_hash(email))
        if existing and existing.status != "archived":
            raise ApiError(
                400,
                "Member Exists",
                f"{email} is already a list member. Use PUT to insert or update list members.",
            )
        return self._admit(audience, email, status, body, archived=existing)

    def upsert(self, audience: Audience, path_hash: str, body: dict[str, Any]) -> Member:
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
        return self._admit(audience, email, new_status, body, archived=member)

    def update(self, audience: Audience, member: Member, body: dict[str, Any]) -> Member:
        status = fields.status_field(body, "status", required=False)
        merge_fields = fields.merge_fields(body)
        if status is not None:
            self._change_status(audience, member, status)
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
        for name, active in fields.tag_changes(body):
            if active:
                audience.add_tag(member, name)
            else:
                audience.remove_tag(member, name)
        member.touch()

    # -- internals

    def _admit(
        self, audience: Audience, email: str, status: str, body: dict[str, Any], archived: Member | None
    ) -> Member:
        """Add a new member, or bring back an archived one."""
        merge_fields = fields.merge_fields(body)
        tags = fields.string_list(body, "tags")
        timestamps = {name: fields.timestamp(body, name) for name in ("timestamp_signup", "timestamp_opt")}
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
            self._ensure_may_subscribe(audience, email, archived.status_before_archive if archived else None)
        member = archived or Member(email, status, audience.id)
        audience.set_status(member, status)
        member.status_before_archive = None
        member.merge_fields.update(merge_fields)
        for name, value in timestamps.items():
            if value is not None:
                setattr(member, name, value)
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
