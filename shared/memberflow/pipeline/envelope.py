"""What intake writes to a queue and consumers read back: the event plus what makes it traceable and
deduplicable. The event is typed by the catalog, so the envelope serves every registered event type."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import ConfigDict, Field, SerializeAsAny, ValidationInfo, field_validator

from memberflow.events.base import Event, EventCatalog
from memberflow.models import EventKey, Text
from memberflow.schema import Model


class QueuedEvent(Model):
    model_config = ConfigDict(frozen=True, extra="forbid")

    idempotency_key: EventKey = Field(min_length=1)
    """Stable across redeliveries of the same platform event (Slack event_id, Discourse resource id + event, ...);
    a queue message attribute and part of the trace, so an id without controls, at most 512 bytes."""
    correlation_id: Text = Field(min_length=1)
    source: str
    received_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    event: SerializeAsAny[Event]

    @field_validator("event", mode="before")
    @classmethod
    def _typed_event(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, Event) or not isinstance(value, dict):
            return value
        catalog = (info.context or {}).get("catalog") or _default_catalog()
        return catalog.parse(value)

    @classmethod
    def from_json(cls, body: str | bytes, catalog: EventCatalog | None = None) -> QueuedEvent:
        return cls.model_validate_json(body, context={"catalog": catalog or _default_catalog()})


def _default_catalog() -> EventCatalog:
    from memberflow.events import CATALOG

    return CATALOG
