"""Traffic control shared by the sandboxes: a connection limit, request budgets (rate limits) and injected faults.

Real APIs throttle and fail; clients must be tested against both, reproducibly, so
faults draw from a seeded RNG and can target single addresses.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Budget:
    """A service's fixed-window rate limit: `requests` per `window_seconds` (None: unlimited), the window starting
    when the budget is made and again at the first request after it ends."""

    requests: int | None = None
    window_seconds: float = 60.0
    window_started: float = field(default_factory=time.monotonic)
    used: int = 0
    """Requests granted in this window."""
    asked: int = 0
    """Requests counted in this window, refused ones included (what a service that counts every call reports)."""

    def take(self) -> tuple[bool, int, int]:
        """(allowed, remaining, seconds until the window ends)."""
        current = time.monotonic()
        if current - self.window_started >= self.window_seconds:
            self.window_started, self.used, self.asked = current, 0, 0
        self.asked += 1
        wait = max(1, int(self.window_started + self.window_seconds - current + 0.999))
        if self.requests is None:
            return True, 1_000_000, wait
        if self.used >= self.requests:
            return False, 0, wait
        self.used += 1
        return True, self.requests - self.used, wait


def budget_from(body: dict[str, Any], default_window: float = 60.0) -> Budget:
    """The budget a `/_sandbox/budget` body sets: `{"requests": N | null, "window_seconds": W}`, restarted now."""
    requests = body.get("requests")
    if requests is not None and (not isinstance(requests, int) or isinstance(requests, bool) or requests < 0):
        raise ValueError("requests must be a whole number, 0 or more (0: every call refused), or null")
    window = body.get("window_seconds", default_window)
    if isinstance(window, bool) or not isinstance(window, int | float) or window <= 0:
        raise ValueError("window_seconds must be a positive number")
    return Budget(requests, float(window))


class ConcurrencyGate:
    """Counts requests in flight so a sandbox can refuse those beyond its limit (None: no limit)."""

    def __init__(self, limit: int | None):
        self.limit = limit
        self._in_flight = 0
        self._lock = threading.Lock()

    def try_enter(self) -> bool:
        with self._lock:
            if self.limit is not None and self._in_flight >= self.limit:
                return False
            self._in_flight += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight


@dataclass
class FaultSettings:
    """What `/_sandbox/faults` accepts; unknown keys fail loudly rather than being ignored."""

    rate_429: float = 0.0
    rate_500: float = 0.0
    latency_ms: int = 0
    fail_emails: dict[str, int] = field(default_factory=dict)
    seed: int | None = None
    # Over-limit requests get an empty-bodied 429 instead of the service's error document,
    # as Mailchimp does at very high volume; off by default (see `SandboxApp.over_limit_response`).
    bare_throttle: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.bare_throttle, bool):
            raise ValueError("bare_throttle must be true or false")
        for name in ("rate_429", "rate_500"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.latency_ms < 0:
            raise ValueError("latency_ms must not be negative")
        for email, status in self.fail_emails.items():
            if not isinstance(status, int) or not 400 <= status <= 599:
                raise ValueError(f"fail_emails[{email!r}] must be an HTTP error status")

    def as_json(self) -> dict[str, Any]:
        return {
            "rate_429": self.rate_429,
            "rate_500": self.rate_500,
            "latency_ms": self.latency_ms,
            "fail_emails": dict(self.fail_emails),
            "seed": self.seed,
            "bare_throttle": self.bare_throttle,
        }


class FaultInjector:
    """Decides which requests fail; answers are statuses so each sandbox words its own errors.

    `subject_key` maps a configured address to the key the sandbox reports for a request
    (Mailchimp: the subscriber hash), so targeted failures also hit routes naming a member by id.
    """

    def __init__(self, subject_key: Callable[[str], str] = str.lower) -> None:
        self._subject_key = subject_key
        self._lock = threading.Lock()
        self.configure(FaultSettings())

    def configure(self, settings: FaultSettings) -> None:
        with self._lock:
            self.settings = settings
            self._random = random.Random(settings.seed)
            self._failing = {self._subject_key(email): status for email, status in settings.fail_emails.items()}

    def delay(self) -> None:
        if self.settings.latency_ms:
            time.sleep(self.settings.latency_ms / 1000)

    def random_failure(self) -> int | None:
        """One draw decides: below rate_429 a 429, below rate_429 + rate_500 a 500."""
        with self._lock:
            settings = self.settings
            if not (settings.rate_429 or settings.rate_500):
                return None
            draw = self._random.random()
        if draw < settings.rate_429:
            return 429
        if draw < settings.rate_429 + settings.rate_500:
            return 500
        return None

    def failure_for(self, subjects: set[str]) -> int | None:
        with self._lock:
            statuses = [self._failing[key] for key in subjects if key in self._failing]
        return statuses[0] if statuses else None
