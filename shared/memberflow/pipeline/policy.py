"""What happens to a queued message whose work failed. Pure: no queue, no clock, no AWS.

- A refusal for good (or a message that can never be read) is parked at once, with its reason.
- A member's attempts are spent only on failures that may be that member's: an unexpected error, or a transient
  one while the service otherwise answers. They go back to the queue with an exponential delay, and the last one
  is parked.
- When the service itself is failing (throttling, 5xx on every call, an account problem), nobody is at fault: the
  message is deferred with the consumer's back-off and its attempts are left alone. Only after a long outage
  (`max_deferrals`) is it parked, marked retryable, so it is redriven once the service answers again.
- A message handed back untried because the invocation had no time left for it is nobody's failure either: no
  attempt is spent, no outage is counted, and it is parked only at the queue's own last delivery (where SQS would
  move it without a reason), marked retryable, so that it is redriven and tried.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from memberflow.errors import (
    AccountProblem,
    ComplianceState,
    ForgottenAddress,
    InvalidMessage,
    NotFound,
    PermanentRefusal,
    RateLimited,
    RetryLater,
    Transient,
    is_service_failure,
)

MAX_QUEUE_DELAY_SECONDS = 11 * 3600
"""SQS caps a message's total invisibility at 12 hours from receipt; a longer request is rejected, not clamped."""
MAX_BACKOFF_SECONDS = 900

_NAMED = (
    ComplianceState,
    ForgottenAddress,
    PermanentRefusal,
    NotFound,
    AccountProblem,
    RetryLater,
    RateLimited,
    Transient,
    InvalidMessage,
)
"""How failures are named in reasons: a credentials refusal is an AccountProblem to whoever reads the DLQ."""

ParkKind = Literal["refused", "invalid", "exhausted", "outage", "untried"]


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    """Attempts a member's event gets for failures that may be its own."""
    retry_base_seconds: int = 30
    max_deferrals: int = 40
    """Deferrals for a failing service before the message is parked (about ten hours with the default base)."""
    max_receives: int = 50
    """The queue's own redrive limit (maxReceiveCount): at that delivery SQS would move the message to the
    dead-letter queue without a reason on its next receive, so the worker parks it itself, with one."""

    def member_backoff(self, attempt: int) -> int:
        return min(MAX_BACKOFF_SECONDS, self.retry_base_seconds * 2 ** max(0, attempt - 1))

    @property
    def max_service_backoff(self) -> int:
        """The longest the consumer waits before trying a failing service again: 32 x the base, at most 15 minutes,
        so it notices a recovery soon after it happens."""
        return min(MAX_BACKOFF_SECONDS, max(1, self.retry_base_seconds) * 32)

    def service_backoff(self, deferrals: int) -> int:
        """The consumer's back-off while its service is failing: doubling up to `max_service_backoff`."""
        return max(1, min(self.max_service_backoff, self.retry_base_seconds * 2 ** max(0, deferrals)))


@dataclass(frozen=True)
class Delivery:
    """What the policy needs to know about one delivery of a message."""

    receive_count: int
    """SQS's ApproximateReceiveCount: every delivery so far, this one included."""
    deferrals: int = 0
    """Earlier deliveries that were handed back because the service was failing, not because of this member."""

    @property
    def attempts(self) -> int:
        """Attempts spent on this member, this one included."""
        return max(1, self.receive_count - self.deferrals)


@dataclass(frozen=True)
class Retry:
    delay_seconds: int
    reason: str
    counts_as_attempt: bool
    """False for a deferral: the service was at fault, the member's attempts are untouched."""


@dataclass(frozen=True)
class Park:
    reason: str
    kind: ParkKind

    @property
    def retryable(self) -> bool:
        """Parked for a reason that may pass: redriven automatically once the service answers again."""
        return self.kind in ("exhausted", "outage", "untried")


Decision = Retry | Park


def describe(error: BaseException) -> str:
    """`<category>: <message>`: the error's place in memberflow's vocabulary, or the type of an unexpected one."""
    category = next(
        (kind.__name__ for kind in type(error).__mro__ if kind.__module__ == "memberflow.errors" and kind in _NAMED),
        type(error).__name__,
    )
    return f"{category}: {error}"


def decide(error: BaseException, delivery: Delivery, policy: RetryPolicy, *, service_failing: bool) -> Decision:
    reason = describe(error)
    if isinstance(error, InvalidMessage):
        return Park(reason, "invalid")
    if isinstance(error, PermanentRefusal):
        return Park(reason, "refused")
    if isinstance(error, RateLimited) or (service_failing and is_service_failure(error)):
        return defer(reason, delivery, policy, retry_after=getattr(error, "retry_after", None))
    if delivery.attempts >= policy.max_attempts or delivery.receive_count >= policy.max_receives:
        kind: ParkKind = "exhausted"
        return Park(f"{reason} (after {delivery.attempts} attempts)", kind)
    return Retry(policy.member_backoff(delivery.attempts), reason, counts_as_attempt=True)


def defer(reason: str, delivery: Delivery, policy: RetryPolicy, *, retry_after: float | None = None) -> Decision:
    """Hand the message back without spending the member's attempts."""
    if delivery.deferrals >= policy.max_deferrals or delivery.receive_count >= policy.max_receives:
        return Park(f"{reason} (deferred {delivery.deferrals} times, delivered {delivery.receive_count})", "outage")
    delay = max(policy.service_backoff(delivery.deferrals), int(retry_after or 0) + 1 if retry_after else 0)
    return Retry(min(delay, MAX_QUEUE_DELAY_SECONDS), reason, counts_as_attempt=False)


def hand_back_untried(reason: str, delivery: Delivery, policy: RetryPolicy) -> Decision:
    """An event the invocation had no time to start: straight back to the queue for a fresh invocation, spending
    neither an attempt nor the outage allowance (`max_deferrals`). Parked only at the queue's last delivery."""
    if delivery.receive_count >= policy.max_receives:
        return Park(f"{reason} (delivered {delivery.receive_count} times, the queue's limit)", "untried")
    return Retry(0, reason, counts_as_attempt=False)
