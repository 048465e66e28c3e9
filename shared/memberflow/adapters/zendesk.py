"""Zendesk through zenpy (the well-kept client), bounded and translated into `memberflow.errors`.

- zenpy sleeps and resends on every 429 with a Retry-After, without limit unless `ratelimit_budget` is set: the
  budget is reset before each of our calls (zenpy spends it over the client's life), so no call waits more than
  `ratelimit_budget_seconds` inside the function; a longer wait raises `RetryLater` and is spent on the queue.
- zenpy has no per-call headers: our `requests.Session` subclass adds `Idempotency-Key` to the one call that
  carries it (a context variable holds the current call), counts calls and remembers the last Retry-After.
- Another host (`api_url`, a sandbox) is set the way zenpy reads it on every request: `ZENPY_FORCE_SCHEME` and
  `ZENPY_FORCE_NETLOC` (zenpy matches its answers to the URL it built, so the session must not rewrite it).
- zenpy's object cache is disabled: a ticket's status must be read fresh.
- A 404 `RecordNotFound` names one record that is not (or no longer) there. For a call that looks one up (a job
  status, kept one day; the ticket to comment on, which an agent may have deleted) that is the answer to this
  request: a `PermanentRefusal`, no sign of a failing service. Any other 404 (`InvalidEndpoint` for a wrong API
  path, a page for an unknown subdomain), or a missing record on a call that names none, means the account,
  subdomain or path is wrong: `NotFound`, an account problem.
"""

from __future__ import annotations

import contextvars
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests

from memberflow.bulk import chunks
from memberflow.errors import (
    AccountProblem,
    CredentialsRejected,
    NotFound,
    PermanentRefusal,
    RateLimited,
    ResourceGone,
    RetryLater,
    Transient,
)
from memberflow.escalation.ports import JobResult, NewTicket, Ticket
from memberflow.retry import with_brief_retries, worst_case_seconds

logger = logging.getLogger(__name__)

T = TypeVar("T")
TIMEOUT_SECONDS = 5.0
ATTEMPTS = 2
DEFAULT_RATELIMIT_BUDGET_SECONDS = 5
DEFAULT_RETRY_LATER_SECONDS = 60.0
MAX_BULK = 100
SHOW_MANY = 100
"""Ids, or external ids, per `users/show_many` call (Zendesk's limit)."""
PERMANENT_DELETE_WINDOW_SECONDS = 600.0
DEFAULT_PERMANENT_DELETES_PER_WINDOW = 350
"""Zendesk permanently deletes at most 700 users per 10 minutes per account; the escalation consumer runs at most
2 containers at a time (its queue's MaximumConcurrency), each taking half."""


@dataclass
class _Call:
    idempotency_key: str | None = None
    retry_after: float | None = None


_CURRENT: contextvars.ContextVar[_Call | None] = contextvars.ContextVar("zendesk_call", default=None)


class WaitTooLong(Exception):
    """Zendesk asked for a longer wait than the budget allows: raised before zenpy starts sleeping it out."""


