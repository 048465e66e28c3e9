"""Brief in-function retries; anything longer goes back to the queue instead of sleeping inside a Lambda."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from memberflow.errors import RetryLater, Transient

T = TypeVar("T")


def with_brief_retries(
    call: Callable[[], T],
    *,
    attempts: int = 3,
    base_delay: float = 0.2,
    max_inline_wait: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run `call`, retrying `Transient` failures with jittered exponential backoff that honours Retry-After.

    A Retry-After longer than `max_inline_wait` raises `RetryLater` at once; the last failure is re-raised as is.
    """
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except Transient as failure:
            if failure.retry_after is not None and failure.retry_after > max_inline_wait:
                if isinstance(failure, RetryLater):
                    raise
                raise RetryLater(str(failure), failure.retry_after) from failure
            if attempt == attempts:
                raise
            backoff = base_delay * 2 ** (attempt - 1) * (1 + random.random() / 2)
            sleep(min(max_inline_wait, max(backoff, failure.retry_after or 0)))
    raise AssertionError("unreachable")
