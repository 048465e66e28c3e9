"""The Eventbrite API over `http_json`: the OAuth token from Secrets Manager (read again once when refused), brief
retries honouring Retry-After, continuation paging, and only ever the configured API host: a webhook's `api_url`
that leads anywhere else is refused before any request, so a forged delivery cannot make us call out with the token.

Eventbrite's rate limit counts calls per OAuth token and hour (429 `HIT_RATE_LIMIT`). A 429 that says how long to
wait (Retry-After) is waited out briefly as any other; one that does not is raised at once, never retried a moment
later: the hour's calls are spent, and a retry would only spend another. A metered client (`metered`) charges every
request it sends, each attempt and each attendee page, to a run's budget first.
"""

from __future__ import annotations

import copy
import json
import logging
import math
from collections.abc import Callable, Iterator
from typing import Any

from memberflow.adapters.http_json import HttpAnswer, HttpJsonTransport
from memberflow.errors import (
    AccountProblem,
    CredentialsRejected,
    NotFound,
    PermanentRefusal,
    RateLimited,
    ResourceGone,
    Transient,
)
from memberflow.intake.eventbrite import api_resource_path
from memberflow.registrations.model import CallMeter
from memberflow.retry import with_brief_retries

logger = logging.getLogger(__name__)

ATTEMPTS = 3
CREDENTIAL_ERRORS = frozenset({"INVALID_AUTH", "INVALID_AUTH_HEADER", "NO_AUTH"})
"""The token was missing, malformed or not taken (Eventbrite API reference, Errors): the errors page gives 400 for
INVALID_AUTH and INVALID_AUTH_HEADER while the API answers INVALID_AUTH with 401, so the code decides, not the
status."""
MAX_PAGES = 1000
"""A safety stop for continuation paging (50 attendees a page: 50,000 attendees)."""


def error_from(answer: HttpAnswer) -> Exception:
    """Eventbrite's errors (`{"status_code", "error", "error_description"}`) as ours."""
    try:
        body = json.loads(answer.text or "{}")
    except ValueError:
        body = {}
    code = str(body.get("error") or "") if isinstance(body, dict) else ""
    text = f"Eventbrite {answer.status} {code}".strip()
    if answer.status == 429 or code == "HIT_RATE_LIMIT":
        return RateLimited(text, answer.retry_after())
    if answer.status == 401 or code in CREDENTIAL_ERRORS:
        return CredentialsRejected(text, answer.status)
    if answer.status >= 500:
        return Transient(text, answer.retry_after())
    if answer.status == 403:
        return AccountProblem(text, 403)
    if answer.status == 404:
        return NotFound(text, 404)
    return PermanentRefusal(code or "Refused", str(body.get("error_description") or "")[:200], answer.status)


def pages_left(pagination: dict[str, Any]) -> int | None:
    """After an attendee list's first page: how many pages are still to read, from `page_count` (else from
    `object_count` and `page_size`); None when the page does not say."""
    count = pagination.get("page_count")
    if isinstance(count, int) and count > 0:
        return max(0, count - 1)
    objects, size = pagination.get("object_count"), pagination.get("page_size")
    if isinstance(objects, int) and isinstance(size, int) and size > 0:
        return max(0, math.ceil(objects / size) - 1)
    return None


class EventbriteClient:
    """Implements `registrations.model.EventbriteApi`."""

    def __init__(self, token: Callable[[bool], str], api_url: str, timeout: float = 5.0) -> None:
        self.api_url = api_url.rstrip("/")
        self._token = token
        self._http = HttpJsonTransport(
            self.api_url, error_from, service="Eventbrite", timeout=timeout, attempts=ATTEMPTS
        )
        self._authorised = False
        self._meter: CallMeter | None = None

    def metered(self, meter: CallMeter) -> EventbriteClient:
        """This client (the same connection and token) with each request charged to `meter` before it is sent; the
        client itself stays unmetered (webhook fetches are not the reconciliation's)."""
        view = copy.copy(self)
        view._meter = meter
        return view

    def fetch(self, api_url: str) -> dict[str, Any]:
        resource = api_resource_path(api_url, self.api_url)
        if resource is None:
            raise PermanentRefusal("Not the Eventbrite API", "api_url does not lead to the configured Eventbrite API")
        expand = "attendees,event" if "/orders/" in resource else "event"
        try:
            return self._call(resource, {"expand": expand})
        except NotFound as missing:
            # The order or attendee was deleted: nothing an operator or a retry can change (`ResourceGone`, not the
            # account-wide `NotFound`). A 403 on it stays an `AccountProblem`: Eventbrite only sends the
            # organization's own resources, which the organizer's token can read, so a refusal means the token
            # lost access (every fetch fails alike), and those messages wait for it rather than being dropped.
            raise ResourceGone("Deleted on Eventbrite", f"{resource} no longer exists", missing.status) from missing

    def event(self, event_id: str) -> dict[str, Any]:
        return self._call(f"/events/{_id(event_id)}/", None)

    def attendees(self, event_id: str) -> Iterator[dict[str, Any]]:
        params: dict[str, str] = {}
        for number in range(MAX_PAGES):
            page = self._call(f"/events/{_id(event_id)}/attendees/", params)
            pagination = page.get("pagination") or {}
            if number == 0 and self._meter is not None and pagination.get("has_more_items"):
                left = pages_left(pagination)
                if left:
                    self._meter.expect(left)  # a list the budget cannot finish is not started
            yield from (item for item in page.get("attendees", []) if isinstance(item, dict))
            continuation = pagination.get("continuation")
            if not pagination.get("has_more_items") or not continuation:
                return
            params = {"continuation": str(continuation)}
        raise Transient(f"Eventbrite attendee list of event {event_id} longer than {MAX_PAGES} pages")

    def is_available(self) -> bool:
        """Eventbrite answers and accepts our token: one cheap authenticated read (the token's own user), not
        resent after a transient failure, so the redrive's check stays within one call's timeout."""
        try:
            self._call("/users/me/", None, attempts=1)
        except (Transient, AccountProblem) as failure:
            logger.info("Eventbrite does not answer", extra={"reason": str(failure)[:300]})
            return False
        return True

    def _call(self, path: str, params: dict[str, str] | None, *, attempts: int | None = None) -> dict[str, Any]:
        if not self._authorised:
            self._authorise(False)
        try:
            return self._send(path, params, attempts or ATTEMPTS)
        except CredentialsRejected:
            self._authorise(True)  # rotated since this container read it: read the secret again, once
            return self._send(path, params, attempts or ATTEMPTS)

    def _send(self, path: str, params: dict[str, str] | None, attempts: int) -> dict[str, Any]:
        """One GET with brief retries, each attempt charged to the meter first. A 429 without Retry-After is not
        retried: Eventbrite's limit is per hour."""

        def attempt() -> dict[str, Any]:
            if self._meter is not None:
                self._meter.spend()
            try:
                return self._http.send("GET", path, None, params)
            except RateLimited:
                if self._meter is not None:
                    self._meter.throttled()
                raise

        return with_brief_retries(attempt, attempts=attempts, retry_if=_said_how_long)

    def _authorise(self, fresh: bool) -> None:
        self._http.set_bearer(self._token(fresh))
        self._authorised = True


def _said_how_long(failure: Transient) -> bool:
    """Worth a brief retry: anything but a 429 without Retry-After (the hour's calls are spent)."""
    return not isinstance(failure, RateLimited) or failure.retry_after is not None


def _id(value: str) -> str:
    if not value.isdigit():
        raise PermanentRefusal("Invalid id", "Eventbrite ids are numbers")
    return value
