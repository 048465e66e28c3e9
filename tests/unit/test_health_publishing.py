"""The deployed side of the health report: Athena's answers read back into typed rows, the weekly run's periods,
and publishing (the page and its JSON in S3, the Slack announcement with the headline figures, the SES email)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import boto3
import pytest
from moto import mock_aws
from slack_sdk.errors import SlackApiError

from memberflow.adapters.athena import AthenaEngine
from memberflow.errors import AccountProblem, Transient
from memberflow.health.queries import Period
from memberflow.health.report import build_report
from memberflow.runtime.health import Publisher, periods_for_run
from memberflow_local.health import DuckDBEngine
from support.health_seed import records, write_log


class FakeAthena:
    """Athena's API as the engine uses it: a query runs for two polls, then answers in two pages."""

    def __init__(self, state: str = "SUCCEEDED") -> None:
        self.state = state
        self.started: list[dict] = []
        self.polls = 0

    def start_query_execution(self, **request):
        self.started.append(request)
        return {"QueryExecutionId": "q1"}

    def get_query_execution(self, QueryExecutionId):
        self.polls += 1
        state = "RUNNING" if self.polls < 3 else self.state
        return {
            "QueryExecution": {
                "Status": {"State": state, "StateChangeReason": "SYNTAX_ERROR: line 1"},
                "Statistics": {"DataScannedInBytes": 2048},
            }
        }

    def get_query_results(self, QueryExecutionId, MaxResults, NextToken=None):
        columns = [
            {"Name": "day", "Type": "date"},
            {"Name": "platform", "Type": "varchar"},
            {"Name": "members", "Type": "bigint"},
            {"Name": "rate", "Type": "double"},
            {"Name": "last_active", "Type": "timestamp"},
            {"Name": "question", "Type": "boolean"},
        ]

        def row(*values):
            return {"Data": [{} if v is None else {"VarCharValue": v} for v in values]}

        if NextToken is None:
            rows = [row("day", "platform", "members", "rate", "last_active", "question")]
            rows.append(row("2026-11-16", "slack", "3", "0.5", "2026-11-16 10:00:00.000", "true"))
            return {"ResultSet": {"Rows": rows, "ResultSetMetadata": {"ColumnInfo": columns}}, "NextToken": "p2"}
        rows = [row("2026-11-17", None, "0", None, None, "false")]
        return {"ResultSet": {"Rows": rows, "ResultSetMetadata": {"ColumnInfo": columns}}}


def test_athena_answers_come_back_as_typed_rows_across_pages():
    athena = FakeAthena()
    engine = AthenaEngine("wg", "db", athena=athena, sleep=lambda _: None)
    rows = engine.run("daily_active", "SELECT 1")
    assert athena.started == [
        {"QueryString": "SELECT 1", "QueryExecutionContext": {"Database": "db"}, "WorkGroup": "wg"}
    ]
    assert rows == [
        {
            "day": date(2026, 11, 16),
            "platform": "slack",
            "members": 3,
            "rate": 0.5,
            "last_active": datetime(2026, 11, 16, 10, 0),
            "question": True,
        },
        {
            "day": date(2026, 11, 17),
            "platform": None,
            "members": 0,
            "rate": None,
            "last_active": None,
            "question": False,
        },
    ]
    assert engine.scanned_bytes == 2048


def test_a_failed_or_endless_athena_query_is_an_error_not_an_empty_figure():
    with pytest.raises(AccountProblem, match="daily_active failed: SYNTAX_ERROR"):
        AthenaEngine("wg", "db", athena=FakeAthena("FAILED"), sleep=lambda _: None).run("daily_active", "SELECT")

    class Stuck(FakeAthena):
        def get_query_execution(self, QueryExecutionId):
            return {"QueryExecution": {"Status": {"State": "RUNNING"}}}

    with pytest.raises(Transient, match="still running"):
        AthenaEngine("wg", "db", athena=Stuck(), sleep=lambda _: None, timeout_seconds=3).run("cohorts", "SELECT")


def test_the_weekly_run_reports_the_week_before_and_on_a_months_first_run_the_month_before():
    assert [p.label for p in periods_for_run(datetime(2026, 11, 23, 7, tzinfo=UTC))] == ["2026-W47"]
    assert [p.label for p in periods_for_run(datetime(2026, 12, 7, 7, tzinfo=UTC))] == ["2026-W49", "2026-11"]


def test_first_ever_looks_back_as_far_as_the_deployment_keeps_the_activity_log():
    [default] = periods_for_run(datetime(2026, 11, 23, 7, tzinfo=UTC))
    [longer] = periods_for_run(datetime(2026, 11, 23, 7, tzinfo=UTC), retained_days=800)

    assert (default.scan_last - default.history_from).days == 399
    assert (longer.scan_last - longer.history_from).days == 799
    assert longer.previous().retained_days == 800


class FakeSlack:
    def __init__(self, error: str | None = None) -> None:
        self.posted: list[dict] = []
        self.error = error

    def chat_postMessage(self, **message):
        if self.error:
            raise SlackApiError("refused", {"ok": False, "error": self.error})
        self.posted.append(message)
        return {"ok": True}


@pytest.fixture
def report(tmp_path):
    engine = DuckDBEngine(write_log(tmp_path / "log", records()))
    return build_report(engine, Period.parse("2026-W47"), community="Seed community")


