"""The channels escalation speaks through: the moderators' Slack channel, a reply in the member's Slack thread
(slack-sdk, whose client handles Slack's rate limits: bounded here to short waits within one post's time), a reply in
their Discourse topic (the Discourse API, `Api-Key`/`Api-Username`), and an email through SES when no channel fits
or the one they asked in refuses the reply.

Whose problem a refusal is decides its fate. The moderators' channel is ours: Slack refusing it (the bot was never
invited, the channel was archived or renamed) is an account problem an operator fixes, so the safety report is
retried and finally parked as retryable. A member's thread or topic is theirs: gone or closed, it is refused for that
member, who is then told by email when we have their address. A refused token or API key is read again from its
secret once (it may have been rotated since this container read it)."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any

from memberflow.adapters.http_json import HttpAnswer, HttpJsonTransport
from memberflow.errors import (
    AccountProblem,
    CredentialsRejected,
    PermanentRefusal,
    RateLimited,
    RetryLater,
    Transient,
)
from memberflow.escalation.ports import Told
from memberflow.retry import MAX_INLINE_WAIT_SECONDS, worst_case_seconds

logger = logging.getLogger(__name__)

SLACK_TIMEOUT_SECONDS = 4
"""Each request to Slack (slack-sdk passes it to urllib as the socket timeout). 4 s, down from 5, so that a post with
one retry fits the time the escalation allows it (see SLACK_POST_SECONDS)."""
SLACK_POST_SECONDS = worst_case_seconds(SLACK_TIMEOUT_SECONDS, 2)
"""The longest one post takes, retries and waits included: 10 s, two attempts that run into the timeout with the
longest inline pause (MAX_INLINE_WAIT_SECONDS) between them. A retry (after a connection error, a 429 with a short
Retry-After, or a token read again) starts only when its wait and a whole attempt still end within this, so quick
answers may get a third attempt and slow ones never go past it. runtime.escalation counts it for every escalation."""
SLACK_RATE_LIMIT_RETRIES = 3
SLACK_CREDENTIAL_ERRORS = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "missing_scope",
        "not_allowed_token_type",
    }
)
"""The token is wrong, revoked, expired, of the wrong kind or lacks a scope: read the secret again, else an operator
must install the app again or store a new token."""
SLACK_RATE_LIMIT_ERRORS = frozenset({"ratelimited", "rate_limited"})
"""`ratelimited` comes with a 429; `rate_limited` (chat.postMessage's own posting limit) with HTTP 200."""
SLACK_TRANSIENT_ERRORS = frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout", "team_added_to_org"}
)
"""Slack failing (answered with HTTP 200 as much as with a 5xx): worth trying again soon."""
SLACK_CHANNEL_ERRORS = frozenset({"channel_not_found", "not_in_channel", "is_archived"})
"""The channel does not exist for the bot, the bot is not in it, or it was archived."""
SLACK_REFUSALS = SLACK_CHANNEL_ERRORS | frozenset({"msg_too_long", "thread_not_found", "cannot_reply_to_message"})
"""Refusals of this one message. For a member's thread they are that member's problem (told by email instead); for the
moderators' channel, a channel error is ours (MemberMessenger.notify_moderators)."""

_POST_DEADLINE: ContextVar[float] = ContextVar("slack_post_deadline", default=float("inf"))
"""When the post under way must have ended (time.monotonic()); read by the retry handlers."""


def _fits(wait: float) -> bool:
    """A wait of `wait` seconds and one more whole attempt end before the post's deadline."""
    return time.monotonic() + wait + SLACK_TIMEOUT_SECONDS <= _POST_DEADLINE.get()


def slack_retry_after(headers: Mapping[str, Any] | None) -> float | None:
    """Retry-After in whole seconds from slack-sdk's headers (a list of values on a 429, a plain value on a 200)."""
    values = {str(k).lower(): v for k, v in (headers or {}).items()}.get("retry-after")
    value = values[0] if isinstance(values, list) and values else values
    text = str(value).strip() if value is not None else ""
    return float(text) if text.isdigit() else None


