"""Many members at once: what a bulk subscribe or a bulk tag sends, and what came of each member.

Pure models, no I/O. A bulk call answers per member: some were created or updated, some were already there, some
were refused. A refusal names the same error memberflow raises for a single call (`memberflow.errors`), so a caller
treats a member refused in bulk exactly as one refused alone.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any, TypeVar

from memberflow.errors import AddressThrottled, ComplianceState, ForgottenAddress, PermanentRefusal
from memberflow.privacy import redact_emails

BULK_LIMIT = 500
"""Mailchimp takes at most this many members per batch subscribe, and addresses per field per segment call."""

BULK_STATUSES = ("subscribed", "pending", "unsubscribed", "transactional")

SIGNUP_THROTTLE_TEXT = "signed up to a lot of lists very recently"
"""Mailchimp's wording for an address it refuses for now, not for good: retried hours or days later."""
SIGNUP_THROTTLE_RETRY_SECONDS = 6 * 3600

T = TypeVar("T")


def chunks(items: Sequence[T], size: int = BULK_LIMIT) -> Iterator[Sequence[T]]:
    """`items` in consecutive slices of at most `size`."""
    if size < 1:
        raise ValueError("a chunk holds at least one item")
    for start in range(0, len(items), size):
        yield items[start : start + size]


def mailchimp_timestamp(moment: datetime) -> str:
    """A datetime as Mailchimp writes one (ISO 8601 in UTC, `2024-05-01T09:30:00+00:00`); naive means UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


@dataclass(frozen=True)
class BulkMember:
    """One member of a bulk subscribe."""

    email: str
    status: str
    """subscribed, pending (Mailchimp sends the double opt-in email), unsubscribed or transactional."""
    merge_fields: Mapping[str, str] = field(default_factory=dict)
    timestamp_signup: datetime | None = None
    timestamp_opt: datetime | None = None

    def __post_init__(self) -> None:
        if not self.email or not self.email.strip():
            raise ValueError("email must not be empty")
        if self.status not in BULK_STATUSES:
            raise ValueError(f"status must be one of {', '.join(BULK_STATUSES)}")

    def as_mailchimp(self) -> dict[str, Any]:
        """The member as Mailchimp's batch subscribe takes it."""
        body: dict[str, Any] = {
            "email_address": self.email,
            "status": self.status,
            "merge_fields": dict(self.merge_fields),
        }
        if self.timestamp_signup is not None:
            body["timestamp_signup"] = mailchimp_timestamp(self.timestamp_signup)
        if self.timestamp_opt is not None:
            body["timestamp_opt"] = mailchimp_timestamp(self.timestamp_opt)
        return body


class RefusalKind(Enum):
    """Which of memberflow's errors a refusal is."""

    COMPLIANCE_STATE = "compliance_state"
    """Unsubscribed, bounced or under review: cannot be set to subscribed by API (`ComplianceState`)."""
    FORGOTTEN_ADDRESS = "forgotten_address"
    """Permanently deleted at the person's request: never re-added by API (`ForgottenAddress`)."""
    INVALID_ADDRESS = "invalid_address"
    """An address the service takes for fake or invalid (`PermanentRefusal`)."""
    SIGNUP_THROTTLED = "signup_throttled"
    """Signed up to many lists very recently: try again hours later (`AddressThrottled`)."""
    OTHER = "other"
    """Anything else, e.g. a merge field that does not validate (`PermanentRefusal`)."""


@dataclass(frozen=True)
class MemberRefusal:
    """Why the service refused one member of a bulk call; `error` is what a single call would have raised."""

    kind: RefusalKind
    code: str = ""
    """The service's own code (Mailchimp: ERROR_GENERIC, ERROR_CONTACT_EXISTS, ...)."""
    text: str = ""
    """The service's message, addresses redacted."""

    @property
    def error(self) -> Exception:
        if self.kind is RefusalKind.COMPLIANCE_STATE:
            return ComplianceState("Member In Compliance State", self.text, 400)
        if self.kind is RefusalKind.FORGOTTEN_ADDRESS:
            return ForgottenAddress("Forgotten Email Not Subscribed", self.text, 400)
        if self.kind is RefusalKind.SIGNUP_THROTTLED:
            return AddressThrottled(f"Signup throttled: {self.text}", SIGNUP_THROTTLE_RETRY_SECONDS)
        title = "Invalid Address" if self.kind is RefusalKind.INVALID_ADDRESS else (self.code or "Refused")
        return PermanentRefusal(title, self.text, 400)

    @property
    def permanent(self) -> bool:
        """A retry will not change it (everything but a signup throttle)."""
        return self.kind is not RefusalKind.SIGNUP_THROTTLED


@dataclass
class BulkOutcome:
    """What came of each member (address) of a bulk call. Every address given lands in exactly one field."""

    created: list[str] = field(default_factory=list)
    """Added to the audience by this call."""
    updated: list[str] = field(default_factory=list)
    """Changed by this call: an existing member updated, a tag added or removed."""
    existing: list[str] = field(default_factory=list)
    """Left untouched: already in the audience while update_existing was false; for tags, already as asked (or
    not in the audience, which the service ignores)."""
    refused: dict[str, MemberRefusal] = field(default_factory=dict)

    def merge(self, other: BulkOutcome) -> None:
        """Add another call's outcome to this one."""
        self.created.extend(other.created)
        self.updated.extend(other.updated)
        self.existing.extend(other.existing)
        self.refused.update(other.refused)

    @property
    def counts(self) -> dict[str, int]:
        """How many of each (for logs and metrics: never the addresses themselves)."""
        return {
            "created": len(self.created),
            "updated": len(self.updated),
            "existing": len(self.existing),
            "refused": len(self.refused),
        }


_COMPLIANCE_TEXTS = ("compliance state",)
_FORGOTTEN_TEXTS = ("permanently deleted", "cannot be re-imported", "forgotten email")
_INVALID_TEXTS = ("looks fake or invalid", "provide a valid email address", "invalid email")


def refusal_from(code: str, text: str) -> MemberRefusal:
    """One per-member error of a Mailchimp bulk call (its `error_code` and `error` text) as a refusal of the
    category memberflow uses for single calls. Mailchimp gives no title per member, so the text decides."""
    text = redact_emails(text)
    lowered = text.lower()
    if any(words in lowered for words in _FORGOTTEN_TEXTS):
        kind = RefusalKind.FORGOTTEN_ADDRESS
    elif any(words in lowered for words in _COMPLIANCE_TEXTS):
        kind = RefusalKind.COMPLIANCE_STATE
    elif SIGNUP_THROTTLE_TEXT in lowered:
        kind = RefusalKind.SIGNUP_THROTTLED
    elif any(words in lowered for words in _INVALID_TEXTS):
        kind = RefusalKind.INVALID_ADDRESS
    else:
        kind = RefusalKind.OTHER
    return MemberRefusal(kind, code, text)
