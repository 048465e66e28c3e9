"""Scheduled community health report: the week before (and on a month's first run, the month before), computed by
Athena over the activity log, stored in S3, announced in Slack, optionally emailed."""

from datetime import UTC, datetime

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from memberflow.models import ScheduledRun
from memberflow.runtime.health import run_weekly

logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    run = ScheduledRun.model_validate(event)
    # The schedule's own firing time, so a late or replayed run reports the same periods.
    now = run.time or datetime.now(UTC)
    published = run_weekly(now)
    metrics.add_metric(name="HealthReportsPublished", unit=MetricUnit.Count, value=len(published))
    logger.info("health report run finished", extra={"reports": [p["period"] for p in published]})
    return {"reports": published}
