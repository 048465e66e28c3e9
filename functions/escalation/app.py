"""Escalation consumer: SQS batches of escalations and ticket status changes -> Zendesk tickets (bulk where a batch
brings many new threads), moderator alerts, and the member told where they asked."""

# Imported before anything imports pydantic: Powertools' batch utility then leaves out its own pydantic record
# models, which these consumers never use (about 25 ms of every cold start; tests/unit/test_cold_start_costs.py).
import aws_lambda_powertools.utilities.batch  # noqa: F401
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from memberflow.escalation.service import CONSUMER, escalate_in_bulk, handlers
from memberflow.runtime import escalation
from memberflow.runtime.sqs_consumer import SqsConsumer

logger = Logger()
metrics = Metrics()
consumer = SqsConsumer(
    CONSUMER,
    lambda: handlers(escalation.deps),
    worst_case_ms_per_message=escalation.worst_case_ms_per_message,
    metric_prefix="Escalation",
    logger=logger,
    metrics=metrics,
    settings=escalation.settings,
    before_batch=lambda batch: escalate_in_bulk(escalation.deps(), batch),
)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    return consumer.handler(event, context)
