"""memberflow's one error vocabulary. Adapters translate their service's failures into these; domain code and the
queue worker decide what to do from the type alone, never from a `botocore`, `requests` or `urllib3` exception.

Two questions decide a failure's fate:
- Is it this member's (or this request's) fault? Then it spends the member's attempts, or is refused for good.
- Or is the service itself failing (throttling, 5xx, unreachable, an account problem an operator must fix)? Then no
  member is at fault: the worker backs off the whole consumer and nobody's attempts are spent.
"""

from __future__ import annotations


class MemberflowError(Exception):
    """Base of every error memberflow raises on purpose."""


class Transient(MemberflowError):
    """Worth retrying soon: a 5xx answer, a timeout, a connection that failed."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimited(Transient):
    """The service asked us to slow down (429, a bare 403 from a load shedder). `retry_after` in seconds, when the
    service said how long; a long one is waited out on the queue, never inside a function."""


class RetryLater(RateLimited):
    """The service asked us to wait longer than is sensible inside one invocation: the wait is spent on the queue."""

    def __init__(self, message: str, delay_seconds: float) -> None:
        super().__init__(message, retry_after=delay_seconds)

    @property
    def delay_seconds(self) -> float:
        return float(self.retry_after or 0)


class AddressThrottled(RetryLater):
    """The service asked us to wait before trying this one address again (Mailchimp's signup throttle: the address
    signed up to many lists very recently). The service itself is fine, so nobody else waits."""


class ServiceUnavailable(Transient):
    """A service we depend on could not be reached or could not store what we sent (e.g. the event queue)."""


class QueueUnavailable(ServiceUnavailable):
    """The event was not stored (throttled, permission, network, missing queue): the sender should retry."""


class PermanentRefusal(MemberflowError):
    """The service refused this request for a reason a retry will not change; record or park it, never retry it."""

    def __init__(self, title: str, detail: str = "", status: int = 0) -> None:
        super().__init__(f"{status} {title}: {detail}" if status else f"{title}: {detail}")
        self.title = title
        self.detail = detail
        self.status = status

    @property
    def reason(self) -> str:
        return self.title


class ComplianceState(PermanentRefusal):
    """The address unsubscribed, bounced or is under review: it cannot be set to subscribed by API."""


class ForgottenAddress(PermanentRefusal):
    """Permanently deleted at the person's request: it can never be re-added by API, not even as pending."""


class ResourceGone(PermanentRefusal):
    """The one record this request names no longer exists (a deleted Eventbrite order, an expired Zendesk job status,
    a ticket an agent deleted): this request's answer, not a failing service. A retry changes nothing; the caller
    settles what came from it, or the message is parked as refused. Unlike `NotFound`, never an account problem."""


class AccountProblem(MemberflowError):
    """The service refused the request itself (bad credentials, unknown audience or journey, no access): no member
    is at fault and an operator can fix it, so work is retried and finally parked, never dropped."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class CredentialsRejected(AccountProblem):
    """The key or token was not taken (a 401, or a service's own code for it): wrong or rotated. Adapters re-read the
    secret once before giving up."""


class NotFound(AccountProblem):
    """404: the resource, or the container it lives in (an audience, a journey); callers that can tell them apart
    say which."""


class InvalidMessage(MemberflowError):
    """A queued message that can never be processed (not an envelope, an unknown event type, an invalid event)."""


def is_service_failure(error: BaseException) -> bool:
    """True when the service as a whole is failing or misconfigured, rather than this member's request."""
    # AddressThrottled stays a RetryLater, because brief retries re-raise a RetryLater as it is (anything else
    # `Transient` with a long wait becomes a plain RetryLater, which is a service failure), the policy defers it
    # without spending an attempt, and `except (Transient, AccountProblem)` callers hand it back. Only here does it
    # differ: the service answers, so one address's wait must not open the breaker for everyone.
    return isinstance(error, Transient | AccountProblem) and not isinstance(error, AddressThrottled)
