"""Mailchimp Marketing API v3: the few calls onboarding and the drip make, with Mailchimp's failures turned into
`memberflow.errors`.

Plain HTTP through the shared transport rather than the official client: the official client opens a new
connection per call, does not retry, parses problem+json inconsistently (it arrives as text; empty-bodied errors
are returned instead of raised) and adds ~100 ms to a cold start. The base URL comes from configuration, so the
same code talks to Mailchimp or to the local sandbox.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from memberflow.adapters.http_json import DEFAULT_ATTEMPTS, HttpAnswer, HttpJsonTransport
from memberflow.bulk import (
    SIGNUP_THROTTLE_RETRY_SECONDS,
    SIGNUP_THROTTLE_TEXT,
    BulkMember,
    BulkOutcome,
    chunks,
    refusal_from,
)
from memberflow.errors import (
    AccountProblem,
    AddressThrottled,
    ComplianceState,
    CredentialsRejected,
    ForgottenAddress,
    NotFound,
    PermanentRefusal,
    RateLimited,
    ResourceGone,
    Transient,
)
from memberflow.ports import ListMember
from memberflow.privacy import redact_emails, subscriber_hash
from memberflow.retry import worst_case_seconds

DEFAULT_TIMEOUT_SECONDS = 5.0
BULK_TIMEOUT_SECONDS = 20.0
"""A batch subscribe or a segment change of up to 500 addresses takes Mailchimp far longer than one member's call.
Such a call is sent once: one that timed out may well have been done, and sending it again would only double the
load on the account's 10 connections (repeating it later is safe: its members come back as existing)."""
SEGMENT_PAGE_SIZE = 1000
"""Mailchimp's largest page."""

# A call's path as a route template, so that `MailchimpList.calls` counts endpoints, not audiences or members.
_ROUTE_PARTS = (
    (re.compile(r"^/lists/[^/]+"), "/lists/{list_id}"),
    (re.compile(r"/members/[^/]+"), "/members/{subscriber_hash}"),
    (re.compile(r"/segments/[^/]+"), "/segments/{segment_id}"),
    (re.compile(r"/merge-fields/[^/]+"), "/merge-fields/{merge_id}"),
    (re.compile(r"/journeys/[^/]+/steps/[^/]+"), "/journeys/{journey_id}/steps/{step_id}"),
)


def route_of(path: str) -> str:
    for pattern, template in _ROUTE_PARTS:
        path = pattern.sub(template, path)
    return path


_DATA_CENTRE = re.compile(r"[a-z]{2,8}[0-9]{1,4}")


def api_url_for_key(api_key: str) -> str:
    """Mailchimp's own base URL for a key: the data centre is the key's suffix (`...-us21`). A key without one is
    refused here: anything else after the last `-` (or the whole key, with none) would become a host name, and the
    key would go out in DNS lookups."""
    secret, dash, data_centre = api_key.strip().rpartition("-")
    if not (secret and dash and _DATA_CENTRE.fullmatch(data_centre)):
        raise ValueError("a Mailchimp API key ends in its data centre, e.g. ...-us21")
    return f"https://{data_centre}.api.mailchimp.com/3.0"


def error_from(answer: HttpAnswer) -> Exception:
    """Mailchimp's refusal (RFC 7807 problem+json, or a bare status) as one of our errors."""
    status = answer.status
    try:
        problem = json.loads(answer.text) if answer.text else {}
    except ValueError:
        problem = {}
    if not isinstance(problem, dict):
        problem = {}
    title = str(problem.get("title") or f"HTTP {status}")
    detail = redact_emails(str(problem.get("detail") or ""))
    if status == 429 or (status == 403 and not problem):
        # A bare 403 is Mailchimp shedding load at very high volume, not a refusal. Mailchimp sends no
        # Retry-After; honour one if a proxy adds it.
        return RateLimited(f"Mailchimp {status} {title}", answer.retry_after())
    if status >= 500:
        return Transient(f"Mailchimp {status} {title}", answer.retry_after())
    if title == "Member In Compliance State":
        return ComplianceState(title, detail, status)
    if title == "Forgotten Email Not Subscribed":
        return ForgottenAddress(title, detail, status)
    if SIGNUP_THROTTLE_TEXT in detail:
        return AddressThrottled(f"Mailchimp {title}: signup throttled", SIGNUP_THROTTLE_RETRY_SECONDS)
    if status == 400:
        return PermanentRefusal(title, detail, status)
    if status == 401:
        return CredentialsRejected(f"Mailchimp 401 {title}: {detail}", status)
    if status == 404:
        return NotFound(f"Mailchimp 404 {title}: {detail}", status)
    return AccountProblem(f"Mailchimp {status} {title}: {detail}", status)


