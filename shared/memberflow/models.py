"""Shared vocabulary: platforms, a member's identity on one of them, a schedule firing, and the rules every text,
id, address and moment we keep must meet, so that what intake accepts every store, queue and consumer can take."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, ConfigDict, Field

from memberflow.schema import Model

# ---------------------------------------------------------------- what the stores and queues accept

DYNAMODB_PARTITION_KEY_BYTES = 2048
DYNAMODB_SORT_KEY_BYTES = 1024
DYNAMODB_ITEM_BYTES = 400 * 1024
SQS_MESSAGE_BYTES = 1024 * 1024
"""Body plus attributes."""

KEY_PREFIX_BYTES = 32
"""Room for what a key puts before an id (`IDENTITY#`, `MEMBER#`, `identity#`)."""
MAX_WORKSPACE_BYTES = 256
"""Slack team and Discord guild ids are about 20 characters, a Discourse instance is a URL (host names are at most
253): room to spare, and an idempotency key made of a workspace and an event id stays within its 512 bytes."""
MAX_USER_ID_BYTES = 256
MAX_IDENTITY_KEY_BYTES = len("discourse") + 1 + MAX_WORKSPACE_BYTES + 1 + MAX_USER_ID_BYTES
"""A platform identity's key (`platform:workspace:user`): with any key prefix (KEY_PREFIX_BYTES) it fits in a
DynamoDB sort key, so in a partition key too."""
MAX_NAME_LENGTH = 512
"""Names and usernames (Discord allows 32 characters, Slack 80): bounded so a member record stays far below
DynamoDB's item limit and a queued event below SQS's message limit."""

# XML 1.0 characters: what SQS accepts in a message body and in attribute values. Outside it are lone surrogates
# (no UTF-8 encoding exists for them: neither SQS nor DynamoDB nor any JSON consumer can store them), C0 controls
# other than tab, line feed and carriage return, and the non-characters U+FFFE and U+FFFF. Listed as what is
# refused rather than as the complement of what is allowed: the same set, compiled ten times faster at cold start.
_NOT_STORABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# In ids, addresses and keys also no controls at all, no invisible formatting (bidirectional overrides, zero
# widths), no line or paragraph separators.
_NOT_IN_IDS = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def check_text(value: str) -> str:
    """Text we keep: only characters every store and queue accepts."""
    bad = _NOT_STORABLE.search(value)
    if bad:
        raise ValueError(f"contains {_describe(bad.group())} at position {bad.start()}, which cannot be stored")
    return value


def check_id(value: str, max_bytes: int) -> str:
    """An id that becomes part of a key: storable text without controls or invisible characters, and short
    enough (in UTF-8 bytes, as DynamoDB counts) for the keys it goes into."""
    check_text(value)
    size = len(value.encode())
    if size > max_bytes:
        raise ValueError(f"is {size} bytes long in UTF-8; at most {max_bytes} are accepted")
    for position, char in enumerate(value):
        if unicodedata.category(char) in _NOT_IN_IDS:
            raise ValueError(f"contains {_describe(char)} at position {position}, which an id may not contain")
    return value


def _at_most(value: str, length: int) -> str:
    if len(value) > length:
        raise ValueError(f"is {len(value)} characters long; at most {length} are accepted")
    return value


def _describe(char: str) -> str:
    code = ord(char)
    if 0xD800 <= code <= 0xDFFF:
        return f"a lone surrogate U+{code:04X} (not valid Unicode)"
    return f"U+{code:04X} ({unicodedata.name(char, 'NUL' if code == 0 else 'a control character').lower()})"


Text = Annotated[str, AfterValidator(check_text)]
"""Any text we keep (in a queued event, a member record, a trace)."""
Name = Annotated[str, AfterValidator(lambda value: _at_most(check_text(value), MAX_NAME_LENGTH))]
"""A person's name or username."""
MAX_EVENT_KEY_BYTES = 512
EventKey = Annotated[str, AfterValidator(lambda value: check_id(value, MAX_EVENT_KEY_BYTES))]
"""A key made of a platform's ids (an idempotency key), kept in queue message attributes and the trace."""

# ---------------------------------------------------------------- moments

EARLIEST_MOMENT = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_MOMENT = datetime(9999, 1, 1, tzinfo=UTC)
"""Event times are kept within these: every consumer can convert them to any time zone and add the months the
drip, the double opt-in wait and the trace's retention add, and the Unix epoch (DynamoDB's TTL, Slack's
`event_time`) can express them. Nothing earlier or later is a real join or message."""


