"""Scheduled onboarding drip: welcomes confirmed opt-ins and sends the drip steps due at the firing time."""

from dataclasses import asdict
from datetime import UTC, datetime

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from memberflow.models import ScheduledRun
from memberflow.onboarding.drip import send_due_drip_steps
from memberflow.runtime.container import container

logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    run = ScheduledRun.model_validate(event)
    # The schedule's own firing time, so a late or replayed invocation sends what was due then.
    now = run.time or datetime.now(UTC)
    report = send_due_drip_steps(now, run_id=run.id or context.aws_request_id, deps=container().drip)
    container().flush_activity()
    metrics.add_metric(name="DripStepsSent", unit=MetricUnit.Count, value=report.sent)
    logger.info("drip run finished", extra=asdict(report))
    return asdict(report)