def _slack_retry_handlers() -> list[Any]:
    """slack-sdk's connection-error retry and a short wait on a 429, both only within the post's deadline. slack-sdk
    counts the retries of every handler together, so one connection error and one 429 are one retry each."""
    from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

    class ConnectionRetryInTime(ConnectionErrorRetryHandler):
        """Sends again after a connection that failed before Slack answered (its pause is at most 1.5 s)."""

        def _can_retry(self, *, state: Any, request: Any, response: Any = None, error: Any = None) -> bool:
            can = super()._can_retry(state=state, request=request, response=response, error=error)
            return can and _fits(MAX_INLINE_WAIT_SECONDS)

    class ShortRateLimitWaits(RateLimitErrorRetryHandler):
        """Waits out a Retry-After of a few seconds when the post still has time for it; a longer one is spent on
        the queue."""

        def _can_retry(self, *, state: Any, request: Any, response: Any = None, error: Any = None) -> bool:
            if response is None or response.status_code != 429:
                return False
            wait = slack_retry_after(response.headers)
            return wait is not None and wait <= MAX_INLINE_WAIT_SECONDS and _fits(wait)

        def prepare_for_next_attempt(
            self, *, state: Any, request: Any, response: Any = None, error: Any = None
        ) -> None:
            wait = slack_retry_after(response.headers if response is not None else None) or 1.0
            room = _POST_DEADLINE.get() - time.monotonic() - SLACK_TIMEOUT_SECONDS
            time.sleep(max(0.0, min(wait + random.random(), MAX_INLINE_WAIT_SECONDS, max(wait, room))))
            state.next_attempt_requested = True
            state.increment_current_attempt()

    return [ConnectionRetryInTime(max_retry_count=1), ShortRateLimitWaits(max_retry_count=SLACK_RATE_LIMIT_RETRIES)]


class SlackMessages:
    """chat.postMessage through slack-sdk's WebClient. `token(fresh)` reads the bot token (`fresh`: not from the
    secrets cache, after Slack refused the one in use)."""

    def __init__(self, token: Callable[[bool], str], api_url: str = "") -> None:
        self._token = token
        self._api_url = api_url
        self._client: Any = None
        self._current = ""

    def _web(self) -> Any:
        if self._client is None:
            from slack_sdk import WebClient

            self._current = self._token(False)
            options: dict[str, Any] = {
                "token": self._current,
                "timeout": SLACK_TIMEOUT_SECONDS,
                "retry_handlers": _slack_retry_handlers(),
            }
            if self._api_url:
                options["base_url"] = self._api_url.rstrip("/") + "/"
            self._client = WebClient(**options)
        return self._client

    def post(self, channel: str, text: str, thread_ts: str | None = None) -> None:
        """One message, within SLACK_POST_SECONDS (besides reading the secret again after a refused token)."""
        deadline = _POST_DEADLINE.set(time.monotonic() + SLACK_POST_SECONDS)
        try:
            try:
                self._send(channel, text, thread_ts)
            except CredentialsRejected as refused:
                # The token may have been rotated since this container read it: read the secret again, once.
                if not self._read_token_again():
                    raise
                if not _fits(0.0):
                    raise CredentialsRejected(
                        f"{refused}; a new token was read for the next try", refused.status
                    ) from None
                self._send(channel, text, thread_ts)
        finally:
            _POST_DEADLINE.reset(deadline)

    def _read_token_again(self) -> bool:
        """True when the secret now holds another token (the client uses it from now on)."""
        fresh = self._token(True)
        if not fresh or fresh == self._current:
            return False
        self._current = fresh
        self._web().token = fresh
        logger.info("Slack: the bot token was read again after a refusal and has changed")
        return True

    def _send(self, channel: str, text: str, thread_ts: str | None) -> None:
        from slack_sdk.errors import SlackApiError, SlackClientError

        client = self._web()
        try:
            client.chat_postMessage(channel=channel, text=text, thread_ts=thread_ts)
        except SlackApiError as error:
            raise _slack_failure(error) from None
        except (SlackClientError, OSError) as error:
            raise Transient(f"Slack unreachable: {type(error).__name__}") from None