def check_moment(value: datetime) -> datetime:
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    if not EARLIEST_MOMENT <= aware < LATEST_MOMENT:
        raise ValueError(
            f"must be between {EARLIEST_MOMENT:%Y-%m-%d} and {LATEST_MOMENT:%Y-%m-%d} (UTC); "
            f"{value.isoformat()[:40]} is not"
        )
    return value


Moment = Annotated[datetime, AfterValidator(check_moment)]

# ---------------------------------------------------------------- platforms and identities


class Platform(StrEnum):
    SLACK = "slack"
    DISCORD = "discord"
    DISCOURSE = "discourse"
    GENERIC = "generic"


class MemberIdentity(Model):
    """Who the member is on one platform: a Slack user in a workspace, a Discord user in a guild, ..."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    platform: Platform
    workspace: Annotated[str, AfterValidator(lambda value: check_id(value, MAX_WORKSPACE_BYTES))] = Field(
        min_length=1, description="Slack team id, Discord guild id, Discourse instance URL"
    )
    user_id: Annotated[str, AfterValidator(lambda value: check_id(value, MAX_USER_ID_BYTES))] = Field(min_length=1)

    @property
    def key(self) -> str:
        return f"{self.platform.value}:{self.workspace}:{self.user_id}"


# ---------------------------------------------------------------- email addresses

MAX_EMAIL_LENGTH = 254
"""RFC 5321's limit on a path (256 octets with its angle brackets), which every mail system enforces."""
MAX_LOCAL_PART_LENGTH = 64
MAX_DOMAIN_LABEL_LENGTH = 63
_ATEXT = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~")
_LABEL_ASCII = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")


def check_email(value: str | None) -> str | None:
    """An address every mail system accepts, or a ValueError saying what is wrong with it: a dot-atom local part
    (RFC 5322; letters, marks and digits of any script, RFC 6531) of at most 64 octets, a domain of letter, digit
    and hyphen labels, at most 254 octets in all; no quoted or commented forms, no controls, no invisible or
    bidirectional formatting characters."""
    if value is None or value == "":
        return None
    value = value.strip()
    try:
        check_text(value)
    except ValueError as error:
        raise ValueError(f"not a valid email address: it {error}") from None
    local, at, domain = value.rpartition("@")
    if not at or not local or not domain:
        raise ValueError("not a valid email address: it needs a local part, an @ and a domain")
    if len(value.encode()) > MAX_EMAIL_LENGTH:
        raise ValueError(f"not a valid email address: longer than {MAX_EMAIL_LENGTH} octets")
    if len(local.encode()) > MAX_LOCAL_PART_LENGTH:
        raise ValueError(
            f"not a valid email address: the part before the @ is longer than {MAX_LOCAL_PART_LENGTH} octets"
        )
    for char in value:
        if unicodedata.category(char) in _NOT_IN_IDS:
            raise ValueError(f"not a valid email address: it contains {_describe(char)}")
    if not _dot_atom(local, lambda char: char in _ATEXT or _letter_or_digit(char)):
        raise ValueError("not a valid email address: the part before the @ has characters or dots mail systems refuse")
    labels = domain.split(".")
    if len(labels) < 2 or not all(_domain_label(label) for label in labels) or labels[-1].isdigit():
        raise ValueError("not a valid email address: the domain is not a host name")
    return value


def _letter_or_digit(char: str) -> bool:
    return ord(char) > 0x7F and unicodedata.category(char)[0] in "LMN"


def _dot_atom(text: str, allowed: Callable[[str], bool]) -> bool:
    return all(atom and all(allowed(char) for char in atom) for atom in text.split("."))


def _domain_label(label: str) -> bool:
    return (
        0 < len(label.encode()) <= MAX_DOMAIN_LABEL_LENGTH
        and not label.startswith("-")
        and not label.endswith("-")
        and all(char in _LABEL_ASCII or _letter_or_digit(char) for char in label)
    )


class ScheduledRun(Model):
    """A schedule firing: an EventBridge scheduled event, or Scheduler's input with its context attributes
    (`<aws.scheduler.execution-id>`, `<aws.scheduler.scheduled-time>`)."""

    model_config = ConfigDict(extra="ignore")

    id: str | None = None
    time: datetime | None = None