@mock_aws
def test_the_report_is_stored_announced_with_its_headline_figures_and_emailed(report):
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="health")
    ses = boto3.client("ses", region_name="us-east-1")
    ses.verify_email_identity(EmailAddress="reports@example.org")
    slack = FakeSlack()
    publisher = Publisher(
        bucket="health",
        s3=s3,
        link_base="https://reports.example.org",
        slack=slack,
        slack_channel="C0HEALTH",
        ses=ses,
        email_from="reports@example.org",
        email_to=["team@example.org"],
    )

    outcome = publisher.publish(report)

    assert outcome == {
        "period": "2026-W47",
        "page": "s3://health/reports/week/2026-W47.html",
        "announced": "C0HEALTH",
        "emailed": 1,
    }
    page = s3.get_object(Bucket="health", Key="reports/week/2026-W47.html")
    assert page["ContentType"].startswith("text/html") and b"<svg" in page["Body"].read()
    data = json.loads(s3.get_object(Bucket="health", Key="reports/week/2026-W47.json")["Body"].read())
    assert data["figures"]["active"]["all"]["mau"] == 6
    [message] = slack.posted
    assert message["channel"] == "C0HEALTH"
    assert "WAU 4 · MAU 6" in message["text"] and "unanswered > 24 h 1" in message["text"]
    assert "1. 1 question unanswered for more than a day" in message["text"]
    assert "<https://reports.example.org/reports/week/2026-W47.html|Open the report>" in message["text"]
    from moto.backends import get_backend

    [sent] = get_backend("ses")["123456789012"]["us-east-1"].sent_messages
    assert sent.destinations["ToAddresses"] == ["team@example.org"]


@mock_aws
def test_a_refused_announcement_fails_the_run_after_the_page_is_stored(report):
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="health")
    publisher = Publisher(bucket="health", s3=s3, slack=FakeSlack("channel_not_found"), slack_channel="C0HEALTH")
    with pytest.raises(Transient, match="channel_not_found"):
        publisher.publish(report)
    assert s3.head_object(Bucket="health", Key="reports/week/2026-W47.html")
    # Without a link base the announcement links a presigned URL.
    link = publisher.link("reports/week/2026-W47.html")
    assert link.startswith("https://health.s3.amazonaws.com/reports/week/2026-W47.html?") and "Signature=" in link


def test_the_announcement_client_keeps_slacks_connection_retry_and_bounds_its_rate_limit_waits(monkeypatch):
    from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

    from memberflow.adapters import secrets
    from memberflow.runtime import health

    monkeypatch.setattr(secrets, "get_json_secret", lambda arn, fresh=False: {"bot_token": "xoxb-1"})
    built: dict = {}
    health._slack_client("arn:slack", factory=lambda **options: built.update(options))
    connection, rate_limit = built["retry_handlers"]
    # retry_handlers replaces slack-sdk's default list ([ConnectionErrorRetryHandler]): it is kept.
    assert type(connection) is ConnectionErrorRetryHandler
    assert isinstance(rate_limit, RateLimitErrorRetryHandler) and type(rate_limit) is not RateLimitErrorRetryHandler
    assert built["token"] == "xoxb-1" and built["timeout"] == health.SLACK_TIMEOUT_SECONDS


def sandbox_publisher(slack_sandbox, s3, ses=None) -> Publisher:
    from slack_sdk import WebClient

    from memberflow.adapters import secrets
    from memberflow.runtime import health

    original = secrets.get_json_secret
    secrets.get_json_secret = lambda arn, fresh=False: {"bot_token": slack_sandbox.token}
    try:
        client = health._slack_client(
            "arn:slack", factory=lambda **options: WebClient(base_url=slack_sandbox.url + "/", **options)
        )
    finally:
        secrets.get_json_secret = original
    return Publisher(
        bucket="health",
        s3=s3,
        link_base="https://reports.example.org",
        slack=client,
        slack_channel="C0HEALTH",
        ses=ses,
        email_from="reports@example.org" if ses else "",
        email_to=["team@example.org"] if ses else [],
    )


@mock_aws
def test_a_rate_limit_beyond_the_wait_budget_gives_the_announcement_up_and_the_report_is_still_published(report):
    import time

    from memberflow_sandboxes.slack import SlackSandbox

    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="health")
    ses = boto3.client("ses", region_name="us-east-1")
    ses.verify_email_identity(EmailAddress="reports@example.org")
    with SlackSandbox() as slack:
        slack.app.set_budget({"requests": 0, "window_seconds": 120})  # every post: 429, Retry-After about 120 s
        started = time.monotonic()
        outcome = sandbox_publisher(slack, s3, ses).publish(report)
        took = time.monotonic() - started
    assert took < 5, took  # not two sleeps of two minutes each
    assert "announced" not in outcome and "Retry-After 120 s" in outcome["not_announced"]
    assert outcome["emailed"] == 1 and s3.head_object(Bucket="health", Key="reports/week/2026-W47.html")


@mock_aws
def test_rate_limit_waits_stop_once_the_runs_budget_is_spent(report, monkeypatch, caplog):
    import time

    from memberflow.runtime import health
    from memberflow_sandboxes.slack import SlackSandbox

    monkeypatch.setattr(health, "SLACK_WAIT_BUDGET_SECONDS", 3)
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="health")
    with SlackSandbox() as slack:
        slack.set_faults(rate_429=1.0)  # every answer a 429 with Retry-After: 1
        publisher = sandbox_publisher(slack, s3)
        started = time.monotonic()
        with caplog.at_level("WARNING", logger="memberflow.runtime.health"):
            outcome = publisher.publish(report)
            again = publisher.publish(report)  # the same run's next announcement: the budget is spent
        took = time.monotonic() - started
        calls = slack.state.snapshot()["calls"]["POST /chat.postMessage"]
    assert 1 <= took <= 3 + 1, took
    assert calls >= 3 and "not_announced" in outcome and "not_announced" in again  # waited, then gave up
    assert [r.message for r in caplog.records].count("health report not announced") == 2
