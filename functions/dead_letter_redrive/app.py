"""Scheduled redrive: parked messages whose failure may pass go back to their queue once every service their
consumer calls answers again (REDRIVE_WAITS_ON in template.yaml: escalations wait on Zendesk, registrations on
Eventbrite and Mailchimp, member events and imports on Mailchimp), so an outage heals without an operator and a
queue never waits on, or is sent back during, another service's outage."""

from dataclasses import asdict

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from memberflow.runtime.container import container

logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    report = container().redrive_parked()
    metrics.add_metric(name="DeadLettersRedriven", unit=MetricUnit.Count, value=report.redriven)
    logger.info("redrive run finished", extra=asdict(report))
    return asdict(report)
