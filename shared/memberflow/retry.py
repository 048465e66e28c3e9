"""Brief in-function retries; anything longer goes back to the queue instead of sleeping inside a Lambda."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from memberflow.errors import RetryLater, Transient

T = TypeVar("T")

MAX_INLINE_WAIT_SECONDS = 2.0
"""The longest pause between two brief retries; a longer Retry-After is waited out on the queue."""


def worst_case_seconds(call_timeout: float, attempts: int, pause: float = MAX_INLINE_WAIT_SECONDS) -> float:
    """The longest a call with brief retries can take: every attempt runs into its timeout, with the longest
    pause between two attempts."""
    return attempts * call_timeout + (attempts - 1) * pause


def with_brief_retries(
    call: Callable[[], T],
    *,
    attempts: int = 3,
    base_delay: float = 0.2,
    max_inline_wait: float = MAX_INLINE_WAIT_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
    retry_if: Callable[[Transient], bool] | None = None,
) -> T:
    """Run `call`, retrying `Transient` failures with jittered exponential backoff that honours Retry-After.

    A Retry-After longer than `max_inline_wait` raises `RetryLater` at once; the last failure is re-raised as is.
    A failure `retry_if` rejects is re-raised as is at once (a service whose limit a quick retry only spends again,
    a whole call its client already retried).
    """
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except Transient as failure:
            if retry_if is not None and not retry_if(failure):
                raise
            if failure.retry_after is not None and failure.retry_after > max_inline_wait:
                if isinstance(failure, RetryLater):
                    raise
                raise RetryLater(str(failure), failure.retry_after) from failure
            if attempt == attempts:
                raise
            backoff = base_delay * 2 ** (attempt - 1) * (1 + random.random() / 2)
            sleep(min(max_inline_wait, max(backoff, failure.retry_after or 0)))
    raise AssertionError("unreachable")
