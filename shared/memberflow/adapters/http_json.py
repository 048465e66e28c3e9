"""One HTTP JSON transport for every service we speak to over HTTP (Mailchimp now; Zendesk, Eventbrite next).

A keep-alive `requests` session, a timeout on every call, brief retries of transient failures that honour
Retry-After, and an error-mapping hook: each adapter turns a refused answer into `memberflow.errors`, so no
`requests` or `urllib3` exception travels further than this module.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from memberflow.errors import Transient
from memberflow.retry import with_brief_retries

DEFAULT_ATTEMPTS = 2
"""Attempts per call (the first and one brief retry) unless the adapter says otherwise."""


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    text: str
    headers: Mapping[str, str]

    def retry_after(self) -> float | None:
        """Retry-After in seconds (the integer form; an HTTP date is not worth parsing for a brief wait)."""
        value = (self.headers.get("Retry-After") or "").strip()
        return float(value) if value.isdigit() else None


ErrorMapper = Callable[[HttpAnswer], Exception]
"""Turns an answer of 300 or more into one of `memberflow.errors`."""


class HttpJsonTransport:
    def __init__(
        self,
        base_url: str,
        map_error: ErrorMapper,
        *,
        service: str,
        timeout: float = 5.0,
        attempts: int = DEFAULT_ATTEMPTS,
        auth: tuple[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        import requests

        self.base_url = base_url.rstrip("/")
        self.service = service
        self._map_error = map_error
        self._timeout = timeout
        self._attempts = attempts
        self._session = requests.Session()
        self._session.auth = auth
        self._session.headers.update(headers or {})

    def set_auth(self, auth: tuple[str, str]) -> None:
        self._session.auth = auth

    def set_bearer(self, token: str) -> None:
        """OAuth: `Authorization: Bearer <token>` on every request."""
        self._session.headers["Authorization"] = f"Bearer {token}"

    def call(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        *,
        attempts: int | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """The JSON answer ({} when empty), retrying transient failures briefly. `timeout` overrides the transport's
        for this call (a bulk call takes longer than one member's)."""
        return with_brief_retries(
            lambda: self.send(method, path, body, params, timeout=timeout), attempts=attempts or self._attempts
        )

    def send(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        *,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """One request, no retry."""
        import requests

        try:
            response = self._session.request(
                method, self.base_url + path, json=body, params=params, timeout=timeout or self._timeout
            )
        except requests.RequestException as error:
            raise Transient(f"{self.service} unreachable: {type(error).__name__}") from None
        if response.status_code < 300:
            if not response.content:
                return {}
            try:
                answer = response.json()
            except ValueError:
                raise Transient(
                    f"{self.service} answered {response.status_code} with a body that is not JSON"
                ) from None
            return answer if isinstance(answer, dict) else {"items": answer}
        raise self._map_error(HttpAnswer(response.status_code, response.text, response.headers))
