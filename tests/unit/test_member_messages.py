"""Whose problem a Slack or Discourse refusal is, without a network (slack-sdk's errors and Discourse's answers are
built as the clients build them).

- The moderators' channel is ours: Slack refusing it (`not_in_channel`, `channel_not_found`, `is_archived`), or the
  token, is an account problem: the safety report is retried, finally parked as retryable, and redriven.
- A member's thread or topic is theirs: gone or closed, the member is told by email when we have their address and
  an email sender is configured, and the trace says which channel told them, or why none did.
- A refused token or API key is read again from its secret once, and the call resent once when it changed.
- Slack's `rate_limited` is a rate limit as `ratelimited` is; `internal_error`, `fatal_error`, `service_unavailable`
  and `request_timeout` are Slack failing, not an account problem.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.slack_response import SlackResponse

from memberflow.adapters.http_json import HttpAnswer
from memberflow.adapters.member_messages import (
    SLACK_POST_SECONDS,
    SLACK_TIMEOUT_SECONDS,
    MemberMessenger,
    SlackMessages,
    _discourse_failure,
    _slack_failure,
    _slack_retry_handlers,
)
from memberflow.errors import (
    AccountProblem,
    CredentialsRejected,
    PermanentRefusal,
    RateLimited,
    RetryLater,
    Transient,
    is_service_failure,
)
from memberflow.escalation.ports import Told
from memberflow.escalation.rules import load_rules
from memberflow.escalation.service import EscalationDeps, escalate, status_changed
from memberflow.events import EscalationRequested, TicketStatusChanged
from memberflow.pipeline.envelope import QueuedEvent
from memberflow.pipeline.policy import Delivery, Park, Retry, RetryPolicy, decide
from memberflow.retry import MAX_INLINE_WAIT_SECONDS
from memberflow.trace import Outcome, Step
from support.fakes import FakeDesk, MemoryTicketLinks, MemoryTrace

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
MODERATORS = "C0MODS"


def slack_error(code: str, status: int = 200, headers: dict[str, str] | None = None) -> SlackApiError:
    """What slack-sdk raises for `{"ok": false, "error": code}` (HTTP 200, or a 429)."""
    response = SlackResponse(
        client=None,
        http_verb="POST",
        api_url="https://slack.com/api/chat.postMessage",
        req_args={},
        data={"ok": False, "error": code},
        headers=headers or {},
        status_code=status,
    )
    return SlackApiError("The request to the Slack API failed.", response)


class FakeWeb:
    """slack-sdk's WebClient as SlackMessages uses it: `refuse` maps a channel (or "*") to the error code Slack answers;
    `accepted` is the one token Slack takes (None: any)."""

    def __init__(self, token: str, refuse: dict[str, str] | None = None, accepted: str | None = None) -> None:
        self.token = token
        self.refuse = dict(refuse or {})
        self.accepted = accepted
        self.sent: list[tuple[str, str, str | None]] = []
        self.tokens: list[str] = []

    def chat_postMessage(self, *, channel: str, text: str, thread_ts: str | None = None) -> dict[str, Any]:  # noqa: N802
        self.tokens.append(self.token)
        if self.accepted is not None and self.token != self.accepted:
            raise slack_error("invalid_auth")
        code = self.refuse.get(channel) or self.refuse.get("*")
        if code:
            raise slack_error(code)
        self.sent.append((channel, text, thread_ts))
        return {"ok": True}


class Secret:
    """A secret as the runtime reads it: the cached value, or (fresh) what is stored now."""

    def __init__(self, cached: Any, stored: Any | None = None) -> None:
        self.cached, self.stored = cached, cached if stored is None else stored
        self.reads: list[bool] = []

    def __call__(self, fresh: bool) -> Any:
        self.reads.append(fresh)
        return self.stored if fresh else self.cached


def slack(web: FakeWeb, secret: Secret | None = None) -> SlackMessages:
    messages = SlackMessages(secret or Secret(web.token))
    messages._client, messages._current = web, web.token  # as _web() leaves them after building the client
    return messages


class FakeEmail:
    def __init__(self, configured: bool = True) -> None:
        self.configured = configured
        self.sent: list[tuple[str, str, str]] = []

    def send(self, to: str, subject: str, text: str) -> None:
        if not self.configured:
            raise AccountProblem("no sender address is configured for escalation emails (EscalationEmailFrom)")
        self.sent.append((to, subject, text))


class FakeDiscourse:
    def __init__(self, answer: HttpAnswer | None = None) -> None:
        self.answer = answer
        self.replies: list[tuple[int, str, int | None]] = []

    def reply(self, topic_id: int, text: str, post_number: int | None = None) -> None:
        if self.answer is not None:
            raise _discourse_failure(self.answer)
        self.replies.append((topic_id, text, post_number))


def messenger(web: FakeWeb, email: FakeEmail | None = None, discourse: Any = None) -> MemberMessenger:
    return MemberMessenger(slack(web), MODERATORS, discourse, email or FakeEmail())  # type: ignore[arg-type]


# ---------------------------------------------------------------- Slack's answers


@pytest.mark.parametrize(
    ("code", "status", "headers", "expected"),
    [
        ("ratelimited", 429, {"Retry-After": "7"}, RetryLater),
        ("rate_limited", 200, {}, RetryLater),
        ("internal_error", 200, {}, Transient),
        ("fatal_error", 200, {}, Transient),
        ("service_unavailable", 200, {}, Transient),
        ("request_timeout", 200, {}, Transient),
        ("invalid_auth", 200, {}, CredentialsRejected),
        ("not_authed", 200, {}, CredentialsRejected),
        ("account_inactive", 200, {}, CredentialsRejected),
        ("token_revoked", 200, {}, CredentialsRejected),
        ("missing_scope", 200, {}, CredentialsRejected),
        ("channel_not_found", 200, {}, PermanentRefusal),
        ("not_in_channel", 200, {}, PermanentRefusal),
        ("is_archived", 200, {}, PermanentRefusal),
        ("thread_not_found", 200, {}, PermanentRefusal),
    ],
)
def test_slacks_answers_are_named_by_whose_problem_they_are(code, status, headers, expected):
    failure = _slack_failure(slack_error(code, status, headers))
    assert type(failure) is expected, (code, failure)
    if expected is RetryLater:
        assert isinstance(failure, RateLimited) and failure.delay_seconds == (7 if status == 429 else 30)
    if expected is Transient:  # Slack failing: retried soon, never an operator's problem
        assert not isinstance(failure, AccountProblem | RateLimited) and is_service_failure(failure)


# ---------------------------------------------------------------- finding 1: the moderators' channel


def safety_report(key: str = "k1") -> QueuedEvent:
    event = EscalationRequested(
        thread="slack:T1:C1:1700000000.000100",
        platform="slack",
        via="keyword",
        rule="safety",
        author={"platform": "slack", "workspace": "T1", "user_id": "U1"},
        author_name="Ada",
        text="someone keeps threatening me",
        permalink="https://example.slack.com/archives/C1/p1700000000000100",
        requested_at=NOW,
        reply_to={"channel": "C1", "thread_ts": "1700000000.000100"},
    )
    return QueuedEvent(idempotency_key=key, correlation_id="c-" + key, source="slack", event=event)


def deps(messages: MemberMessenger, trace: MemoryTrace | None = None) -> EscalationDeps:
    return EscalationDeps(
        desk=FakeDesk(),
        links=MemoryTicketLinks(),
        messenger=messages,
        rules=load_rules(),
        trace=trace or MemoryTrace(),
        clock=lambda: NOW,
    )


@pytest.mark.parametrize(
    "code", ["not_in_channel", "channel_not_found", "is_archived", "invalid_auth", "missing_scope"]
)
def test_slack_refusing_the_moderators_channel_is_an_account_problem_retried_then_parked_retryable(code):
    web = FakeWeb("xoxb-1", refuse={MODERATORS: code})
    d = deps(messenger(web))
    with pytest.raises(AccountProblem) as refused:
        escalate(d, safety_report())
    assert d.desk.calls == []  # no ticket before the moderators have heard
    error = refused.value
    assert not isinstance(error, PermanentRefusal) and is_service_failure(error)
    if code in ("not_in_channel", "channel_not_found", "is_archived"):
        assert MODERATORS in str(error) and code in str(error) and "invite the app" in str(error)

    policy = RetryPolicy()
    first = decide(error, Delivery(receive_count=1), policy, service_failing=False)
    assert isinstance(first, Retry) and first.counts_as_attempt
    last = decide(error, Delivery(receive_count=policy.max_attempts), policy, service_failing=False)
    assert isinstance(last, Park) and last.kind == "exhausted" and last.retryable  # redriven, never dropped
    outage = decide(error, Delivery(receive_count=45, deferrals=40), policy, service_failing=True)
    assert isinstance(outage, Park) and outage.retryable

    # The operator invites the bot: the retry alerts the moderators and opens the ticket.
    web.refuse.clear()
    assert escalate(d, safety_report())["result"] == "ticket_created"
    assert [channel for channel, _, _ in web.sent] == [MODERATORS]


def test_a_message_slack_refuses_for_itself_stays_refused_for_the_moderators_too():
    web = FakeWeb("xoxb-1", refuse={MODERATORS: "msg_too_long"})
    with pytest.raises(PermanentRefusal):
        messenger(web).notify_moderators("x" * 50_000)


# ---------------------------------------------------------------- finding 2: the member's thread or topic


@pytest.mark.parametrize("code", ["channel_not_found", "not_in_channel", "is_archived", "thread_not_found"])
def test_a_member_whose_slack_thread_is_gone_is_told_by_email(code):
    email = FakeEmail()
    web = FakeWeb("xoxb-1", refuse={"C1": code})
    told = messenger(web, email).tell_member("slack", {"channel": "C1", "thread_ts": "1.2"}, "ada@example.org", "hi")
    assert told == Told("email", instead_of=f"Slack thread refused: {code}")
    assert email.sent == [("ada@example.org", "Your support request", "hi")]


@pytest.mark.parametrize(
    ("status", "body", "why"),
    [
        (422, '{"action": "create_post", "errors": ["Topic not found"]}', "422: Topic not found"),
        (404, '{"errors": ["The requested URL or resource could not be found."], "error_type": "not_found"}', "404"),
    ],
)
def test_a_member_whose_discourse_topic_is_gone_or_closed_is_told_by_email(status, body, why):
    email = FakeEmail()
    discourse = FakeDiscourse(HttpAnswer(status, body, {}))
    told = messenger(FakeWeb("xoxb-1"), email, discourse).tell_member(
        "discourse", {"topic_id": 77, "post_number": 3}, "ada@example.org", "hi"
    )
    assert told.channel == "email" and told.instead_of.startswith("Discourse topic refused") and why in told.instead_of
    assert len(email.sent) == 1


def test_without_an_address_or_a_sender_the_refusal_says_why_nobody_told_the_member():
    web = FakeWeb("xoxb-1", refuse={"C1": "channel_not_found"})
    reply_to = {"channel": "C1", "thread_ts": "1.2"}
    with pytest.raises(PermanentRefusal) as no_address:
        messenger(web).tell_member("slack", reply_to, None, "hi")
    assert no_address.value.detail == "Slack thread refused: channel_not_found; no email address on file"
    unconfigured = FakeEmail(configured=False)
    with pytest.raises(PermanentRefusal) as no_sender:
        messenger(web, unconfigured).tell_member("slack", reply_to, "ada@example.org", "hi")
    assert "no email sender is configured (EscalationEmailFrom)" in no_sender.value.detail
    assert unconfigured.sent == []


def test_a_refused_token_in_the_members_thread_is_retried_not_sent_by_email():
    email = FakeEmail()
    web = FakeWeb("xoxb-1", accepted="xoxb-other")
    with pytest.raises(CredentialsRejected):
        messenger(web, email).tell_member("slack", {"channel": "C1", "thread_ts": "1.2"}, "ada@example.org", "hi")
    assert email.sent == []


def solved(ticket_id: int, key: str = "s1") -> QueuedEvent:
    event = TicketStatusChanged(ticket_id=ticket_id, status="solved", changed_at=NOW + timedelta(hours=1))
    return QueuedEvent(idempotency_key=key, correlation_id="c-" + key, source="zendesk", event=event)


def escalated_billing(d: EscalationDeps, email: str | None) -> None:
    event = safety_report().event.model_copy(update={"rule": "billing", "email": email, "text": "charged twice"})
    escalate(d, QueuedEvent(idempotency_key="b1", correlation_id="c-b1", source="slack", event=event))


def test_the_trace_names_the_channel_that_told_the_member_or_why_none_did():
    trace = MemoryTrace()
    email = FakeEmail()
    d = deps(messenger(FakeWeb("xoxb-1", refuse={"C1": "channel_not_found"}), email), trace)
    escalated_billing(d, "ada@example.org")
    result = status_changed(d, solved(1))
    assert result == {"result": "told", "channel": "email", "instead_of": "Slack thread refused: channel_not_found"}
    [told] = [r for r in trace.records if r.step == Step.MEMBER_TOLD]
    assert told.outcome == Outcome.OK
    assert told.detail == "ticket #1 solved: told by email (Slack thread refused: channel_not_found)"

    trace = MemoryTrace()
    d = deps(messenger(FakeWeb("xoxb-1", refuse={"C1": "is_archived"})), trace)
    escalated_billing(d, None)
    result = status_changed(d, solved(1))
    assert result["result"] == "not_told" and result["why"].endswith("no email address on file")
    [refused] = [r for r in trace.records if r.step == Step.MEMBER_TOLD]
    assert refused.outcome == Outcome.REFUSED
    assert refused.detail == (
        "ticket #1 solved: not told: unreachable (Slack thread refused: is_archived; no email address on file)"
    )


# ---------------------------------------------------------------- finding 3: a rotated token or key


def test_a_refused_slack_token_is_read_again_once_and_the_post_sent_again_with_the_new_one():
    web = FakeWeb("xoxb-old", accepted="xoxb-new")
    secret = Secret("xoxb-old", stored="xoxb-new")
    messages = slack(web, secret)
    messages.post("C1", "hello")
    assert web.tokens == ["xoxb-old", "xoxb-new"] and secret.reads == [True]
    messages.post("C1", "again")  # from now on, the new token without reading the secret again
    assert web.tokens[-1] == "xoxb-new" and secret.reads == [True] and len(web.sent) == 2


def test_a_refused_slack_token_that_was_not_rotated_is_not_sent_again():
    web = FakeWeb("xoxb-old", accepted="xoxb-new")
    secret = Secret("xoxb-old")
    with pytest.raises(CredentialsRejected):
        slack(web, secret).post("C1", "hello")
    assert web.tokens == ["xoxb-old"] and secret.reads == [True]


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (401, "", CredentialsRejected),
        (
            403,
            '{"errors": ["You are not permitted to view the requested resource. The API username or key is invalid."],'
            ' "error_type": "invalid_access"}',
            CredentialsRejected,
        ),
        (
            403,
            '{"errors": ["You are not permitted to view the requested resource."], "error_type": "invalid_access"}',
            AccountProblem,
        ),
        (422, '{"action": "create_post", "errors": ["Topic not found"]}', PermanentRefusal),
        (429, '{"errors": ["slow down"], "error_type": "rate_limit"}', RateLimited),
        (502, "", Transient),
    ],
)
def test_discourses_answers_and_only_a_bad_key_reads_the_secret_again(status, body, expected):
    failure = _discourse_failure(HttpAnswer(status, body, {"Retry-After": "60"}))
    assert type(failure) is expected, failure


# Discourse's shapes: discourse/discourse app/controllers/application_controller.rb (rescue_discourse_actions,
# not_logged_in, rate limits) and lib/auth/default_current_user_provider.rb (a key that matches no user).
DISCOURSE_BAD_KEY = (
    '{"errors": ["You are not permitted to view the requested resource. The API username or key is invalid."],'
    ' "error_type": "invalid_access"}'
)
DISCOURSE_NOT_LOGGED_IN = '{"errors": ["You need to be logged in to do that."], "error_type": "not_logged_in"}'
DISCOURSE_NOT_PERMITTED = (
    '{"errors": ["You are not permitted to view the requested resource."], "error_type": "invalid_access"}'
)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (DISCOURSE_BAD_KEY, CredentialsRejected),
        (DISCOURSE_NOT_LOGGED_IN, CredentialsRejected),  # no key matched: the action needs a user
        (DISCOURSE_NOT_PERMITTED, AccountProblem),  # a valid key whose user may not post there
        ('{"errors": ["The API username or key is invalid."]}', CredentialsRejected),  # no error_type: the wording
    ],
)
def test_discourse_403s_are_told_apart_by_error_type_first(body, expected):
    failure = _discourse_failure(HttpAnswer(403, body, {}))
    assert type(failure) is expected, failure


def test_a_discourse_rate_limit_without_retry_after_waits_as_long_as_its_body_says():
    body = (
        '{"errors": ["You have performed this action too many times. Please wait 42 seconds before trying again."],'
        ' "error_type": "rate_limit", "extras": {"wait_seconds": 42, "time_left": "42 seconds"}}'
    )
    headers = {"Discourse-Rate-Limit-Error-Code": "admin_api_key_rate_limit"}
    failure = _discourse_failure(HttpAnswer(429, body, headers))
    assert isinstance(failure, RateLimited) and failure.retry_after == 42
    assert "admin_api_key_rate_limit" in str(failure)
    said = _discourse_failure(HttpAnswer(429, body, {**headers, "Retry-After": "7"}))
    assert isinstance(said, RateLimited) and said.retry_after == 7  # Retry-After, when sent, wins


def test_a_discourse_key_refused_as_not_logged_in_is_read_again_once_and_the_reply_sent_with_the_new_one(
    monkeypatch,
):
    from memberflow.adapters import member_messages

    sent: list[str] = []

    class Transport:
        def __init__(self, base_url: str, map_error: Any, *, service: str, headers: dict[str, str]) -> None:
            self._map_error, self._key = map_error, headers["Api-Key"]

        def call(self, method: str, path: str, body: Any = None, params: Any = None, **kwargs: Any) -> dict:
            sent.append(self._key)
            if self._key != "new-key":
                raise self._map_error(HttpAnswer(403, DISCOURSE_NOT_LOGGED_IN, {}))
            return {"id": 1}

    monkeypatch.setattr(member_messages, "HttpJsonTransport", Transport)
    secret = Secret({"api_key": "old-key", "api_username": "system"}, stored={"api_key": "new-key"})
    member_messages.DiscourseReplies("https://forum.example.org", secret).reply(77, "hi", 3)
    assert sent == ["old-key", "new-key"] and secret.reads == [False, True]


# ---------------------------------------------------------------- finding 8: one post's worst case


def test_one_slack_posts_worst_case_is_two_timed_out_attempts_and_the_longest_pause():
    assert SLACK_POST_SECONDS == 2 * SLACK_TIMEOUT_SECONDS + MAX_INLINE_WAIT_SECONDS == 10
    connection, rate_limit = _slack_retry_handlers()
    # slack-sdk counts every handler's retries together: a connection error is retried once, a 429 up to three
    # times, and none starts unless its wait and a whole attempt end within SLACK_POST_SECONDS.
    assert type(connection).__mro__[1].__name__ == "ConnectionErrorRetryHandler" and connection.max_retry_count == 1
    assert type(rate_limit).__mro__[1].__name__ == "RateLimitErrorRetryHandler"
    assert connection.interval_calculator.calculate_sleep_duration(0) < 1.5 <= MAX_INLINE_WAIT_SECONDS


def test_the_escalations_worst_case_counts_one_slack_post_as_it_really_is(monkeypatch):
    from memberflow.adapters.aws import WORST_CASE_CALL_SECONDS
    from memberflow.runtime import escalation

    class Desk:
        worst_case_call_seconds = 22.0

    monkeypatch.setattr(escalation, "desk", lambda: Desk())
    # Six DynamoDB calls of its own, and two reads of the suppression list (was the author erased?).
    expected = 4 * 22.0 + SLACK_POST_SECONDS + 8 * WORST_CASE_CALL_SECONDS
    assert escalation.worst_case_ms_per_message() == int(expected * 1000) == 178_000
