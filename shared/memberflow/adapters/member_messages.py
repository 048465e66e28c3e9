"""The channels escalation speaks through: the moderators' Slack channel, a reply in the member's Slack thread
(slack-sdk, whose client handles Slack's rate limits: bounded here to short waits), a reply in their Discourse topic
(the Discourse API, `Api-Key`/`Api-Username`), and an email through SES when no channel fits."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
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
from memberflow.retry import MAX_INLINE_WAIT_SECONDS

logger = logging.getLogger(__name__)

SLACK_TIMEOUT_SECONDS = 5
SLACK_FATAL_ERRORS = frozenset({"invalid_auth", "not_authed", "account_inactive", "token_revoked", "missing_scope"})
SLACK_REFUSALS = frozenset({"channel_not_found", "not_in_channel", "is_archived", "msg_too_long", "thread_not_found"})


class SlackMessages:
    """chat.postMessage through slack-sdk's WebClient."""

    def __init__(self, token: Callable[[], str], api_url: str = "") -> None:
        self._token = token
        self._api_url = api_url
        self._client: Any = None

    def _web(self) -> Any:
        if self._client is None:
            from slack_sdk import WebClient
            from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

            class ShortRateLimitWaits(RateLimitErrorRetryHandler):
                """Waits out a Retry-After of a few seconds; a longer one is spent on the queue."""

                def _can_retry(self, *, state: Any, request: Any, response: Any = None, error: Any = None) -> bool:
                    if response is None or response.status_code != 429:
                        return False
                    values = {k.lower(): v for k, v in response.headers.items()}.get("retry-after") or ["1"]
                    value = values[0] if isinstance(values, list) else values
                    return str(value).isdigit() and int(value) <= MAX_INLINE_WAIT_SECONDS

            options: dict[str, Any] = {
                "token": self._token(),
                "timeout": SLACK_TIMEOUT_SECONDS,
                "retry_handlers": [ConnectionErrorRetryHandler(), ShortRateLimitWaits(max_retry_count=2)],
            }
            if self._api_url:
                options["base_url"] = self._api_url.rstrip("/") + "/"
            self._client = WebClient(**options)
        return self._client

    def post(self, channel: str, text: str, thread_ts: str | None = None) -> None:
        from slack_sdk.errors import SlackApiError, SlackClientError

        try:
            self._web().chat_postMessage(channel=channel, text=text, thread_ts=thread_ts)
        except SlackApiError as error:
            raise _slack_failure(error) from None
        except SlackClientError as error:
            raise Transient(f"Slack unreachable: {type(error).__name__}") from None
        except OSError as error:
            raise Transient(f"Slack unreachable: {type(error).__name__}") from None


def _slack_failure(error: Any) -> Exception:
    response = error.response
    code = str(response.get("error", "")) if response is not None else ""
    status = int(getattr(response, "status_code", 0) or 0)
    if status == 429 or code == "ratelimited":
        value = str((response.headers or {}).get("Retry-After", "") if response is not None else "")
        return RetryLater("Slack rate limit", float(value) if value.isdigit() else 30.0)
    if status >= 500:
        return Transient(f"Slack {status}")
    if code in SLACK_FATAL_ERRORS:
        return CredentialsRejected(f"Slack refused the bot token: {code}", status)
    if code in SLACK_REFUSALS:
        return PermanentRefusal(code, "Slack refused the message", status)
    return AccountProblem(f"Slack refused chat.postMessage: {code or status}", status)


class DiscourseReplies:
    """A reply in a topic: `POST /posts.json` with the forum's API key (one bucket of 60 admin calls a minute)."""

    def __init__(self, base_url: str, credentials: Callable[[], Mapping[str, Any]]) -> None:
        self._base_url = base_url
        self._credentials = credentials
        self._transport: HttpJsonTransport | None = None

    def reply(self, topic_id: int, text: str, post_number: int | None = None) -> None:
        if self._transport is None:
            secret = self._credentials()
            self._transport = HttpJsonTransport(
                self._base_url,
                _discourse_failure,
                service="Discourse",
                headers={"Api-Key": str(secret["api_key"]), "Api-Username": str(secret.get("api_username", "system"))},
            )
        body: dict[str, Any] = {"topic_id": topic_id, "raw": text}
        if post_number is not None:
            body["reply_to_post_number"] = post_number
        # Not resent in the function: a reply that may have been made is not made twice.
        self._transport.call("POST", "/posts.json", body, attempts=1)


def _discourse_failure(answer: HttpAnswer) -> Exception:
    if answer.status == 429:
        return RateLimited("Discourse rate limit", answer.retry_after())
    if answer.status >= 500:
        return Transient(f"Discourse {answer.status}")
    if answer.status in (401, 403):
        return CredentialsRejected(f"Discourse refused the API key ({answer.status})", answer.status)
    return PermanentRefusal("refused", f"Discourse refused the reply ({answer.status})", answer.status)


class SesEmail:
    def __init__(self, sender: str) -> None:
        self._sender = sender

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
        self._slack.post(self._moderators_channel, text)

    def tell_member(self, platform: str, reply_to: Mapping[str, Any], email: str | None, text: str) -> str:
        if platform == "slack" and reply_to.get("channel") and reply_to.get("thread_ts"):
            self._slack.post(str(reply_to["channel"]), text, str(reply_to["thread_ts"]))
            return "slack"
        if platform == "discourse" and reply_to.get("topic_id") and self._discourse is not None:
            post_number = reply_to.get("post_number")
            self._discourse.reply(int(reply_to["topic_id"]), text, int(post_number) if post_number else None)
            return "discourse"
        if email:
            self._email.send(email, "Your support request", text)
            return "email"
        raise PermanentRefusal("unreachable", "the member can be reached neither where they asked nor by email")
