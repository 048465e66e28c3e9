"""Bulk import consumer: chunks of existing members (at most 500 a message) -> member store and Mailchimp in bulk."""

# Imported before anything imports pydantic: Powertools' batch utility then leaves out its own pydantic record
# models, which these consumers never use (about 25 ms of every cold start; tests/unit/test_cold_start_costs.py).
import aws_lambda_powertools.utilities.batch  # noqa: F401
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from memberflow.onboarding.import_consumer import CONSUMER, WORST_CASE_MS_PER_CHUNK, handlers
from memberflow.runtime.imports import consumer_settings, import_deps
from memberflow.runtime.sqs_consumer import SqsConsumer

logger = Logger()
metrics = Metrics()
consumer = SqsConsumer(
    CONSUMER,
    lambda: handlers(import_deps),
    worst_case_ms_per_message=lambda: WORST_CASE_MS_PER_CHUNK,
    metric_prefix="ImportChunk",
    logger=logger,
    metrics=metrics,
    settings=consumer_settings,
)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    return consumer.handler(event, context)
