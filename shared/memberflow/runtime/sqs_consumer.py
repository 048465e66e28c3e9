"""An SQS-triggered Lambda handler for any consumer: Powertools' batch processing (partial batch failures) and
idempotency around the generic worker. A consumer's function is then a handler table and one call."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)

from memberflow.adapters.aws import client
from memberflow.config import ConsumerSettings, load_settings
from memberflow.pipeline.envelope import QueuedEvent
from memberflow.pipeline.worker import Handler, QueuedMessage, Worker
from memberflow.runtime.container import container

IDEMPOTENCY_DAYS = 7
"""Longer than any platform's retries and Discourse's manual redeliveries."""


class SqsConsumer:
    """`handler(event, context)` for a consumer whose work per event type is `handlers()` (built on first use)."""

    def __init__(
        self,
        consumer: str,
        handlers: Callable[[], Mapping[str, Handler]],
        *,
        worst_case_ms_per_message: Callable[[], int],
        metric_prefix: str,
        logger: Logger,
        metrics: Metrics,
        settings: Callable[[], ConsumerSettings] | None = None,
        before_batch: Callable[[list[QueuedEvent]], Any] | None = None,
        before_batch_worst_case_ms: Callable[[], int] = lambda: 0,
    ) -> None:
        self.consumer = consumer
        self._settings = settings or (lambda: load_settings(ConsumerSettings))
        self._handlers = handlers
        self._worst_case_ms_per_message = worst_case_ms_per_message
        self._worst_case_ms = 0
        self._metric_prefix = metric_prefix
        self._logger = logger
        self._metrics = metrics
        self._before_batch = before_batch
        """Called with the batch's events before they are handled one by one (e.g. to send their work to a service
        in bulk), when the invocation has time for it (`before_batch_worst_case_ms`) and for the first message; its
        failures are logged, and each message is then handled as if it had not been called."""
        self._before_batch_worst_case_ms = before_batch_worst_case_ms
        # Report failures per message even when all fail: each one has already set its own retry delay.
        self._processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        self._idempotency = IdempotencyConfig(
            event_key_jmespath="idempotency_key",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=IDEMPOTENCY_DAYS * 24 * 3600,
        )
        self._worker: Worker | None = None
        self._handle_once: Callable[..., Any] | None = None

    def _build(self) -> Worker:
        settings = self._settings()
        table = settings.idempotency_table_name
        handlers = self._handlers()
        self._worst_case_ms = self._worst_case_ms_per_message()

        @idempotent_function(
            data_keyword_argument="queued",
            # One DynamoDB client per container, shared with the member store and the trace.
            persistence_store=DynamoDBPersistenceLayer(table_name=table, boto3_client=client("dynamodb")),
            config=self._idempotency,
            key_prefix=f"memberflow.{self.consumer}",
        )
        def handle_once(queued: QueuedEvent) -> dict[str, Any]:
            outcome = handlers[queued.event.type](queued)
            result = outcome.get("result", "done") if isinstance(outcome, dict) else "done"
            self._metrics.add_metric(name=f"{self._metric_prefix}_{result}", unit=MetricUnit.Count, value=1)
            return dict(outcome) if isinstance(outcome, dict) else {"result": result}

        once = {event_type: (lambda queued: handle_once(queued=queued)) for event_type in handlers}
        return container().worker(
            self.consumer, once, lambda queued: self._logger.set_correlation_id(queued.correlation_id), settings
        )

    def handler(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        if self._worker is None:
            self._worker = self._build()
        self._idempotency.register_lambda_context(context)
        worker = self._worker

        def record_handler(record: Any) -> Any:
            message = QueuedMessage(
                message_id=record["messageId"],
                receipt_handle=record["receiptHandle"],
                body=record["body"],
                receive_count=_receive_count(record),
                attributes={
                    name: value["stringValue"]
                    for name, value in (record.get("messageAttributes") or {}).items()
                    if value.get("stringValue") is not None
                },
            )
            remaining_ms = context.get_remaining_time_in_millis()
            enough_time = remaining_ms > self._worst_case_ms
            if unprepared:
                batch = unprepared.pop()
                if enough_time and remaining_ms > self._worst_case_ms + self._before_batch_worst_case_ms():
                    self._prepare(batch)
                    # The bulk step can outrun its estimate (a slow service; escalation gives none): the first
                    # message starts only if its own worst case still fits in what is left now.
                    enough_time = context.get_remaining_time_in_millis() > self._worst_case_ms
            return worker.process(message, enough_time=enough_time)

        # The most delivered first: a message handed back untried (no time left) is at the front of its next batch,
        # so it is tried there rather than handed back again and again until the queue's limit.
        records = sorted(event.get("Records", []), key=_receive_count, reverse=True)
        unprepared = [records] if self._before_batch is not None else []
        answer = process_partial_response(
            event={**event, "Records": records},
            record_handler=record_handler,
            processor=self._processor,
            context=context,
        )
        container().flush_activity()
        received = len(event.get("Records", []))
        self._metrics.add_metric(name=f"{self._metric_prefix}sReceived", unit=MetricUnit.Count, value=received)
        retried = len(answer["batchItemFailures"])
        self._metrics.add_metric(name=f"{self._metric_prefix}sRetried", unit=MetricUnit.Count, value=retried)
        return dict(answer)

    def _prepare(self, records: list[dict[str, Any]]) -> None:
        """The consumer's look at the whole batch before its messages are worked one by one (e.g. one bulk call
        for many); best effort: each message's own work still does whatever this did not."""
        batch = []
        for record in records:
            try:
                batch.append(QueuedEvent.from_json(record["body"]))
            except Exception:  # noqa: BLE001 - the worker parks what it cannot read
                continue
        try:
            if batch and self._before_batch is not None:
                self._before_batch(batch)
        except Exception as error:  # noqa: BLE001 - the one-by-one path does the work
            self._logger.warning("batch preparation skipped", extra={"error_type": type(error).__name__})


def _receive_count(record: dict[str, Any]) -> int:
    return int((record.get("attributes") or {}).get("ApproximateReceiveCount", 1))
