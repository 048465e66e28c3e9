"""What every webhook source provides, and what interpreting a verified delivery can lead to."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from memberflow.events.base import Event


@dataclass(frozen=True)
class WebhookRequest:
    """Everything a source may need to verify a delivery: the exact bytes, the headers (lower-cased names), and
    the path and query string (for senders that authenticate with a token in the URL)."""

    source: str
    body: bytes
    headers: Mapping[str, str]
    path: str = ""
    query: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Accepted:
    """An event to queue, with the key that stays the same when the platform delivers it again."""

    event: Event
    idempotency_key: str


@dataclass(frozen=True)
class Ignored:
    """A valid delivery that is not a member event we act on (bots, edits, event types we do not use)."""

    reason: str


@dataclass(frozen=True)
class Reply:
    """A delivery the platform expects a specific answer to (URL verification, ping); nothing to queue."""

    body: dict[str, Any]
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


Interpretation = Accepted | Ignored | Reply


class WebhookSource(Protocol):
    name: str
    secret_key: str
    """Key of this source's secret in the webhook secrets JSON."""
    form_payload_field: str | None
    """Set for a platform whose body is JSON whatever its Content-Type says: the body is read as JSON first, and
    only a body that is not JSON is read as a form carrying the JSON in this field. None: the body must be JSON
    and declared as JSON (415 otherwise)."""

    def verify(self, secret: str, request: WebhookRequest, *, now: float, window: int) -> None:
        """Raise `signatures.SignatureError` unless the sender provably sent this request."""

    def interpret(self, payload: Any, headers: Mapping[str, str]) -> Interpretation:
        """Validate the parsed body (a 400 `IntakeError` names the bad fields) and decide what it means."""

    def claimed_email(self, payload: Any) -> str | None:
        """The member email an unverified or invalid body names, if any: rejections are traced under it."""


@dataclass(frozen=True)
class Redelivery:
    """The platform says this request delivers again what it delivered before (its answer was late or failed)."""

    attempt: int
    reason: str


@runtime_checkable
class RetryingSource(Protocol):
    """A platform that delivers again whatever it was not answered 2xx in time, marks those retries in headers,
    and stops retrying when the answer carries `refusal_headers`."""

    refusal_headers: Mapping[str, str]
    """Headers every 4xx answer carries: a refused request is refused for good, retrying it cannot help."""

    def redelivery(self, headers: Mapping[str, str]) -> Redelivery | None:
        """The retry the headers announce, or None for a first delivery."""


def dig(payload: Any, *path: str) -> Any:
    """`payload[path[0]][path[1]]...`, or None as soon as a level is missing or not an object."""
    for key in path:
        if not isinstance(payload, dict):
            return None
        payload = payload.get(key)
    return payload


def email_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and "@" in value and len(value) <= 320 else None
