"""Onboarding consumer: SQS batches of member events -> Mailchimp, the welcome journey, the drip, member store."""

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from memberflow.adapters.aws import client
from memberflow.config import OnboardingSettings, load_settings
from memberflow.models import QueuedEvent
from memberflow.onboarding import WORST_CASE_MS_PER_EVENT, handle_member_event
from memberflow.queue_worker import QueuedMessage, process_message
from memberflow.wiring import onboarding_deps, redelivery_policy

logger = Logger()
metrics = Metrics()
# Report failures per message even when all fail: each one has already set its own retry delay.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
idempotency = IdempotencyConfig(
    event_key_jmespath="idempotency_key",
    raise_on_no_idempotency_key=True,
    expires_after_seconds=7 * 24 * 3600,  # longer than any platform's retries and Discourse's manual redeliveries
)
persistence = DynamoDBPersistenceLayer(table_name=load_settings(OnboardingSettings).idempotency_table_name)


@idempotent_function(
    data_keyword_argument="queued",
    persistence_store=persistence,
    config=idempotency,
    key_prefix="memberflow.onboarding",
)
def handle_once(queued: QueuedEvent) -> dict[str, str]:
    outcome = handle_member_event(queued, onboarding_deps())
    metrics.add_metric(name=f"MemberEvent_{outcome['result']}", unit=MetricUnit.Count, value=1)
    return outcome


def record_handler(record: dict, lambda_context: LambdaContext) -> None:
    process_message(
        QueuedMessage.from_lambda_record(record),
        lambda queued: handle_once(queued=queued),
        redelivery_policy(),
        onboarding_deps().trace,
        client("sqs"),
        enough_time=lambda_context.get_remaining_time_in_millis() > WORST_CASE_MS_PER_EVENT,
    )


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    idempotency.register_lambda_context(context)
    answer = process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
    metrics.add_metric(name="MemberEventsReceived", unit=MetricUnit.Count, value=len(event.get("Records", [])))
    metrics.add_metric(name="MemberEventsRetried", unit=MetricUnit.Count, value=len(answer["batchItemFailures"]))
    return dict(answer)