def _slack_failure(error: Any) -> Exception:
    response = error.response
    code = str(response.get("error", "")) if response is not None else ""
    status = int(getattr(response, "status_code", 0) or 0)
    if status == 429 or code in SLACK_RATE_LIMIT_ERRORS:
        wait = slack_retry_after(getattr(response, "headers", None))
        return RetryLater(f"Slack rate limit ({code or status})", wait if wait is not None else 30.0)
    if status >= 500 or code in SLACK_TRANSIENT_ERRORS:
        return Transient(f"Slack failed: {code or status}")
    if code in SLACK_CREDENTIAL_ERRORS:
        return CredentialsRejected(f"Slack refused the bot token: {code}", status)
    if code in SLACK_REFUSALS:
        return PermanentRefusal(code, "Slack refused the message", status)
    return AccountProblem(f"Slack refused chat.postMessage: {code or status}", status)


class DiscourseReplies:
    """A reply in a topic: `POST /posts.json` with the forum's API key (one bucket of 60 admin calls a minute).
    `credentials(fresh)` reads {"api_key", "api_username"} (`fresh`: not from the secrets cache, after Discourse
    refused the key in use)."""

    def __init__(self, base_url: str, credentials: Callable[[bool], Mapping[str, Any]]) -> None:
        self._base_url = base_url
        self._credentials = credentials
        self._transport: HttpJsonTransport | None = None
        self._headers: dict[str, str] = {}

    def _http(self, fresh: bool = False) -> HttpJsonTransport:
        if self._transport is None or fresh:
            secret = self._credentials(fresh)
            self._headers = {
                "Api-Key": str(secret["api_key"]),
                "Api-Username": str(secret.get("api_username", "system")),
            }
            self._transport = HttpJsonTransport(
                self._base_url, _discourse_failure, service="Discourse", headers=self._headers
            )
        return self._transport

    def reply(self, topic_id: int, text: str, post_number: int | None = None) -> None:
        body: dict[str, Any] = {"topic_id": topic_id, "raw": text}
        if post_number is not None:
            body["reply_to_post_number"] = post_number
        # Not resent in the function: a reply that may have been made is not made twice. A refused key made none.
        try:
            self._http().call("POST", "/posts.json", body, attempts=1)
        except CredentialsRejected:
            # The key may have been rotated since this container read it: read the secret again, once.
            used = self._headers
            self._http(fresh=True)
            if self._headers == used:
                raise
            logger.info("Discourse: the API key was read again after a refusal and has changed")
            self._http().call("POST", "/posts.json", body, attempts=1)


DISCOURSE_CREDENTIAL_ERROR_TYPES = frozenset({"not_logged_in"})
"""`error_type`s that always mean our key was not taken: `not_logged_in` (403) is what an action that requires a user
answers when no key matched (discourse/discourse app/controllers/application_controller.rb)."""
DISCOURSE_BAD_KEY = "key is invalid"
"""In `invalid_access`'s message only for a bad or unknown key, or a key without Api-Username: "You are not permitted
to view the requested resource. The API username or key is invalid." (lib/auth/default_current_user_provider.rb)."""