def _unique(emails: Sequence[str]) -> list[str]:
    """The addresses once each (Mailchimp's addresses are case-insensitive), in their first spelling."""
    seen: dict[str, str] = {}
    for email in emails:
        seen.setdefault(email.lower(), email)
    return list(seen.values())


def batch_outcome(sent: Sequence[BulkMember], answer: Mapping[str, Any]) -> BulkOutcome:
    """Mailchimp's answer to one batch subscribe as an outcome per member sent. Mailchimp answers 200 even when
    members fail: `errors` lists them, `ERROR_CONTACT_EXISTS` being a member left as it was (no update_existing).
    A member the answer does not mention is refused rather than taken for done."""
    ours = {member.email.lower(): member.email for member in sent}
    outcome = BulkOutcome()

    def claim(email: object) -> str | None:
        return ours.pop(str(email).lower(), None)

    for member in answer.get("new_members") or []:
        if (email := claim(member.get("email_address"))) is not None:
            outcome.created.append(email)
    for member in answer.get("updated_members") or []:
        if (email := claim(member.get("email_address"))) is not None:
            outcome.updated.append(email)
    for error in answer.get("errors") or []:
        if (email := claim(error.get("email_address"))) is None:
            continue
        code = str(error.get("error_code") or "")
        if code == "ERROR_CONTACT_EXISTS":
            outcome.existing.append(email)
        else:
            outcome.refused[email] = refusal_from(code, str(error.get("error") or ""))
    for email in ours.values():
        outcome.refused[email] = refusal_from("NOT_REPORTED", "Mailchimp's answer did not mention this member.")
    return outcome


def segment_outcome(sent: Sequence[str], answer: Mapping[str, Any], done_field: str) -> BulkOutcome:
    """Mailchimp's answer to one static-segment call (`members_added` or `members_removed` as `done_field`): the
    members changed, those refused (`errors[].email_addresses`), and the rest, which Mailchimp left as they were
    (already as asked, or not in the audience)."""
    ours = {email.lower(): email for email in sent}
    outcome = BulkOutcome()
    for member in answer.get(done_field) or []:
        if (email := ours.pop(str(member.get("email_address", "")).lower(), None)) is not None:
            outcome.updated.append(email)
    for error in answer.get("errors") or []:
        refusal = refusal_from(str(error.get("error_code") or ""), str(error.get("error") or ""))
        for address in error.get("email_addresses") or []:
            if (email := ours.pop(str(address).lower(), None)) is not None:
                outcome.refused[email] = refusal
    outcome.existing.extend(ours.values())
    return outcome