class PermanentDeletePace:
    """At most `limit` permanent deletes per `window_seconds` from this adapter (one per container: the runtime
    caches it), counted when a user's deletion starts. Over it, `RetryLater` with the time until a slot frees: the
    queue holds the erasure that long. Zendesk's own 429 on a permanent delete (containers come and go, so the
    account may still go over) takes the usual path: `RetryLater` past the rate-limit budget."""

    def __init__(
        self,
        limit: int = DEFAULT_PERMANENT_DELETES_PER_WINDOW,
        window_seconds: float = PERMANENT_DELETE_WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1:
            raise ValueError("at least one permanent delete per window")
        self.limit = limit
        self.window_seconds = window_seconds
        self._clock = clock
        self._started: deque[float] = deque()

    def take(self) -> None:
        now = self._clock()
        while self._started and now - self._started[0] >= self.window_seconds:
            self._started.popleft()
        if len(self._started) >= self.limit:
            wait = max(1.0, self._started[0] + self.window_seconds - now)
            raise RetryLater(f"Zendesk permanent deletes: {self.limit} per {self.window_seconds:.0f} s used", wait)
        self._started.append(now)


class ZendeskSession(requests.Session):
    """zenpy's session: per-call Idempotency-Key, a call count, the last Retry-After; a Retry-After beyond the budget
    ends the call at once (zenpy would sleep through most of the budget first)."""

    def __init__(self, max_wait_seconds: float = DEFAULT_RATELIMIT_BUDGET_SECONDS) -> None:
        super().__init__()
        self.calls = 0
        self.max_wait_seconds = max_wait_seconds

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        method = method.decode() if isinstance(method, bytes) else method
        call = _CURRENT.get()
        if call is not None and call.idempotency_key and method.upper() == "POST":
            kwargs["headers"] = {**(kwargs.get("headers") or {}), "Idempotency-Key": call.idempotency_key}
        self.calls += 1
        response = super().request(method, url, *args, **kwargs)
        if call is not None and response.status_code == 429:
            value = response.headers.get("Retry-After", "").strip()
            call.retry_after = float(value) if value.isdigit() else None
            if call.retry_after is not None and call.retry_after >= self.max_wait_seconds:
                raise WaitTooLong()
        return response


class ZendeskDesk:
    """`escalation.ports.TicketDesk` over zenpy."""

    def __init__(
        self,
        credentials: Callable[[], dict[str, Any]],
        subdomain: str,
        *,
        api_url: str = "",
        ratelimit_budget_seconds: int = DEFAULT_RATELIMIT_BUDGET_SECONDS,
        timeout: float = TIMEOUT_SECONDS,
        permanent_deletes: PermanentDeletePace | None = None,
    ) -> None:
        self._credentials = credentials
        self._subdomain = subdomain
        self._api_url = api_url
        self._budget = ratelimit_budget_seconds
        self._timeout = timeout
        self.session = ZendeskSession(ratelimit_budget_seconds)
        self._pace = permanent_deletes or PermanentDeletePace()
        self._client: Any = None
        if api_url:
            target = urlsplit(api_url)
            os.environ["ZENPY_FORCE_SCHEME"] = target.scheme
            os.environ["ZENPY_FORCE_NETLOC"] = target.netloc

    @property
    def calls(self) -> int:
        """Requests sent to Zendesk by this adapter (resends after a 429 included)."""
        return self.session.calls

    @property
    def worst_case_call_seconds(self) -> float:
        return worst_case_seconds(self._timeout + self._budget, ATTEMPTS)

    def _zenpy(self) -> Any:
        if self._client is None:
            from zenpy import Zenpy

            secret = self._credentials()
            self._client = Zenpy(
                subdomain=self._subdomain,
                email=str(secret["email"]),
                token=str(secret["api_token"]),
                session=self.session,
                timeout=self._timeout,
                ratelimit_budget=self._budget,
                disable_cache=True,
            )
        return self._client

    def _run(
        self,
        what: str,
        work: Callable[[Any], T],
        *,
        idempotency_key: str | None = None,
        retry: bool = True,
        looks_up: str | None = None,
    ) -> T:
        """`looks_up` names the one record the call reads or changes by id (a 404 `RecordNotFound` is then this
        request's refusal, not an account problem)."""

        def once() -> T:
            call = _Call(idempotency_key)
            token = _CURRENT.set(call)
            try:
                client = self._zenpy()
                for api in vars(client).values():
                    if hasattr(api, "ratelimit_budget"):
                        api.ratelimit_budget = self._budget  # zenpy spends it over the client's life
                return work(client)
            except Exception as error:  # noqa: BLE001 - every zenpy/requests failure leaves as one of ours
                raise _translate(error, what, call, looks_up) from None
            finally:
                _CURRENT.reset(token)

        return with_brief_retries(once, attempts=ATTEMPTS if retry else 1)

    # ---------------------------------------------------------------- TicketDesk

    def create(self, ticket: NewTicket, idempotency_key: str) -> Ticket:
        requester_id = self.requester_id(ticket)

        def create(client: Any) -> Ticket:
            audit = client.tickets.create(_ticket(ticket, requester_id))
            return Ticket(int(audit.ticket.id), str(audit.ticket.status), ticket.external_id)

        return self._run("create a ticket", create, idempotency_key=idempotency_key)

    def requester_id(self, ticket: NewTicket) -> int:
        """The member as a Zendesk user, created or matched (by email, else by their platform identity)."""
        from zenpy.lib.api_objects import User

        def upsert(client: Any) -> int:
            fields: dict[str, Any] = {"name": ticket.requester.name, "external_id": ticket.requester.external_id}
            if ticket.requester.email:
                fields["email"] = ticket.requester.email
            return int(client.users.create_or_update(User(**fields)).id)

        return self._run("create or update the requester", upsert)

    def create_many(self, tickets: Sequence[NewTicket]) -> str:
        if not 1 <= len(tickets) <= MAX_BULK:
            raise ValueError(f"a bulk job takes 1 to {MAX_BULK} tickets, not {len(tickets)}")

        def create_many(client: Any) -> str:
            return str(client.tickets.create([_ticket(ticket, None) for ticket in tickets]).id)

        # No Idempotency-Key on bulk creates: never resent here (the links say which threads it was for).
        return self._run("create tickets in bulk", create_many, retry=False)

    def job(self, job_id: str) -> JobResult:
        def read(client: Any) -> JobResult:
            job = client.job_status(id=job_id)
            tickets: dict[int, int] = {}
            for result in job.results or []:
                index, ticket_id = _field(result, "index"), _field(result, "id")
                failed = _field(result, "error") or _field(result, "errors") or _field(result, "success") is False
                if index is not None and ticket_id is not None and not failed:
                    tickets[int(index)] = int(ticket_id)
            return JobResult(str(job.status), tickets)

        # Zendesk keeps a job status one day: later (or for an id it never had) 404 RecordNotFound, a refusal the
        # escalation answers by looking for the tickets by external id.
        return self._run("read a job status", read, looks_up="job status")

    def add_comment(self, ticket_id: int, body: str, *, public: bool = False) -> None:
        from zenpy.lib.api_objects import Comment
        from zenpy.lib.api_objects import Ticket as ZenpyTicket

        def comment(client: Any) -> None:
            client.tickets.update(ZenpyTicket(id=ticket_id, comment=Comment(body=body, public=public)))

        # Not resent: a comment has no idempotency key, and the queue's retry checks the link first.
        self._run("comment on a ticket", comment, retry=False, looks_up="ticket")

    def tickets_with_external_id(self, external_id: str) -> list[Ticket]:
        def listing(client: Any) -> list[Ticket]:
            return [Ticket(int(t.id), str(t.status), t.external_id) for t in client.tickets(external_id=external_id)]

        return self._run("list tickets by external id", listing)

    def forget_requester(
        self, emails: Sequence[str], external_ids: Sequence[str], ticket_external_ids: Sequence[str] = ()
    ) -> int:
        """Soft delete, then permanent delete (Zendesk allows it once the user is soft-deleted). Zendesk refuses to
        delete the requester of a ticket that is not closed: their tickets are closed first.

        The users are found without Zendesk's search, whose index lags minutes (a requester created a minute ago is
        not in it yet): by external id (`users/show_many?external_ids=`: every requester memberflow created or
        matched one by one carries the member's platform identity), and as the requesters of the member's tickets,
        listed by their `external_id` (`tickets?external_id=`: the requesters Zendesk created by address for a bulk
        job carry no external id) and read by id (`users/show_many?ids=`). A ticket's requester is taken only when
        it is this person (one of their addresses or identities): an agent may have made someone else the
        requester. Search by address stays as an extra, for users memberflow did not create (the member wrote to
        support directly), once indexed.

        A user soft-deleted before (by an attempt whose permanent delete failed: a 429 beyond the budget, a 5xx; or
        by an agent) is no longer listed by external id nor found by search, only among the deleted users: they are
        looked for there too, by address or external id, and deleted for good, so a retry finishes what an attempt
        began instead of leaving the user to Zendesk's 30-day purge. That list also holds every permanently deleted
        user (name "Permanently Deleted User", no address), so it is read in full: one call per 100 deleted users,
        on every attempt (an attempt in another container, or an agent, may have left one soft-deleted while
        another of the person's users is still live: nothing else tells).

        Permanent deletes are paced (`PermanentDeletePace`): a user is only touched when their permanent delete fits
        in the window, otherwise `RetryLater` hands the erasure back to the queue until it does."""
        from zenpy.lib.api_objects import Ticket as ZenpyTicket

        addresses = {email.lower() for email in emails}
        identities = set(external_ids)

        def is_them(user: Any) -> bool:
            return str(user.email or "").lower() in addresses or (user.external_id or "") in identities

        def soft_deleted(client: Any, skip: set[int]) -> list[int]:
            return [int(user.id) for user in client.users.deleted() if int(user.id) not in skip and is_them(user)]

        def forget(client: Any) -> int:
            users: dict[int, Any] = {}
            # show_many takes at most 100 external ids a call, as it does ids.
            for some in chunks(list(dict.fromkeys(external_ids)), SHOW_MANY):
                users.update({int(u.id): u for u in client.users(external_id=list(some))})
            requesters = {
                int(ticket.requester_id)
                for ticket_external_id in dict.fromkeys(ticket_external_ids)
                for ticket in client.tickets(external_id=ticket_external_id)
                if ticket.requester_id is not None
            } - set(users)
            for chunk in chunks(sorted(requesters), SHOW_MANY):
                users.update({int(u.id): u for u in client.users(ids=chunk) if is_them(u)})
            for email in emails:
                users.update({int(u.id): u for u in client.search(type="user", email=email)})
            # A user or ticket Zendesk no longer has (RecordNotFound: deleted since it was listed, by an earlier
            # attempt, another erasure or an agent) is already where erasure takes it: the next step goes on.
            for user in users.values():
                self._pace.take()  # before anything of this user changes: a wait leaves them as they were
                for ticket in _unless_gone(_requested, client, user) or []:
                    if ticket.status != "closed":
                        _unless_gone(client.tickets.update, ZenpyTicket(id=ticket.id, status="closed"))
                _unless_gone(client.users.delete, user)
                _unless_gone(client.users.permanently_delete, int(user.id))
            # Left soft-deleted by an earlier attempt (or an agent): only the permanent delete is still to do.
            left = soft_deleted(client, skip=set(users))
            for user_id in left:
                self._pace.take()
                _unless_gone(client.users.permanently_delete, user_id)
            return len(users) + len(left)

        return self._run("delete the requester", forget)

    def is_available(self) -> bool:
        """Zendesk answers and accepts our credentials: one cheap authenticated read (the API user itself), not
        resent, so the redrive's check stays within one call's timeout and rate-limit budget."""
        try:
            self._run("read the API user", lambda client: client.users.me(), retry=False)
        except (Transient, AccountProblem) as failure:
            logger.info("Zendesk does not answer", extra={"reason": str(failure)[:300]})
            return False
        return True


def _ticket(ticket: NewTicket, requester_id: int | None) -> Any:
    from zenpy.lib.api_objects import Comment
    from zenpy.lib.api_objects import Ticket as ZenpyTicket

    fields: dict[str, Any] = {
        "subject": ticket.subject,
        "comment": Comment(body=ticket.description, public=False),
        "priority": ticket.priority,
        "tags": list(ticket.tags),
        "external_id": ticket.external_id,
    }
    if requester_id is not None:
        fields["requester_id"] = requester_id
    else:
        from zenpy.lib.api_objects import User

        # Bulk: Zendesk matches or creates the requester by address.
        fields["requester"] = User(name=ticket.requester.name, email=ticket.requester.email)
    if ticket.group_id is not None:
        fields["group_id"] = ticket.group_id
    if ticket.followup_of is not None:
        fields["via_followup_source_id"] = ticket.followup_of
    return ZenpyTicket(**fields)


def _unless_gone(step: Callable[..., T], *args: Any) -> T | None:
    """`step(*args)`, or None when Zendesk answers that its record is not there (404 `RecordNotFound`). Any other
    404 (a wrong path or subdomain) still fails the call."""
    from zenpy.lib.exception import RecordNotFoundException

    try:
        return step(*args)
    except RecordNotFoundException:
        return None


def _requested(client: Any, user: Any) -> list[Any]:
    """The tickets `user` requested, every page read."""
    return list(client.users.requested(user))


def _field(result: Any, name: str) -> Any:
    return result.get(name) if isinstance(result, dict) else getattr(result, name, None)


def _translate(error: Exception, what: str, call: _Call, looks_up: str | None = None) -> Exception:
    from zenpy.lib.exception import APIException, RatelimitBudgetExceeded, RecordNotFoundException, ZenpyException

    if isinstance(error, RatelimitBudgetExceeded | WaitTooLong):
        return RetryLater(f"Zendesk rate limit while trying to {what}", call.retry_after or DEFAULT_RETRY_LATER_SECONDS)
    response = getattr(error, "response", None)
    if isinstance(error, RecordNotFoundException):
        return _not_found(404, "RecordNotFound", what, looks_up)  # zenpy raises it for Zendesk's RecordNotFound
    if isinstance(error, APIException | requests.HTTPError) and response is not None:
        return _from_status(response.status_code, _error_name(response), what, call, looks_up)
    if isinstance(error, requests.RequestException):
        return Transient(f"Zendesk unreachable while trying to {what}: {type(error).__name__}")
    if isinstance(error, ZenpyException):
        return Transient(f"Zendesk answered unexpectedly while trying to {what}: {type(error).__name__}")
    return error


def _error_name(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("error", "")) if isinstance(body, dict) else ""


def _from_status(status: int, name: str, what: str, call: _Call, looks_up: str | None = None) -> Exception:
    if status == 429:
        # A 429 without Retry-After (zenpy does not wait then): a brief pause, then the queue.
        return RateLimited(f"Zendesk rate limit while trying to {what}", call.retry_after)
    if status >= 500:
        return Transient(f"Zendesk {status} while trying to {what}")
    if status == 401:
        return CredentialsRejected(f"Zendesk refused the credentials ({what})", status)
    if status == 403:
        return AccountProblem(f"Zendesk forbids this ({what})", status)
    if status == 404:
        return _not_found(status, name, what, looks_up)
    # 400 IdempotentRequestError (same key, another body: a bug of ours), 422 RecordInvalid: retrying cannot help.
    return PermanentRefusal(name or "refused", f"Zendesk refused to {what}", status)


def _not_found(status: int, name: str, what: str, looks_up: str | None) -> Exception:
    """A missing record that the call looks up is this request's answer (refused for good, not a failing service);
    any other 404 means the account, the subdomain or the API path is wrong."""
    if name == "RecordNotFound" and looks_up:
        return ResourceGone(name, f"Zendesk has no such {looks_up} (while trying to {what})", status)
    return NotFound(f"Zendesk: not found while trying to {what}", status)