def _discourse_body(answer: HttpAnswer) -> dict[str, Any]:
    """Discourse's JSON error body (`{"errors": [...], "error_type", "extras"?}`), or {} when it is not JSON."""
    import json

    try:
        body = json.loads(answer.text or "{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _discourse_errors(answer: HttpAnswer, body: Mapping[str, Any]) -> str:
    """The first of Discourse's `errors`, or the start of a body that is not JSON."""
    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        return str(errors[0])[:200]
    return "" if body else (answer.text or "").strip()[:200]


def _discourse_wait(body: Mapping[str, Any]) -> float | None:
    """`extras.wait_seconds` of a 429 `rate_limit` body (application_controller.rb), for when Retry-After is missing."""
    extras = body.get("extras")
    wait = extras.get("wait_seconds") if isinstance(extras, dict) else None
    return float(wait) if isinstance(wait, int | float) and not isinstance(wait, bool) and wait >= 0 else None


def _discourse_failure(answer: HttpAnswer) -> Exception:
    body = _discourse_body(answer)
    if answer.status == 429:
        wait = answer.retry_after()
        limiter = answer.headers.get("Discourse-Rate-Limit-Error-Code")  # e.g. admin_api_key_rate_limit
        return RateLimited(
            f"Discourse rate limit{f' ({limiter})' if limiter else ''}",
            wait if wait is not None else _discourse_wait(body),
        )
    if answer.status >= 500:
        return Transient(f"Discourse {answer.status}")
    message = _discourse_errors(answer, body)
    error_type = str(body.get("error_type") or "")
    if error_type:
        # `invalid_access` also refuses a valid key's user (a category it cannot post in): only the key wording
        # says the key itself was not taken.
        bad_key = error_type in DISCOURSE_CREDENTIAL_ERROR_TYPES or (
            error_type == "invalid_access" and DISCOURSE_BAD_KEY in message.lower()
        )
    else:  # a body without error_type (a proxy's, an older Discourse): the wording alone
        bad_key = DISCOURSE_BAD_KEY in message.lower()
    if answer.status == 401 or (answer.status == 403 and bad_key):
        return CredentialsRejected(f"Discourse refused the API key ({answer.status})", answer.status)
    if answer.status == 403:
        # The key is valid but its user may not do this (a category it cannot post in): an operator must look.
        return AccountProblem(f"Discourse refused the API user ({answer.status}): {message}", answer.status)
    # 404/422: the topic is gone, closed or not found ("Topic not found"): refused for this member.
    detail = f"Discourse refused the reply ({answer.status}{': ' + message if message else ''})"
    return PermanentRefusal("refused", detail, answer.status)


class SesEmail:
    def __init__(self, sender: str) -> None:
        self._sender = sender

    @property
    def configured(self) -> bool:
        """A sender is configured (EscalationEmailFrom): members can be told by email."""
        return bool(self._sender)

    def send(self, to: str, subject: str, text: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        from memberflow.adapters.aws import aws_failure, client

        if not self._sender:
            raise AccountProblem("no sender address is configured for escalation emails (EscalationEmailFrom)")
        try:
            client("ses").send_email(
                Source=self._sender,
                Destination={"ToAddresses": [to]},
                Message={"Subject": {"Data": subject}, "Body": {"Text": {"Data": text}}},
            )
        except (BotoCoreError, ClientError) as error:
            raise aws_failure(error, "SES") from None


class MemberMessenger:
    """`escalation.ports.Messenger`: moderators on Slack; a member where they asked, else by email."""

    def __init__(
        self,
        slack: SlackMessages,
        moderators_channel: str,
        discourse: DiscourseReplies | None,
        email: SesEmail,
    ) -> None:
        self._slack = slack
        self._moderators_channel = moderators_channel
        self._discourse = discourse
        self._email = email

    def notify_moderators(self, text: str) -> None:
        if not self._moderators_channel:
            raise AccountProblem("no moderators' channel is configured (EscalationModeratorsChannel)")
        try:
            self._slack.post(self._moderators_channel, text)
        except PermanentRefusal as refusal:
            if refusal.title not in SLACK_CHANNEL_ERRORS:
                raise
            # Our own channel: the bot was never invited, or the channel was archived or renamed. An operator fixes
            # that, so the safety report is retried and finally parked as retryable, never dropped.
            raise AccountProblem(
                f"Slack refused the moderators' channel {self._moderators_channel}: {refusal.title} (invite the app "
                "to the channel, or set EscalationModeratorsChannel to one it is in)",
                refusal.status,
            ) from None

    def tell_member(self, platform: str, reply_to: Mapping[str, Any], email: str | None, text: str) -> Told:
        refused = ""
        if platform == "slack" and reply_to.get("channel") and reply_to.get("thread_ts"):
            try:
                self._slack.post(str(reply_to["channel"]), text, str(reply_to["thread_ts"]))
                return Told("slack")
            except PermanentRefusal as refusal:  # the thread or its channel is gone: this member's problem
                refused = f"Slack thread refused: {refusal.title}"
        elif platform == "discourse" and reply_to.get("topic_id") and self._discourse is not None:
            post_number = reply_to.get("post_number")
            try:
                self._discourse.reply(int(reply_to["topic_id"]), text, int(post_number) if post_number else None)
                return Told("discourse")
            except PermanentRefusal as refusal:  # the topic is gone or closed
                refused = f"Discourse topic refused: {refusal.detail or refusal.title}"
        if email and (self._email.configured or not refused):
            # Without a sender, the email path is an operator's problem only when it is the member's one channel.
            self._email.send(email, "Your support request", text)
            return Told("email", instead_of=refused)
        why = [refused or "nowhere to reply where they asked"]
        why.append("no email sender is configured (EscalationEmailFrom)" if email else "no email address on file")
        raise PermanentRefusal("unreachable", "; ".join(why))
