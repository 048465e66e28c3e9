"""SQS sends and receives in moto cost what SQS's do, not time that grows with the queue's length.

moto builds a queue's attributes (all of them) whenever it reads one, for instance on every send (is the queue
content-deduplicated?) and three times per message a receive hands out (its retention period). Building them counts
the queue's visible, in-flight and delayed messages, asking each message's clock twice per count. With a few hundred
messages waiting, as a webhook burst leaves them, every send and receive walked the whole queue a dozen times: the
drain of a burst took time that grew with the square of its size. `install()` counts with one clock reading per
count (the same comparisons moto makes, against one "now"), lists visible messages the same way, and lets the
retention check read the one attribute it needs. The answers are moto's own.
"""

from __future__ import annotations

from typing import Any


def install() -> None:
    """Patch moto's SQS queue and backend once per process (idempotent)."""
    from moto.core.utils import unix_time, unix_time_millis
    from moto.sqs.models import Queue, SQSBackend

    if getattr(Queue.messages.fget, "_one_clock", False):
        return

    def messages(self: Any) -> list[Any]:
        now = unix_time_millis()
        return [m for m in self._messages if now > m.visible_at and not now < m.delayed_until]

    def not_visible(self: Any) -> int:
        now = unix_time_millis()
        return sum(1 for m in self._messages if not now > m.visible_at)

    def delayed(self: Any) -> int:
        now = unix_time_millis()
        return sum(1 for m in self._messages if now < m.delayed_until)

    def retained(self: Any, queue_name: str, message: Any) -> bool:
        retention_period = int(self.get_queue(queue_name).message_retention_period)
        return bool(retention_period + message.sent_timestamp / 1000 > unix_time())

    messages._one_clock = True  # type: ignore[attr-defined]
    Queue.messages = property(messages)  # type: ignore[method-assign, assignment]
    Queue.approximate_number_of_messages_not_visible = property(not_visible)  # type: ignore[method-assign, assignment]
    Queue.approximate_number_of_messages_delayed = property(delayed)  # type: ignore[method-assign, assignment]
    SQSBackend.is_message_valid_based_on_retention_period = retained  # type: ignore[method-assign]
