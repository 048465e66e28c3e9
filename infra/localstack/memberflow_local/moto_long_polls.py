"""Long polls in the local stack wait inside moto, as SQS's do, and still end at once when the stack stops.

Lambda's pollers receive with long polls of up to 20 seconds. The local pollers used one-second polls so that a
stack could stop within a second; an idle stack then made a ReceiveMessage call per poller thread every second, a
few percent of a core per stack doing nothing (the client, the HTTP request, moto's parsing and answer). With
`install()`, moto serves a long poll in one-second slices of its own wait (each slice wakes as soon as a message
arrives, as before), and `end_long_polls()` makes every long poll then waiting answer, empty-handed if nothing came,
at the end of its current slice, so the pollers' long polls cost nothing while idle and stopping still takes at most
a second.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

SLICE_SECONDS = 1
_generations = itertools.count(1)
_generation = 0


def end_long_polls() -> None:
    """Every long poll waiting now answers at the end of its current slice (later ones wait as usual)."""
    global _generation
    _generation = next(_generations)


def install() -> None:
    """Patch moto's SQS receive once per process (idempotent)."""
    from moto.sqs.models import SQSBackend

    if getattr(SQSBackend.receive_message, "_sliced", False):
        return
    receive = SQSBackend.receive_message

    def receive_message(
        self: Any,
        queue_name: str,
        count: int,
        wait_seconds_timeout: int,
        visibility_timeout: int,
        message_attribute_names: list[str] | None = None,
    ) -> list[Any]:
        if wait_seconds_timeout <= SLICE_SECONDS:
            return receive(self, queue_name, count, wait_seconds_timeout, visibility_timeout, message_attribute_names)
        generation, deadline = _generation, time.monotonic() + wait_seconds_timeout
        while True:
            messages = receive(self, queue_name, count, SLICE_SECONDS, visibility_timeout, message_attribute_names)
            if messages or _generation != generation or time.monotonic() >= deadline:
                return messages

    receive_message._sliced = True  # type: ignore[attr-defined]
    SQSBackend.receive_message = receive_message  # type: ignore[method-assign]