class MailchimpList:
    """The `MailingList` and `BulkMailingList` ports on Mailchimp. `api_key` is read through a callable so that a
    401 (a rotated key) re-reads the secret once instead of failing until the next cold start. `calls` counts the
    calls made per endpoint ("POST /lists/{list_id}"), for benches."""

    def __init__(
        self,
        api_key: Callable[[bool], str],
        base_url: str = "",
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        bulk_timeout: float = BULK_TIMEOUT_SECONDS,
    ) -> None:
        self._api_key = api_key
        self._base_url = base_url
        self._timeout = timeout
        self._bulk_timeout = max(bulk_timeout, timeout)
        self._transport: HttpJsonTransport | None = None
        self._segment_ids: dict[tuple[str, str], str] = {}
        self.calls: Counter[str] = Counter()

    @property
    def worst_case_call_seconds(self) -> float:
        """The longest one call can take: each of its attempts running into the timeout, with the longest pause."""
        return worst_case_seconds(self._timeout, DEFAULT_ATTEMPTS)

    @property
    def worst_case_bulk_call_seconds(self) -> float:
        """The longest one bulk call can take (sent once, see BULK_TIMEOUT_SECONDS)."""
        return worst_case_seconds(self._bulk_timeout, 1)

    @property
    def _http(self) -> HttpJsonTransport:
        """Built on the first call: a run with nothing to send never reads the key or loads the HTTP client."""
        if self._transport is None:
            key = self._api_key(False)
            try:
                base_url = self._base_url or api_url_for_key(key)
            except ValueError as problem:  # the key as stored: an operator must fix it, no member is at fault
                raise AccountProblem(f"Mailchimp: {problem}") from None
            self._transport = HttpJsonTransport(
                base_url,
                error_from,
                service="Mailchimp",
                timeout=self._timeout,
                auth=("memberflow", key),
            )
        return self._transport

    # -- members -----------------------------------------------------------------------------------------------

    def upsert_member(
        self,
        list_id: str,
        email: str,
        *,
        status_if_new: str,
        merge_fields: dict[str, str],
        consent_fields: Mapping[str, Any] | None = None,
    ) -> ListMember:
        """Create or update without touching an existing member's status (so an unsubscriber stays one)."""
        body = {
            **(consent_fields or {}),
            "email_address": email,
            "status_if_new": status_if_new,
            "merge_fields": merge_fields,
        }
        answer = self._call(
            "PUT", f"/lists/{list_id}/members/{subscriber_hash(email)}", body, {"skip_merge_validation": "true"}
        )
        return ListMember(email=answer.get("email_address", email), status=answer["status"])

    def set_status(
        self, list_id: str, email: str, status: str, consent_fields: Mapping[str, Any] | None = None
    ) -> ListMember:
        body = {**(consent_fields or {}), "status": status}
        answer = self._member_call(list_id, "PATCH", f"/lists/{list_id}/members/{subscriber_hash(email)}", body)
        return ListMember(email=answer.get("email_address", email), status=answer["status"])

    def member_status(self, list_id: str, email: str) -> str | None:
        """None when the audience has no such member."""
        path = f"/lists/{list_id}/members/{subscriber_hash(email)}"
        try:
            answer = self._member_call(list_id, "GET", path, params={"fields": "status"})
        except ResourceGone:
            return None
        return str(answer["status"])

    def list_exists(self, list_id: str) -> bool:
        try:
            self._call("GET", f"/lists/{list_id}", params={"fields": "id"})
        except NotFound:
            return False
        return True

    def add_tags(self, list_id: str, email: str, tags: list[str]) -> None:
        body = {"tags": [{"name": tag, "status": "active"} for tag in tags]}
        self._member_call(list_id, "POST", f"/lists/{list_id}/members/{subscriber_hash(email)}/tags", body)

    def trigger_journey(self, journey_id: str, step_id: str, email: str) -> None:
        """Retried like every other step: after a timeout or a 5xx Mailchimp may have started the journey, and
        a journey admits a contact only once (Mailchimp's default), so a repeat starts nothing twice. A 404 stays
        `NotFound`: the call names no audience, so whether the journey or the member is missing is for the caller to
        tell (see `memberflow.onboarding.welcome`)."""
        path = f"/customer-journeys/journeys/{journey_id}/steps/{step_id}/actions/trigger"
        self._call("POST", path, {"email_address": email})

    def forget(self, list_id: str, email: str) -> bool:
        """Permanent delete (GDPR): the contact and its history go, and Mailchimp refuses to re-add the address by
        API ("Forgotten Email Not Subscribed"); only the person signing up again through a Mailchimp form brings it
        back. A member already gone answers 404: that is done, unless the audience itself is missing."""
        path = f"/lists/{list_id}/members/{subscriber_hash(email)}/actions/delete-permanent"
        try:
            self._member_call(list_id, "POST", path)
        except ResourceGone:
            return False
        return True

    def _member_call(
        self,
        list_id: str,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """A call about one existing member. Mailchimp answers the same 404 for a missing audience and for a member
        who is not in it (archived or deleted by an admin since we added them): only the first is an account
        problem; the second is this member's, refused for good (`ResourceGone`), so the consumer does not back off
        for everyone."""
        try:
            return self._call(method, path, body, params)
        except NotFound as missing:
            if not self.list_exists(list_id):
                raise
            raise ResourceGone(
                "Member Not In Audience", f"Mailchimp's audience {list_id} has no such member", missing.status
            ) from missing

    # -- many members at once ----------------------------------------------------------------------------------

    def subscribe_many(
        self, list_id: str, members: Sequence[BulkMember], *, update_existing: bool = False
    ) -> BulkOutcome:
        """Batch subscribe, 500 members per call; an address given twice is sent once (its first entry). A whole
        call that fails raises; the calls before it took effect, and repeating them is safe: members they created
        then come back as `existing` (or `updated` with update_existing)."""
        unique: dict[str, BulkMember] = {}
        for member in members:
            unique.setdefault(member.email.lower(), member)
        outcome = BulkOutcome()
        for chunk in chunks(list(unique.values())):
            body = {"members": [member.as_mailchimp() for member in chunk], "update_existing": update_existing}
            answer = self._call("POST", f"/lists/{list_id}", body, {"skip_merge_validation": "true"}, bulk=True)
            outcome.merge(batch_outcome(chunk, answer))
        return outcome

    def tag_segment_id(self, list_id: str, tag: str) -> str:
        """The tag's static segment, found by paging through the audience's static segments (all of them are
        remembered), created when there is none."""
        key = (list_id, tag)
        if key not in self._segment_ids:
            self._load_segment_ids(list_id)
        if key not in self._segment_ids:
            try:
                created = self._call("POST", f"/lists/{list_id}/segments", {"name": tag, "static_segment": []})
            except PermanentRefusal:
                self._load_segment_ids(list_id)  # created meanwhile by someone else?
                if key not in self._segment_ids:
                    raise
            else:
                self._segment_ids[key] = str(created["id"])
        return self._segment_ids[key]

    def tag_many(self, list_id: str, tag: str, emails: Sequence[str]) -> BulkOutcome:
        return self._change_segment(list_id, tag, emails, "members_to_add", "members_added")

    def untag_many(self, list_id: str, tag: str, emails: Sequence[str]) -> BulkOutcome:
        return self._change_segment(list_id, tag, emails, "members_to_remove", "members_removed")

    def _change_segment(
        self, list_id: str, tag: str, emails: Sequence[str], send_field: str, done_field: str
    ) -> BulkOutcome:
        outcome = BulkOutcome()
        for chunk in chunks(_unique(emails)):
            body = {send_field: list(chunk)}
            try:
                answer = self._call("POST", self._segment_path(list_id, tag), body, bulk=True)
            except NotFound:
                # The segment went since we found it (the tag was deleted in Mailchimp): find or make it again.
                self._segment_ids.pop((list_id, tag), None)
                answer = self._call("POST", self._segment_path(list_id, tag), body, bulk=True)
            outcome.merge(segment_outcome(chunk, answer, done_field))
        return outcome

    def _segment_path(self, list_id: str, tag: str) -> str:
        return f"/lists/{list_id}/segments/{self.tag_segment_id(list_id, tag)}"

    def _load_segment_ids(self, list_id: str) -> None:
        offset = 0
        while True:
            page = self._call(
                "GET",
                f"/lists/{list_id}/segments",
                params={
                    "type": "static",
                    "count": str(SEGMENT_PAGE_SIZE),
                    "offset": str(offset),
                    "fields": "segments.id,segments.name,total_items",
                },
            )
            segments = page.get("segments") or []
            for segment in segments:
                self._segment_ids[(list_id, str(segment["name"]))] = str(segment["id"])
            offset += len(segments)
            if not segments or offset >= int(page.get("total_items") or 0):
                return

    # -- what `memberflow doctor` checks ---------------------------------------------------------------------------

    def ping(self) -> None:
        """Mailchimp answers and accepts the key, or the error says why not."""
        self._call("GET", "/ping")

    def audience_name(self, list_id: str) -> str:
        """The audience's name; `NotFound` when the key's account has no such audience."""
        return str(self._call("GET", f"/lists/{list_id}", params={"fields": "id,name"}).get("name", ""))

    def merge_fields(self, list_id: str) -> dict[str, str]:
        """The audience's merge fields: tag -> type (text, date, number, ...)."""
        answer = self._call(
            "GET",
            f"/lists/{list_id}/merge-fields",
            params={"count": "1000", "fields": "merge_fields.tag,merge_fields.type,total_items"},
        )
        return {str(field["tag"]): str(field.get("type", "")) for field in answer.get("merge_fields", [])}

    def is_available(self) -> bool:
        """Mailchimp's health check answers and accepts our key."""
        try:
            self._call("GET", "/ping")
        except (Transient, AccountProblem):
            return False
        return True

    # -- transport ---------------------------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        *,
        bulk: bool = False,
    ) -> dict[str, Any]:
        self.calls[f"{method} {route_of(path)}"] += 1
        how: dict[str, Any] = {"timeout": self._bulk_timeout, "attempts": 1} if bulk else {}
        try:
            return self._http.call(method, path, body, params, **how)
        except CredentialsRejected:
            # The key may have been rotated since this container read it: read the secret again, once.
            fresh = self._api_key(True)
            self._http.set_auth(("memberflow", fresh))
            return self._http.call(method, path, body, params, **how)
