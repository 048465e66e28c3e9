"""moto's SQS queues and DynamoDB items made atomic for the threaded local server.

The local stack serves every AWS call on its own thread, and moto's in-memory backends are not written for that:

- deleting an SQS message rebuilds the queue's message list from a copy, so two deletes at once (two pollers of one
  queue) put back a message the other just deleted, and a message sent meanwhile is lost. The message put back stays
  invisible for the queue's visibility timeout (12 minutes for registrations) and is then delivered again;
- two receives at once can both take the same visible message;
- a conditional DynamoDB write checks its condition and then writes, so two at once can both pass the check (two
  consumers both claiming one idempotency key);
- an update of a new DynamoDB item first stores the bare key and then applies the update to it, so a read meanwhile
  finds an item with nothing but its key (a member record without its member id).

SQS and DynamoDB do none of this, and our functions must be judged by what they do. `install()` runs each of those
operations under a lock: per queue for SQS (the queue's own condition lock, which a long poll releases while it
waits), one for DynamoDB's item reads and writes (moto's work is Python under one interpreter lock anyway).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

_DYNAMODB_OPERATIONS = ("put_item", "update_item", "delete_item", "transact_write_items", "get_item", "query", "scan")
_dynamodb_lock = threading.RLock()


def install() -> None:
    """Patch moto's SQS and DynamoDB backends once per process (idempotent)."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.sqs.models import Queue, SQSBackend

    if getattr(Queue.delete_message, "_atomic", False):
        return
    for name in ("add_message", "delete_message"):
        setattr(Queue, name, _under_queue_lock(getattr(Queue, name), lambda queue, *_, **__: queue))
    for name in ("receive_message", "change_message_visibility"):
        setattr(SQSBackend, name, _under_queue_lock(getattr(SQSBackend, name), _named_queue))
    for name in _DYNAMODB_OPERATIONS:
        setattr(DynamoDBBackend, name, _under_lock(getattr(DynamoDBBackend, name), _dynamodb_lock))


def _named_queue(backend: Any, queue_name: str, *_: Any, **__: Any) -> Any:
    return backend.get_queue(queue_name)


def _under_queue_lock(method: Callable[..., Any], queue_of: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def atomic(*args: Any, **kwargs: Any) -> Any:
        # A Condition over an RLock: re-entered by moto's own `with queue._messages_lock`, and released in full by
        # a long poll's wait, so a receive waiting for messages does not hold up senders.
        with queue_of(*args, **kwargs)._messages_lock:
            return method(*args, **kwargs)

    atomic._atomic = True  # type: ignore[attr-defined]
    return atomic


def _under_lock(method: Callable[..., Any], lock: Any) -> Callable[..., Any]:
    @functools.wraps(method)
    def atomic(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return method(*args, **kwargs)

    return atomic
