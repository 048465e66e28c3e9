"""The escalation's sandboxes behave as the services do, checked with the official clients unmodified (zenpy,
slack-sdk) and with memberflow's adapters: Zendesk's Idempotency-Key, bulk jobs, request budget with integer
Retry-After, user deletion rules and signed webhooks; Slack's rate limit; Discourse replies."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import requests
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from zenpy.lib.api_objects import Comment, Ticket, User
from zenpy.lib.exception import APIException

from memberflow.adapters.member_messages import DiscourseReplies, MemberMessenger, SesEmail, SlackMessages
from memberflow.adapters.zendesk import ZendeskDesk
from memberflow.errors import AccountProblem, CredentialsRejected, PermanentRefusal, RetryLater, Transient
from memberflow.escalation.ports import NewTicket, Requester, Told
from memberflow.escalation.rules import load_rules
from memberflow.escalation.service import EscalationDeps, escalate, escalate_in_bulk, external_id
from memberflow.pipeline.envelope import QueuedEvent
from memberflow_sandboxes.discourse import DiscourseSandbox
from memberflow_sandboxes.slack import SlackSandbox
from memberflow_sandboxes.zendesk import ZendeskSandbox
from support import zendesk as zendesk_fixtures
from support.escalations import slack_escalation
from support.fakes import FakeMessenger, MemoryTicketLinks, MemoryTrace

zendesk = zendesk_fixtures.zendesk
fresh = zendesk_fixtures.fresh


def desk(sandbox: ZendeskSandbox, budget: int = 5) -> ZendeskDesk:
    credentials = {"email": sandbox.email, "api_token": sandbox.api_token}
    return ZendeskDesk(lambda: credentials, "community", api_url=sandbox.base_url, ratelimit_budget_seconds=budget)


def ticket(n: int = 1, email: str | None = "ada@example.org") -> NewTicket:
    return NewTicket(
        subject=f"[billing] charged twice {n}",
        description="I was charged twice",
        requester=Requester("Ada", email, "slack:T1:U1"),
        priority="normal",
        tags=("community", "slack", "billing"),
        external_id=f"community-{n}",
    )


def post_ticket(sandbox: ZendeskSandbox, body: dict, key: str) -> requests.Response:
    return requests.post(
        f"{sandbox.url}/tickets.json",
        json=body,
        headers={"Idempotency-Key": key},
        auth=(f"{sandbox.email}/token", sandbox.api_token),
        timeout=5,
    )


def test_zenpy_creates_reads_updates_and_lists_tickets_by_external_id(zendesk):
    client = zendesk.zenpy()
    user = client.users.create_or_update(User(name="Ada", email="ada@example.org", external_id="slack:T1:U1"))
    audit = client.tickets.create(
        Ticket(subject="s", comment=Comment(body="hello"), requester_id=user.id, priority="urgent", external_id="x")
    )
    client.tickets.update(Ticket(id=audit.ticket.id, comment=Comment(body="again", public=False)))
    assert client.tickets(id=audit.ticket.id).priority == "urgent"
    assert [t.id for t in client.tickets(external_id="x")] == [audit.ticket.id]
    assert [c.body for c in client.tickets.comments(ticket=audit.ticket.id)] == ["hello", "again"]
    again = client.users.create_or_update(User(name="Ada L.", email="ada@example.org"))
    assert again.id == user.id


def test_the_idempotency_key_returns_the_first_answer_and_refuses_another_body(zendesk):
    body = {"ticket": {"subject": "s", "comment": {"body": "b"}, "requester": {"name": "A", "email": "a@x.org"}}}
    first = post_ticket(zendesk, body, "key-1")
    again = post_ticket(zendesk, body, "key-1")
    assert (first.status_code, first.headers["x-idempotency-lookup"]) == (201, "miss")
    assert (again.status_code, again.headers["x-idempotency-lookup"]) == (201, "hit")
    assert again.json()["ticket"]["id"] == first.json()["ticket"]["id"]
    other = post_ticket(zendesk, {"ticket": {**body["ticket"], "subject": "t"}}, "key-1")
    assert other.status_code == 400 and other.json()["error"] == "IdempotentRequestError"
    assert len(zendesk.state.snapshot()["tickets"]) == 1


def test_the_adapter_creates_once_per_key_and_maps_a_conflict_to_a_refusal(zendesk):
    zd = desk(zendesk)
    first, again = zd.create(ticket(), "k"), zd.create(ticket(), "k")
    assert first.id == again.id
    with pytest.raises(PermanentRefusal):
        zd.create(ticket(2), "k")


def test_bulk_create_and_job_status_through_zenpy_and_the_adapter(zendesk):
    zd = desk(zendesk)
    job = zd.job(zd.create_many([ticket(n, f"m{n}@example.org") for n in range(100)]))
    assert job.done and sorted(job.tickets) == list(range(100))
    with pytest.raises(PermanentRefusal):  # Zendesk takes 100 at most: a bug of ours if ever sent
        zd._run("bulk", lambda client: client.tickets.create([Ticket(subject="x")] * 101), retry=False)


def test_an_unknown_or_expired_job_status_is_404_record_not_found_and_a_wrong_path_is_invalid_endpoint(zendesk):
    session = requests.Session()
    session.auth = (f"{zendesk.email}/token", zendesk.api_token)
    zd = desk(zendesk)
    job_id = zd.create_many([ticket()])
    assert session.get(f"{zendesk.url}/job_statuses/{job_id}.json", timeout=5).status_code == 200
    unknown = session.get(f"{zendesk.url}/job_statuses/0123456789abcdef.json", timeout=5)
    assert (unknown.status_code, unknown.json()["error"]) == (404, "RecordNotFound")
    assert zendesk.expire_jobs(job_id) == 1  # a day later: Zendesk keeps job statuses one day
    expired = session.get(f"{zendesk.url}/job_statuses/{job_id}.json", timeout=5)
    assert (expired.status_code, expired.json()["error"]) == (404, "RecordNotFound")
    with pytest.raises(PermanentRefusal):  # the adapter: this job's answer, not a failing service
        zd.job(job_id)
    wrong = session.get(f"{zendesk.url}/job_status/{job_id}.json", timeout=5)
    assert (wrong.status_code, wrong.json()["error"]) == (404, "InvalidEndpoint")


def _escalation(n: int) -> QueuedEvent:
    return slack_escalation(
        n, key=f"k{n}", correlation_id=f"c{n}", email=f"m{n}@example.org", thread_ts=f"170000000{n}.000100"
    )


class _PollLost:
    """The desk of an invocation that ended after `create_many` was answered, before any job poll was."""

    def __init__(self, desk: ZendeskDesk) -> None:
        self._desk = desk

    def __getattr__(self, name: str):
        return getattr(self._desk, name)

    def job(self, job_id: str):
        raise Transient("the invocation ended before the job status was read")


def test_an_escalation_whose_bulk_job_expired_links_the_ticket_found_by_external_id(zendesk):
    zd = desk(zendesk)
    links = MemoryTicketLinks()
    deps = EscalationDeps(
        desk=zd, links=links, messenger=FakeMessenger(), rules=load_rules(), trace=MemoryTrace(), activity=None
    )
    batch = [_escalation(n) for n in range(3)]
    assert escalate_in_bulk(EscalationDeps(**{**deps.__dict__, "desk": _PollLost(zd)}), batch) == 0
    made = {t["external_id"]: t["id"] for t in zendesk.state.snapshot()["tickets"]}
    assert len(made) == 3 and all(links.get(q.event.thread).job_id not in (None, "unknown") for q in batch)
    assert zendesk.expire_jobs() == 1  # redelivered more than a day later (a long outage, a redrive)

    for queued in batch:
        result = escalate(deps, queued)
        assert result == {"result": "ticket_created", "ticket_id": made[external_id(queued.event.thread)]}
        assert links.get(queued.event.thread).ticket_id == result["ticket_id"]
    operations = zendesk.state.snapshot()["operations"]
    assert len(zendesk.state.snapshot()["tickets"]) == 3 and operations.get("tickets.create", 0) == 0
    assert operations["job_statuses.show"] == 3 and operations["tickets.list"] == 3


def test_over_the_request_budget_zendesk_answers_429_with_integer_retry_after(zendesk):
    zendesk.set_budget(2, window_seconds=30)
    client = zendesk.zenpy()
    session = requests.Session()
    session.auth = (f"{zendesk.email}/token", zendesk.api_token)
    answers = [session.get(f"{zendesk.url}/tickets.json", timeout=5) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].headers["Retry-After"].isdigit() and int(answers[2].headers["Retry-After"]) >= 1
    assert answers[0].headers["X-Rate-Limit"] == "2"
    del client


def test_a_long_retry_after_goes_back_to_the_queue_at_once_and_a_short_one_is_waited_out(zendesk):
    zd = desk(zendesk, budget=5)
    zendesk.set_budget(1, window_seconds=30)
    zd.tickets_with_external_id("x")
    started = time.monotonic()
    with pytest.raises(RetryLater) as later:
        zd.create(ticket(), "k")
    assert later.value.delay_seconds >= 20 and time.monotonic() - started < 1
    zendesk.set_budget(None)
    zendesk.set_faults(rate_429=1.0)  # every answer a 429 with Retry-After: 1 - zenpy waits within the budget
    started = time.monotonic()
    with pytest.raises(RetryLater):
        zd.tickets_with_external_id("x")
    assert 1 <= time.monotonic() - started < 15
    zendesk.set_faults()


def test_the_redrive_probe_reads_the_api_user_once_and_waits_out_no_rate_limit(zendesk):
    from memberflow.runtime.container import PROBE_RATELIMIT_BUDGET_SECONDS

    me = zendesk.zenpy().users.me()  # what the probe reads, through the official client
    assert (me.id, me.email, me.role) == (1, zendesk.email, "agent")
    probe = desk(zendesk, budget=PROBE_RATELIMIT_BUDGET_SECONDS)
    assert probe.is_available() is True
    assert zendesk.state.snapshot()["operations"] == {"users.me": 2}

    bad = ZendeskDesk(lambda: {"email": zendesk.email, "api_token": "wrong"}, "community", api_url=zendesk.base_url)
    assert bad.is_available() is False  # 401

    zendesk.set_faults(rate_429=1.0)  # every answer a 429 with Retry-After: 1
    started, calls = time.monotonic(), zendesk.calls()
    assert probe.is_available() is False
    assert time.monotonic() - started < 1 and zendesk.calls() - calls == 1  # neither waited out nor resent
    zendesk.set_faults(rate_500=1.0)
    assert probe.is_available() is False
    zendesk.set_faults()
    assert probe.is_available() is True


def test_wrong_credentials_are_an_account_problem(zendesk):
    bad = ZendeskDesk(lambda: {"email": zendesk.email, "api_token": "wrong"}, "community", api_url=zendesk.base_url)
    with pytest.raises(CredentialsRejected):
        bad.tickets_with_external_id("x")


def test_a_requester_of_an_open_ticket_cannot_be_deleted_and_erasure_closes_it_first(zendesk):
    zd = desk(zendesk)
    zd.create(ticket(), "k")
    client = zendesk.zenpy()
    [user] = list(client.search(type="user", email="ada@example.org"))
    with pytest.raises(APIException):
        client.users.delete(user)
    assert zd.forget_requester(["ada@example.org"], ["slack:T1:U1"]) == 1
    snapshot = zendesk.state.snapshot()
    assert snapshot["users"] == [] and snapshot["deleted_users"] == []
    assert [t["status"] for t in snapshot["tickets"]] == ["closed"]
    assert zd.forget_requester(["ada@example.org"], ["slack:T1:U1"]) == 0


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict, bytes]] = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_status_change_sends_a_signed_webhook(zendesk):
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        zendesk.send_webhooks_to(f"http://127.0.0.1:{server.server_port}/webhooks/zendesk", "whsec")
        created = desk(zendesk).create(ticket(), "k")
        zendesk.zenpy().tickets.update(Ticket(id=created.id, status="pending"))
        zendesk.app.wait_for_webhooks()
    finally:
        server.shutdown()
        zendesk.send_webhooks_to("", "")
    [(headers, body)] = _Receiver.received
    timestamp = headers["x-zendesk-webhook-signature-timestamp"]
    expected = base64.b64encode(hmac.new(b"whsec", timestamp.encode() + body, hashlib.sha256).digest()).decode()
    assert headers["x-zendesk-webhook-signature"] == expected
    event = json.loads(body)
    assert event["type"] == "zen:event-type:ticket.status_changed"
    assert (event["detail"]["id"], event["event"]) == (str(created.id), {"current": "PENDING", "previous": "NEW"})


def test_slack_sdk_posts_and_meets_the_rate_limit():
    with SlackSandbox() as slack:
        client = WebClient(token=slack.token, base_url=slack.url + "/")
        assert client.chat_postMessage(channel="C1", text="hi", thread_ts="1.2")["ok"]
        slack.app.set_budget({"requests": 1, "window_seconds": 30})
        client.chat_postMessage(channel="C1", text="within the budget")
        with pytest.raises(SlackApiError) as refused:
            client.chat_postMessage(channel="C1", text="again")
        assert refused.value.response.status_code == 429 and refused.value.response["error"] == "ratelimited"
        with pytest.raises(RetryLater):  # the adapter waits out a few seconds at most, then the queue
            SlackMessages(lambda fresh: slack.token, slack.url + "/").post("C1", "again")
        with pytest.raises(SlackApiError) as bad:
            WebClient(token="xoxb-wrong", base_url=slack.url + "/").chat_postMessage(channel="C1", text="x")
        assert bad.value.response["error"] == "invalid_auth"


def test_members_are_told_in_their_slack_thread_or_discourse_topic():
    with SlackSandbox() as slack, DiscourseSandbox() as discourse:
        messenger = MemberMessenger(
            SlackMessages(lambda fresh: slack.token, slack.url + "/"),
            "C0MODS",
            DiscourseReplies(discourse.url, lambda fresh: {"api_key": discourse.api_key, "api_username": "system"}),
            SesEmail(""),
        )
        assert messenger.tell_member("slack", {"channel": "C1", "thread_ts": "9.1"}, None, "solved") == Told("slack")
        told = messenger.tell_member("discourse", {"topic_id": 77, "post_number": 3}, None, "solved")
        assert told == Told("discourse")
        messenger.notify_moderators("safety report")
        assert [(m["channel"], m["thread_ts"]) for m in slack.messages()] == [("C1", "9.1"), ("C0MODS", None)]
        [post] = discourse.posts()
        assert (post["topic_id"], post["reply_to_post_number"], post["username"]) == (77, 3, "system")
        with pytest.raises(PermanentRefusal):
            messenger.tell_member("discourse", {}, None, "nowhere to say it")


def test_a_member_without_a_channel_is_told_by_email(monkeypatch):
    from moto import mock_aws

    from memberflow.adapters import aws

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    aws.client.cache_clear()
    try:
        with mock_aws():
            import boto3

            ses = boto3.client("ses", region_name="us-east-1")
            ses.verify_email_identity(EmailAddress="support@example.org")
            email = SesEmail("support@example.org")
            messenger = MemberMessenger(SlackMessages(lambda fresh: "unused"), "C0MODS", None, email)
            assert messenger.tell_member("api", {}, "ada@example.org", "Your ticket #7 is solved.") == Told("email")
            assert ses.get_send_quota()["SentLast24Hours"] == 1
            with pytest.raises(AccountProblem):  # an unverified sender: an operator's problem
                SesEmail("nobody@example.net").send("ada@example.org", "s", "t")
    finally:
        aws.client.cache_clear()


# ---------------------------------------------------------------- Slack and Discourse refusals, as the services answer


def slack_post(sandbox: SlackSandbox, headers: dict[str, str], channel: str = "C1") -> dict:
    answer = requests.post(
        f"{sandbox.url}/chat.postMessage", json={"channel": channel, "text": "hi"}, headers=headers, timeout=5
    )
    assert answer.status_code == 200  # Slack refuses with HTTP 200 and {"ok": false}
    return answer.json()


def test_the_slack_sandbox_refuses_a_missing_token_and_channels_the_bot_is_not_in_as_slack_does():
    with SlackSandbox() as slack:
        assert slack_post(slack, {}) == {"ok": False, "error": "not_authed"}
        assert slack_post(slack, {"Authorization": "Bearer xoxb-wrong"})["error"] == "invalid_auth"
        with pytest.raises(SlackApiError) as unauthed:
            WebClient(token=None, base_url=slack.url + "/").chat_postMessage(channel="C1", text="x")
        assert unauthed.value.response["error"] == "not_authed"

        client = WebClient(token=slack.token, base_url=slack.url + "/")
        slack.refuse_channel("C0MODS")  # a public channel nobody invited the bot to
        slack.refuse_channel("C0GONE", "channel_not_found")  # deleted, or private without the bot
        requests.post(f"{slack.admin_url}/channels", json={"C0OLD": "is_archived"}, timeout=5).raise_for_status()
        for channel, error in (("C0MODS", "not_in_channel"), ("C0GONE", "channel_not_found"), ("C0OLD", "is_archived")):
            with pytest.raises(SlackApiError) as refused:
                client.chat_postMessage(channel=channel, text="x", thread_ts="1.2")
            assert refused.value.response.status_code == 200 and refused.value.response["error"] == error
        assert client.chat_postMessage(channel="C1", text="elsewhere")["ok"]
        slack.admit_channel("C0MODS")  # the bot was invited
        assert client.chat_postMessage(channel="C0MODS", text="now")["ok"]
        assert [r["channel"] for r in slack.refusals()] == ["C0MODS", "C0GONE", "C0OLD"]
        assert [m["channel"] for m in slack.messages()] == ["C1", "C0MODS"]
        bad = requests.post(f"{slack.admin_url}/channels", json={"C1": "gone"}, timeout=5)
        assert bad.json()["ok"] is False and "C1" not in slack.state.snapshot()["channel_errors"]

        old = slack.token
        slack.rotate_token("xoxb-rotated")
        assert slack_post(slack, {"Authorization": f"Bearer {old}"})["error"] == "token_revoked"
        assert slack_post(slack, {"Authorization": "Bearer xoxb-rotated"})["ok"]
        slack.reset()
        assert (
            slack.token == old
            and slack.refusals() == []
            and slack_post(slack, {"Authorization": f"Bearer {old}"})["ok"]
        )


def test_the_discourse_sandbox_refuses_a_bad_key_and_a_reply_in_a_deleted_topic_as_discourse_does():
    with DiscourseSandbox() as discourse:
        url = f"{discourse.url}/posts.json"
        body = {"topic_id": 77, "raw": "solved"}
        wrong = requests.post(url, json=body, headers={"Api-Key": "wrong", "Api-Username": "system"}, timeout=5)
        assert wrong.status_code == 403 and wrong.json()["error_type"] == "invalid_access"
        assert "The API username or key is invalid." in wrong.json()["errors"][0]
        discourse.delete_topics(77)
        headers = {"Api-Key": discourse.api_key, "Api-Username": "system"}
        gone = requests.post(url, json=body, headers=headers, timeout=5)
        assert (gone.status_code, gone.json()) == (422, {"action": "create_post", "errors": ["Topic not found"]})
        assert requests.post(url, json={**body, "topic_id": 78}, headers=headers, timeout=5).status_code == 200
        old = discourse.api_key
        discourse.rotate_key("rotated-key")
        assert requests.post(url, json=body | {"topic_id": 78}, headers=headers, timeout=5).status_code == 403
        discourse.reset()
        assert discourse.api_key == old and discourse.state.gone_topics == set()


def test_the_moderators_channel_the_bot_is_not_in_is_an_account_problem_and_a_members_gone_thread_is_theirs():
    with SlackSandbox() as slack:
        messenger = MemberMessenger(
            SlackMessages(lambda fresh: slack.token, slack.url + "/"), "C0MODS", None, SesEmail("")
        )
        slack.refuse_channel("C0MODS")
        with pytest.raises(AccountProblem) as ours:
            messenger.notify_moderators("safety report")
        assert not isinstance(ours.value, PermanentRefusal) and "not_in_channel" in str(ours.value)
        slack.refuse_channel("C1", "channel_not_found")
        with pytest.raises(PermanentRefusal) as theirs:  # no address on file: nobody can tell them
            messenger.tell_member("slack", {"channel": "C1", "thread_ts": "1.2"}, None, "solved")
        assert theirs.value.detail == "Slack thread refused: channel_not_found; no email address on file"


def test_members_whose_thread_or_topic_is_gone_are_told_by_email(monkeypatch):
    from moto import mock_aws

    from memberflow.adapters import aws

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    aws.client.cache_clear()
    try:
        with mock_aws(), SlackSandbox() as slack, DiscourseSandbox() as discourse:
            import boto3

            ses = boto3.client("ses", region_name="us-east-1")
            ses.verify_email_identity(EmailAddress="support@example.org")
            messenger = MemberMessenger(
                SlackMessages(lambda fresh: slack.token, slack.url + "/"),
                "C0MODS",
                DiscourseReplies(discourse.url, lambda fresh: {"api_key": discourse.api_key, "api_username": "system"}),
                SesEmail("support@example.org"),
            )
            slack.refuse_channel("C1", "is_archived")
            discourse.delete_topics(77)
            told = messenger.tell_member("slack", {"channel": "C1", "thread_ts": "9.1"}, "ada@example.org", "solved")
            assert told == Told("email", instead_of="Slack thread refused: is_archived")
            told = messenger.tell_member("discourse", {"topic_id": 77}, "bo@example.org", "solved")
            assert told == Told(
                "email", instead_of="Discourse topic refused: Discourse refused the reply (422: Topic not found)"
            )
            assert ses.get_send_quota()["SentLast24Hours"] == 2
            assert slack.messages() == [] and discourse.posts() == []
    finally:
        aws.client.cache_clear()


def test_a_rotated_slack_token_and_discourse_key_are_picked_up_without_a_redeploy():
    with SlackSandbox() as slack, DiscourseSandbox() as discourse:
        stored = {"slack": slack.token, "discourse": discourse.api_key}
        cached = dict(stored)
        reads: list[str] = []

        def secret(name: str, fresh: bool) -> str:
            reads.append(f"{name}{'(fresh)' if fresh else ''}")
            if fresh:
                cached[name] = stored[name]
            return cached[name]

        messages = SlackMessages(lambda fresh: secret("slack", fresh), slack.url + "/")
        replies = DiscourseReplies(
            discourse.url, lambda fresh: {"api_key": secret("discourse", fresh), "api_username": "system"}
        )
        messages.post("C1", "before")
        replies.reply(77, "before")
        slack.rotate_token("xoxb-rotated")  # the on-call rotates both and stores the new values
        discourse.rotate_key("rotated-discourse-key")
        stored.update(slack="xoxb-rotated", discourse="rotated-discourse-key")

        messages.post("C1", "after")  # refused token_revoked, the secret read again, sent again
        replies.reply(77, "after")  # refused 403 invalid key, the secret read again, sent again
        messages.post("C1", "and again")
        assert [m["text"] for m in slack.messages()] == ["before", "after", "and again"]
        assert [p["raw"] for p in discourse.posts()] == ["before", "after"]
        assert reads == ["slack", "discourse", "slack(fresh)", "discourse(fresh)"]
        assert slack.state.snapshot()["calls"] == {"POST /chat.postMessage": 4}


def test_one_slack_post_with_its_retries_ends_within_the_time_the_escalation_allows_it():
    from memberflow.adapters.member_messages import SLACK_POST_SECONDS, SLACK_TIMEOUT_SECONDS

    with SlackSandbox() as slack:
        # Every answer a 429 (Retry-After: 1) just before the request timeout: the slowest a post can go.
        slack.set_faults(rate_429=1.0, latency_ms=int((SLACK_TIMEOUT_SECONDS - 0.3) * 1000))
        started = time.monotonic()
        with pytest.raises(RetryLater):
            SlackMessages(lambda fresh: slack.token, slack.url + "/").post("C0MODS", "safety report")
        took = time.monotonic() - started
        sent = slack.state.snapshot()["calls"]["POST /chat.postMessage"]
        assert sent == 2 and 2 * (SLACK_TIMEOUT_SECONDS - 0.3) + 1 <= took <= SLACK_POST_SECONDS + 0.5, (sent, took)

        # Quick 429s: more attempts fit, the post still ends within its time.
        slack.set_faults(rate_429=1.0)
        started = time.monotonic()
        with pytest.raises(RetryLater):
            SlackMessages(lambda fresh: slack.token, slack.url + "/").post("C0MODS", "safety report")
        assert time.monotonic() - started <= SLACK_POST_SECONDS + 0.5
        assert slack.state.snapshot()["calls"]["POST /chat.postMessage"] - sent == 4  # the first and 3 retries

        # An answer later than the timeout is given up at the timeout, not sent again (Slack may have posted it).
        slack.set_faults(latency_ms=int((SLACK_TIMEOUT_SECONDS + 1.5) * 1000))
        before = slack.state.snapshot()["calls"]["POST /chat.postMessage"]
        started = time.monotonic()
        with pytest.raises(Transient):
            SlackMessages(lambda fresh: slack.token, slack.url + "/").post("C0MODS", "safety report")
        assert time.monotonic() - started < SLACK_TIMEOUT_SECONDS + 1
        assert slack.state.snapshot()["calls"]["POST /chat.postMessage"] - before == 1
        slack.set_faults()
