"""Mailchimp Marketing API v3: the few calls onboarding and the drip make, with Mailchimp's failures turned into
our own errors.

Plain `requests` with one keep-alive session rather than the official client: the official client opens a new
connection per call, parses errors inconsistently (problem+json arrives as text, empty-bodied 429s are returned
instead of raised) and adds ~100 ms to a cold start. The base URL comes from configuration, so the same code talks
to Mailchimp or to the local sandbox.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from memberflow.privacy import redact_emails, subscriber_hash
from memberflow.retry import PermanentFailure, TransientFailure, with_brief_retries

DEFAULT_TIMEOUT_SECONDS = 5.0


class PermanentRefusal(PermanentFailure):
    """Mailchimp refused this member for a reason a retry will not change; record it, never retry it."""

    def __init__(self, title: str, detail: str, status: int) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.title = title
        self.detail = detail
        self.status = status


class ComplianceState(PermanentRefusal):
    """The address unsubscribed, bounced or is under review: it cannot be set to subscribed by API."""


class ForgottenEmail(PermanentRefusal):
    """Permanently deleted (GDPR): it can never be re-added by API, not even as pending."""


class AccountProblem(Exception):
    """Mailchimp refused the request itself (bad API key, unknown audience or journey, no access): no member
    is at fault and an operator can fix it, so the event is retried and finally parked, never dropped."""


class NotFound(AccountProblem):
    """404: the member, or the audience or journey itself (Mailchimp's answer does not say which)."""


class SignupThrottled(TransientFailure):
    """'Signed up to a lot of lists very recently': try again in hours, not seconds."""


SIGNUP_THROTTLE_RETRY_SECONDS = 6 * 3600


@dataclass(frozen=True)
class MailchimpMember:
    email: str
    status: str
    """subscribed, unsubscribed, cleaned, pending, transactional or archived."""


def api_url_for_key(api_key: str) -> str:
    """Mailchimp's own base URL for a key: the data centre is the key's suffix (`...-us21`)."""
    _, _, data_centre = api_key.rpartition("-")
    if not data_centre:
        raise ValueError("a Mailchimp API key ends in its data centre, e.g. ...-us21")
    return f"https://{data_centre}.api.mailchimp.com/3.0"


class MailchimpClient:
    def __init__(self, api_key: str, base_url: str = "", timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        import requests

        self._base_url = (base_url or api_url_for_key(api_key)).rstrip("/")
        self._timeout = timeout
        self._session = requests.Session()
        self._session.auth = ("memberflow", api_key)

    # -- members -----------------------------------------------------------------------------------------------

    def upsert_member(
        self, list_id: str, email: str, *, status_if_new: str, merge_fields: dict[str, str]
    ) -> MailchimpMember:
        """Create or update without touching an existing member's status (so an unsubscriber stays one)."""
        body = {"email_address": email, "status_if_new": status_if_new, "merge_fields": merge_fields}
        answer = self._call(
            "PUT", f"/lists/{list_id}/members/{subscriber_hash(email)}", body, {"skip_merge_validation": "true"}
        )
        return MailchimpMember(email=answer.get("email_address", email), status=answer["status"])

    def set_status(self, list_id: str, email: str, status: str) -> MailchimpMember:
        answer = self._call("PATCH", f"/lists/{list_id}/members/{subscriber_hash(email)}", {"status": status})
        return MailchimpMember(email=answer.get("email_address", email), status=answer["status"])

    def member_status(self, list_id: str, email: str) -> str | None:
        """The member's status, or None when the audience has no such member."""
        try:
            answer = self._call(
                "GET", f"/lists/{list_id}/members/{subscriber_hash(email)}", params={"fields": "status"}
            )
        except NotFound:
            if not self.list_exists(list_id):
                raise
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
        self._call("POST", f"/lists/{list_id}/members/{subscriber_hash(email)}/tags", body)

    def trigger_journey(self, journey_id: str, step_id: str, email: str) -> None:
        """Sent once, never retried here: after a timeout or a 5xx Mailchimp may have started the journey."""
        path = f"/customer-journeys/journeys/{journey_id}/steps/{step_id}/actions/trigger"
        self._send("POST", path, {"email_address": email}, None)

    # -- transport ---------------------------------------------------------------------------------------------

    def _call(
        self, method: str, path: str, body: dict[str, Any] | None = None, params: dict[str, str] | None = None
    ) -> dict[str, Any]:
        return with_brief_retries(lambda: self._send(method, path, body, params), attempts=2)

    def _send(
        self, method: str, path: str, body: dict[str, Any] | None, params: dict[str, str] | None
    ) -> dict[str, Any]:
        import requests

        try:
            response = self._session.request(
                method, self._base_url + path, json=body, params=params, timeout=self._timeout
            )
        except requests.RequestException as error:
            raise TransientFailure(f"Mailchimp unreachable: {type(error).__name__}") from error
        if response.status_code < 300:
            return response.json() if response.content else {}
        raise _error_from(response.status_code, response.text, response.headers.get("Retry-After"))


def _error_from(status: int, text: str, retry_after_header: str | None) -> Exception:
    try:
        problem = json.loads(text) if text else {}
    except ValueError:
        problem = {}
    if not isinstance(problem, dict):
        problem = {}
    title = str(problem.get("title") or f"HTTP {status}")
    detail = redact_emails(str(problem.get("detail") or ""))
    if status == 429 or status >= 500 or (status == 403 and not problem):
        # A bare 403 is Mailchimp shedding load at very high volume, not a refusal.
        # Mailchimp sends no Retry-After; honour one if a proxy adds it.
        retry_after = float(retry_after_header) if retry_after_header and retry_after_header.isdigit() else None
        return TransientFailure(f"Mailchimp {status} {title}", retry_after)
    if title == "Member In Compliance State":
        return ComplianceState(title, detail, status)
    if title == "Forgotten Email Not Subscribed":
        return ForgottenEmail(title, detail, status)
    if "signed up to a lot of lists very recently" in detail:
        return SignupThrottled(f"Mailchimp {title}: signup throttled", SIGNUP_THROTTLE_RETRY_SECONDS)
    if status == 400:
        return PermanentRefusal(title, detail, status)
    if status == 404:
        return NotFound(f"Mailchimp 404 {title}: {detail}")
    return AccountProblem(f"Mailchimp {status} {title}: {detail}")
