"""Sending the queued events to memberflow: signed anew on every attempt (the signature's timestamp must be within
five minutes of memberflow's clock), retried with back-off while memberflow cannot take them, dropped with a log
line when it refuses them for good:

- 2xx (queued, ignored): the event is removed;
- 408, 429, 5xx, or no answer (timeout, connection refused): retried, the event after a back-off of its own, and the
  whole queue pauses (at least `Retry-After` when given), so an outage is probed, not hammered;
- any other 4xx (400 invalid payload, 401 signature, 413 too large): logged and removed, since the same request
  would get the same answer.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any

import requests

from memberflow_discord_relay import USER_AGENT
from memberflow_discord_relay.outbox import Outbox, Queued
from memberflow_discord_relay.signing import signature_headers, signing_key

logger = logging.getLogger("memberflow_discord_relay.delivery")

RETRYABLE = frozenset({408, 429})
"""4xx answers that say "later", not "never"."""


@dataclass(frozen=True)
class Answer:
    status: int | None
    """None when no answer came (timeout, connection refused, DNS)."""
    retry_after: float | None = None
    error: str = ""
    """memberflow's `error` code, or the transport failure, for the log."""

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        return self.status is None or self.status in RETRYABLE or self.status >= 500


class HttpPoster:
    """POSTs one body to memberflow's `/webhooks/discord`, signed now."""

    def __init__(
        self,
        url: str,
        private_key_hex: str,
        *,
        session: requests.Session | None = None,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url
        self._key = signing_key(private_key_hex)
        self._session = session or requests.Session()
        self._timeout = timeout
        self._clock = clock

    def __call__(self, body: bytes) -> Answer:
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        headers |= signature_headers(self._key, body, int(self._clock()))
        try:
            response = self._session.post(self.url, data=body, headers=headers, timeout=self._timeout)
        except requests.RequestException as error:
            return Answer(None, error=type(error).__name__)
        return Answer(
            response.status_code,
            retry_after(response.headers.get("Retry-After"), self._clock()),
            _error_code(response),
        )


@dataclass
class Backoff:
    base: float = 1.0
    maximum: float = 300.0
    jitter: Callable[[float], float] = field(default=lambda delay: random.uniform(delay / 2, delay))

    def delay(self, failures: int, retry_after: float | None = None) -> float:
        """Exponential in the number of failures in a row, never shorter than the server's Retry-After."""
        exponential = self.jitter(min(self.maximum, self.base * 2 ** max(0, failures - 1)))
        return max(exponential, retry_after or 0.0)


class Deliverer:
    def __init__(
        self,
        outbox: Outbox,
        post: Callable[[bytes], Answer],
        *,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.outbox = outbox
        self._post = post
        self._backoff = backoff or Backoff()
        self._clock = clock
        self._failures = 0
        """Failed attempts in a row, whichever events they were for."""
        self._paused_until = 0.0

    def deliver_due(self) -> float | None:
        """Send every event that is due, oldest first, until memberflow cannot take one. Returns the seconds until
        the next attempt is due, or None when the queue is empty."""
        now = self._clock()
        while now >= self._paused_until and (queued := self.outbox.next_due(now)) is not None:
            self._attempt(queued, now)
            now = self._clock()
        return self.seconds_until_next(now)

    def seconds_until_next(self, now: float) -> float | None:
        due = self.outbox.next_attempt_at()
        if due is None:
            return None
        return max(0.0, due - now, self._paused_until - now)

    def _attempt(self, queued: Queued, now: float) -> None:
        answer = self._post(queued.body)
        about: dict[str, Any] = {
            "event_id": queued.event_id,
            "event_type": queued.event_type,
            "status": answer.status,
            "error": answer.error,
            "attempt": queued.attempts + 1,
        }
        if answer.delivered:
            self.outbox.remove(queued.seq)
            self._failures = 0
            logger.info("event delivered", extra=about)
        elif answer.retryable:
            self._failures += 1
            attempts = queued.attempts + 1
            retry_in = self._backoff.delay(attempts, answer.retry_after)
            self.outbox.retry_at(queued.seq, now + retry_in, attempts)
            # The whole queue waits too: as long as this event's back-off (kept on disk, so a restart does not
            # start over) and never less than the failures in a row call for.
            self._paused_until = now + max(retry_in, self._backoff.delay(self._failures, answer.retry_after))
            logger.warning(
                "memberflow cannot take the event now: retrying", extra=about | {"retry_in_seconds": round(retry_in, 1)}
            )
        else:
            self.outbox.remove(queued.seq)
            logger.error("memberflow refused the event: dropped", extra=about)


def retry_after(value: str | None, now: float) -> float | None:
    """Retry-After in seconds, from delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, moment.timestamp() - now)


def _error_code(response: requests.Response) -> str:
    try:
        said = response.json()
    except ValueError:
        return ""
    return str(said.get("error") or said.get("status") or "") if isinstance(said, dict) else ""
