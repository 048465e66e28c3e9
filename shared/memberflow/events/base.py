"""What every event type provides, and the catalog that registers them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from memberflow.errors import InvalidMessage
from memberflow.models import check_text
from memberflow.schema import Model


class Event(Model):
    """A normalised event. Subclasses fix `type` with a Literal and say under which trace subject they file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str

    @field_validator("*")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        """Every event type, whatever its fields: no text that a queue, a table or a JSON consumer cannot take (a
        lone surrogate, a control character). Fields say more where they need to (ids, addresses, names)."""
        for text in _texts(value):
            check_text(text)
        return value

    def trace_subject(self) -> str:
        raise NotImplementedError

    def log_fields(self) -> dict[str, Any]:
        """What a log line may say about the event: no personal data."""
        return {"event_type": self.type}


def _texts(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, BaseModel):
        for item in value.__dict__.values():
            yield from _texts(item)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _texts(key)
            yield from _texts(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _texts(item)


@dataclass(frozen=True)
class EventType:
    name: str
    model: type[Event]
    destination: str
    """Where intake sends it: a destination name that template.yaml maps to a queue (EVENT_DESTINATIONS)."""
    consumer: str
    """The capability whose worker handles it (its function's handler table has an entry for `name`)."""


class EventCatalog:
    def __init__(self, types: Iterable[EventType] = ()) -> None:
        self._types: dict[str, EventType] = {}
        for event_type in types:
            self.register(event_type)

    def register(self, event_type: EventType) -> None:
        if event_type.name in self._types:
            raise ValueError(f"event type {event_type.name!r} is registered twice")
        self._types[event_type.name] = event_type

    def get(self, name: str) -> EventType:
        try:
            return self._types[name]
        except KeyError:
            raise InvalidMessage(f"unknown event type {name[:64]!r}") from None

    def parse(self, raw: Mapping[str, Any]) -> Event:
        """Validate a JSON object as the event type its `type` names (pydantic's ValidationError if invalid)."""
        name = raw.get("type")
        if not isinstance(name, str):
            raise InvalidMessage("the event has no type")
        return self.get(name).model.model_validate(raw)

    def __iter__(self) -> Iterator[EventType]:
        return iter(self._types.values())

    def names(self) -> list[str]:
        return sorted(self._types)

    def destinations(self) -> set[str]:
        return {event_type.destination for event_type in self._types.values()}

    def for_consumer(self, consumer: str) -> list[str]:
        return sorted(name for name, event_type in self._types.items() if event_type.consumer == consumer)
