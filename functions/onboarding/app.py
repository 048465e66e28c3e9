"""Onboarding consumer: SQS batches of member events -> Mailchimp, the welcome journey, the drip, member store."""

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from memberflow.onboarding.consumer import CONSUMER, handlers
from memberflow.runtime.container import container
from memberflow.runtime.sqs_consumer import SqsConsumer

logger = Logger()
metrics = Metrics()
consumer = SqsConsumer(
    CONSUMER,
    lambda: handlers(lambda: container().onboarding),
    # Derived from the Mailchimp and AWS clients' timeouts (onboarding.consumer.worst_case_ms_per_event).
    worst_case_ms_per_message=lambda: container().onboarding_worst_case_ms,
    metric_prefix="MemberEvent",
    logger=logger,
    metrics=metrics,
)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    return consumer.handler(event, context)
