"""Onboarding consumer: SQS batches of member events -> Mailchimp, the welcome journey, the drip, member store."""

# Imported before anything imports pydantic: Powertools' batch utility then leaves out its own pydantic record
# models, which these consumers never use (about 25 ms of every cold start; tests/unit/test_cold_start_costs.py).
import aws_lambda_powertools.utilities.batch  # noqa: F401
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from memberflow.onboarding.consumer import CONSUMER, handlers
from memberflow.runtime.bursts import onboarding_deps, prepare_batch, prepare_worst_case_ms
from memberflow.runtime.container import container
from memberflow.runtime.sqs_consumer import SqsConsumer

logger = Logger()
metrics = Metrics()
consumer = SqsConsumer(
    CONSUMER,
    # A batch's fresh joins go to Mailchimp in bulk first (runtime.bursts); each event is then handled as before.
    lambda: handlers(onboarding_deps),
    # Derived from the Mailchimp and AWS clients' timeouts (onboarding.consumer.worst_case_ms_per_event).
    worst_case_ms_per_message=lambda: container().onboarding_worst_case_ms,
    metric_prefix="MemberEvent",
    logger=logger,
    metrics=metrics,
    before_batch=prepare_batch,
    before_batch_worst_case_ms=prepare_worst_case_ms,
)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    return consumer.handler(event, context)
