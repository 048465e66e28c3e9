"""Long polls in the local stack wait inside moto, as SQS's do, and end at once when the stack stops.

Lambda's pollers receive with long polls of up to 20 seconds. The local pollers used one-second polls so that a
stack could stop within a second; an idle stack then made a ReceiveMessage call per poller thread every second, a
few percent of a core per stack doing nothing (the client, the HTTP request, moto's parsing and answer). With
`install()`, a receive that may wait looks at the queue, and while it finds nothing, waits on the queue's condition
(which a send notifies) for at most a second at a time, since a delayed or in-flight message becomes visible
without notice; `end_long_polls()` makes every receive then waiting answer at once, empty-handed. The pollers' long
polls cost nothing while idle and the stack stops without waiting one out.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

SLICE_SECONDS = 1.0
_generations = itertools.count(1)
_generation = 0


def end_long_polls() -> None:
    """Every receive waiting now answers at once (those begun later wait as usual)."""
    global _generation
    from moto.sqs.models import sqs_backends

    _generation = next(_generations)
    for regions in list(sqs_backends.values()):
        for backend in list(regions.values()):
            for queue in list(backend.queues.values()):
                with queue._messages_lock:
                    queue._messages_lock.notify_all()


def install() -> None:
    """Patch moto's SQS receive once per process (idempotent)."""
    from moto.sqs.models import SQSBackend

    if getattr(SQSBackend.receive_message, "_long_polls", False):
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
        generation, deadline = _generation, time.monotonic() + wait_seconds_timeout
        queue = self.get_queue(queue_name)
        while True:
            messages = receive(self, queue_name, count, 0, visibility_timeout, message_attribute_names)
            remaining = deadline - time.monotonic()
            if messages or remaining <= 0 or _generation != generation:
                return messages
            with queue._messages_lock:
                queue._messages_lock.wait_for(
                    lambda: queue.messages or _generation != generation, timeout=min(SLICE_SECONDS, remaining)
                )

    receive_message._long_polls = True  # type: ignore[attr-defined]
    SQSBackend.receive_message = receive_message  # type: ignore[method-assign]
