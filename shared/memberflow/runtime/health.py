"""The weekly health report run: Athena computes, S3 keeps the page and its JSON, Slack announces it (slack-sdk, the
function's own dependency), SES emails it when configured."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from memberflow.config import HealthReportSettings, load_settings
from memberflow.errors import Transient
from memberflow.health.queries import Period, QueryEngine
from memberflow.health.report import Report, build_report, headline

logger = logging.getLogger(__name__)

LINK_SECONDS = 7 * 24 * 3600


def periods_for_run(now: datetime) -> list[Period]:
    """The ISO week that ended before the run; on a month's first run (its first seven days), the month before too."""
    periods = [Period.week_of(now.date() - timedelta(days=7))]
    if now.day <= 7:
        periods.append(Period.month_of(now.date().replace(day=1) - timedelta(days=1)))
    return periods


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
            self._announce(report, link)
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

    def _announce(self, report: Report, link: str) -> None:
        from slack_sdk.errors import SlackApiError

        try:
            self.slack.chat_postMessage(
                channel=self.slack_channel, text=headline(report, link), unfurl_links=False, unfurl_media=False
            )
        except SlackApiError as error:
            # The page is stored; the run fails so that its retry (or the alarm) gets the announcement out.
            raise Transient(f"Slack refused the announcement: {error.response.get('error')}") from error


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
    for period in periods_for_run(now):
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
    from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

    from memberflow.adapters.secrets import get_json_secret

    token = str(get_json_secret(secret_arn)["bot_token"])
    # slack_sdk retries only connection errors by default; a 429 is retried after its Retry-After, twice.
    return (factory or WebClient)(
        token=token, timeout=10, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=2)]
    )
