"""Imports: the members a community already had before memberflow, as platforms export them, in chunks that travel
through the import queue to the bulk consumer (at most 500 members, one Mailchimp batch)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator

from memberflow.events.base import Event
from memberflow.models import MemberIdentity, Moment, Name, check_email
from memberflow.schema import Model

CHUNK_LIMIT = 500
"""Members per chunk: what Mailchimp takes in one batch subscribe."""


class ImportedMember(Model):
    """One existing member as a platform knows them. Times are what the platform recorded, or None when it does
    not know (Slack has no join date: none is invented)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    identity: MemberIdentity
    email: str | None = None
    name: Name | None = None
    joined_at: Moment | None = None
    last_active_at: Moment | None = None
    marketing_consent: bool = False
    email_verified: bool = True
    """False when the platform has not confirmed the address (consent then leads to double opt-in)."""

    @field_validator("email")
    @classmethod
    def _valid_email(cls, value: str | None) -> str | None:
        return check_email(value)


class MemberImportChunk(Event):
    type: Literal["member_import_chunk"] = "member_import_chunk"
    members: list[ImportedMember] = Field(min_length=1, max_length=CHUNK_LIMIT)

    def trace_subject(self) -> str:
        """Each member's steps are filed under the member; the chunk itself under the import."""
        return "imports"

    def log_fields(self) -> dict[str, Any]:
        return {"event_type": self.type, "members": len(self.members)}
