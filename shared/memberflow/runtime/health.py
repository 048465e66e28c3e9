"""The weekly health report run: Athena computes, S3 keeps the page and its JSON, Slack announces it (slack-sdk, the
function's own dependency), SES emails it when configured."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from memberflow.config import HealthReportSettings, load_settings
from memberflow.errors import Transient
from memberflow.health.queries import RETAINED_DAYS, Period, QueryEngine
from memberflow.health.report import Report, build_report, headline

logger = logging.getLogger(__name__)

LINK_SECONDS = 7 * 24 * 3600
SLACK_TIMEOUT_SECONDS = 10
SLACK_WAIT_BUDGET_SECONDS = 20
"""The most a run waits on Slack's Retry-After in all (its announcements together); past it the announcement is
given up for this run, with a logged reason, and the report is published all the same."""


def periods_for_run(now: datetime, retained_days: int = RETAINED_DAYS) -> list[Period]:
    """The ISO week that ended before the run; on a month's first run (its first seven days), the month before too.
    `retained_days`: how long the deployment keeps the activity log."""
    periods = [Period.week_of(now.date() - timedelta(days=7))]
    if now.day <= 7:
        periods.append(Period.month_of(now.date().replace(day=1) - timedelta(days=1)))
    return [replace(period, retained_days=retained_days) for period in periods]


@dataclass
class Publisher:
    """Where a report goes. Each piece is built on first use; tests pass their own."""

    bucket: str
    s3: Any
    link_base: str = ""
    slack: Any = None
    """A `slack_sdk.WebClient`, or None: no announcement."""
    slack_channel: str = ""
    ses: Any = None
    email_from: str = ""
    email_to: list[str] = field(default_factory=list)

    def publish(self, report: Report) -> dict[str, Any]:
        self.s3.put_object(
            Bucket=self.bucket, Key=report.html_key, Body=report.html.encode(), ContentType="text/html; charset=utf-8"
        )
        self.s3.put_object(
            Bucket=self.bucket, Key=report.json_key, Body=report.json_bytes, ContentType="application/json"
        )
        link = self.link(report.html_key)
        outcome: dict[str, Any] = {"period": report.period.label, "page": f"s3://{self.bucket}/{report.html_key}"}
        if self.slack is not None and self.slack_channel:
            skipped = self._announce(report, link)
            if skipped:
                outcome["not_announced"] = skipped
            else:
                outcome["announced"] = self.slack_channel
        if self.ses is not None and self.email_from and self.email_to:
            self.ses.send_email(
                Source=self.email_from,
                Destination={"ToAddresses": self.email_to},
                Message={
                    "Subject": {"Data": f"Community health {report.period.label}", "Charset": "UTF-8"},
                    "Body": {
                        "Html": {"Data": report.html, "Charset": "UTF-8"},
                        "Text": {"Data": headline(report, link), "Charset": "UTF-8"},
                    },
                },
            )
            outcome["emailed"] = len(self.email_to)
        return outcome

    def link(self, key: str) -> str:
        if self.link_base:
            return f"{self.link_base.rstrip('/')}/{key}"
        return str(
            self.s3.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=LINK_SECONDS
            )
        )

    def _announce(self, report: Report, link: str) -> str:
        """Post the headline; "" when it went out, else why it was given up for this run (Slack's rate limit beyond
        the wait budget: the report is published all the same, and next week's run announces again)."""
        from slack_sdk.errors import SlackApiError, SlackClientError

        from memberflow.adapters.member_messages import SLACK_RATE_LIMIT_ERRORS

        try:
            self.slack.chat_postMessage(
                channel=self.slack_channel, text=headline(report, link), unfurl_links=False, unfurl_media=False
            )
        except SlackApiError as error:
            response = error.response
            code = str(response.get("error") or "") if response is not None else ""
            if getattr(response, "status_code", 0) == 429 or code in SLACK_RATE_LIMIT_ERRORS:
                retry_after = (getattr(response, "headers", None) or {}).get("Retry-After", "?")
                reason = (
                    f"Slack rate limit ({code or 429}, Retry-After {retry_after} s) beyond the "
                    f"{SLACK_WAIT_BUDGET_SECONDS} s this run waits"
                )
                logger.warning("health report not announced", extra={"period": report.period.label, "reason": reason})
                return reason
            # The page is stored; the run fails so that its retry (or the alarm) gets the announcement out.
            raise Transient(f"Slack refused the announcement: {code}") from error
        except (SlackClientError, OSError) as error:
            raise Transient(f"Slack unreachable for the announcement: {type(error).__name__}") from error
        return ""


def run_weekly(
    now: datetime,
    *,
    engine: QueryEngine | None = None,
    publisher: Publisher | None = None,
) -> list[dict[str, Any]]:
    settings = load_settings(HealthReportSettings)
    engine = engine or _athena(settings)
    publisher = publisher or _publisher(settings)
    outcomes = []
    for period in periods_for_run(now, settings.activity_retention_days):
        report = build_report(engine, period, community=settings.community_name, now=now, table=settings.athena_table)
        outcome = publisher.publish(report)
        logger.info("health report published", extra={"period": period.label, "callouts": len(report.data["callouts"])})
        outcomes.append(outcome)
    return outcomes


def _athena(settings: HealthReportSettings) -> QueryEngine:
    from memberflow.adapters.athena import AthenaEngine

    return AthenaEngine(settings.athena_workgroup, settings.athena_database)


def _publisher(settings: HealthReportSettings) -> Publisher:
    from memberflow.adapters.aws import client

    slack: Any = None
    if settings.slack_secret_arn and settings.slack_channel:
        slack = _slack_client(settings.slack_secret_arn)
    recipients = [address.strip() for address in settings.email_to.split(",") if address.strip()]
    return Publisher(
        bucket=settings.report_bucket_name,
        s3=client("s3"),
        link_base=settings.report_link_base,
        slack=slack,
        slack_channel=settings.slack_channel,
        ses=client("ses") if settings.email_from and recipients else None,
        email_from=settings.email_from,
        email_to=recipients,
    )


def _slack_client(secret_arn: str, factory: Callable[..., Any] | None = None) -> Any:
    from slack_sdk import WebClient
    from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler

    from memberflow.adapters.secrets import get_json_secret

    token = str(get_json_secret(secret_arn)["bot_token"])
    # slack-sdk's own default (one retry of a failed connection) stays: retry_handlers replaces the default list. A
    # 429 is waited out only within the run's budget.
    return (factory or WebClient)(
        token=token,
        timeout=SLACK_TIMEOUT_SECONDS,
        retry_handlers=[ConnectionErrorRetryHandler(), budgeted_rate_limit_waits(SLACK_WAIT_BUDGET_SECONDS)],
    )


def budgeted_rate_limit_waits(budget_seconds: float, max_retry_count: int = 2) -> Any:
    """slack-sdk's RateLimitErrorRetryHandler (sleeps Retry-After plus up to 1 s of jitter), but only while the
    sleeps of this handler (one client: one run) stay within `budget_seconds` in all; past it the 429 is raised."""
    from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

    from memberflow.adapters.member_messages import slack_retry_after

    class BudgetedRateLimitWaits(RateLimitErrorRetryHandler):
        def __init__(self) -> None:
            super().__init__(max_retry_count=max_retry_count)
            self.waited = 0.0

        def _can_retry(self, *, state: Any, request: Any, response: Any = None, error: Any = None) -> bool:
            if not super()._can_retry(state=state, request=request, response=response, error=error):
                return False
            wait = slack_retry_after(response.headers)
            return wait is not None and self.waited + wait + 1 <= budget_seconds

        def prepare_for_next_attempt(
            self, *, state: Any, request: Any, response: Any = None, error: Any = None
        ) -> None:
            started = time.monotonic()
            try:
                super().prepare_for_next_attempt(state=state, request=request, response=response, error=error)
            finally:
                self.waited += time.monotonic() - started

    return BudgetedRateLimitWaits()
