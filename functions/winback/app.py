"""Scheduled win-back: each campaign's daily run (inactive members who crossed a tier, tagged in bulk, a holdout
kept), continued every 15 minutes while a run is in progress (a large community, an outage)."""

from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from memberflow.models import ScheduledRun
from memberflow.runtime.container import container
from memberflow.runtime.winback import run_campaigns

logger = Logger()
metrics = Metrics()
CODE_ROOT = str(Path(__file__).parent)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    run = ScheduledRun.model_validate(event)
    # The schedule's own firing time, so a late or replayed invocation runs the day it was meant for.
    today = (run.time or datetime.now(UTC)).astimezone(UTC).date()
    resume_only = bool((event.get("detail") or {}).get("resume"))
    try:
        reports = run_campaigns(CODE_ROOT, today, context.get_remaining_time_in_millis, resume_only=resume_only)
    finally:
        container().flush_activity()
    # One figure every invocation, even a resume that finds no run in progress: the schedule is seen to fire, and
    # the metrics flush is never empty.
    metrics.add_metric(name="WinbackRuns", unit=MetricUnit.Count, value=len(reports))
    for report in reports:
        metrics.add_metric(name="WinbackContacted", unit=MetricUnit.Count, value=report.contacted)
        metrics.add_metric(name="WinbackHeldOut", unit=MetricUnit.Count, value=report.held_out)
        metrics.add_metric(name="WinbackRefused", unit=MetricUnit.Count, value=report.refused)
        logger.info("win-back run", extra=asdict(report))
    return {"runs": [asdict(report) for report in reports]}
