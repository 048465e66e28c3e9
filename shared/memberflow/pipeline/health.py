"""Is the service a consumer depends on failing as a whole? A small circuit breaker, one per container.

After service failures (throttling, 5xx, unreachable, an account problem) of `threshold` different messages in a
row, with no success in between, the service counts as failing (one member's request failing again and again is
that member's problem, not the service's): the worker stops calling it and defers each message without spending its
attempts. Once the back-off has passed, one message goes through as a probe; its success closes the breaker.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from memberflow.errors import is_service_failure


class ServiceHealth:
    def __init__(
        self,
        *,
        threshold: int = 3,
        open_seconds: float = 30.0,
        max_open_seconds: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self.open_seconds = open_seconds
        self.max_open_seconds = max_open_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._failed_keys: set[str] = set()
        self._opened = 0
        """How often the breaker opened since the last success: the back-off doubles each time."""
        self._open_until = 0.0

    @property
    def failing(self) -> bool:
        """The service failed `threshold` times in a row: failures now are the service's, not a member's."""
        return len(self._failed_keys) >= self.threshold

    def should_try(self) -> bool:
        """False while the breaker is open: defer without calling the service. True once it may be probed."""
        with self._lock:
            return not self.failing or self._clock() >= self._open_until

    def record(self, error: BaseException | None, key: str = "") -> None:
        """The outcome of one unit of work (`key` names the message): None for success."""
        with self._lock:
            if error is None:
                self._failed_keys.clear()
                self._opened = 0
                self._open_until = 0.0
                return
            if not is_service_failure(error):
                return
            self._failed_keys.add(key or str(len(self._failed_keys)))
            if len(self._failed_keys) >= self.threshold:
                wait = min(self.max_open_seconds, self.open_seconds * 2**self._opened)
                self._opened += 1
                self._open_until = self._clock() + wait
