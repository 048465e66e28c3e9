"""Event sync consumer: SQS batches of registration events (Eventbrite, Zoom) -> registration records, members,
Mailchimp contacts and event tags."""

# Imported before anything imports pydantic: Powertools' batch utility then leaves out its own pydantic record
# models, which these consumers never use (about 25 ms of every cold start; tests/unit/test_cold_start_costs.py).
import aws_lambda_powertools.utilities.batch  # noqa: F401
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from memberflow.registrations.consumer import CONSUMER, handlers
from memberflow.runtime.event_sync import consumer_settings, sync_deps, worst_case_ms
from memberflow.runtime.sqs_consumer import SqsConsumer

logger = Logger()
metrics = Metrics()
consumer = SqsConsumer(
    CONSUMER,
    lambda: handlers(sync_deps),
    worst_case_ms_per_message=worst_case_ms,
    metric_prefix="Registration",
    logger=logger,
    metrics=metrics,
    settings=consumer_settings,
)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    return consumer.handler(event, context)
