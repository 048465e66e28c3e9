"""SQS: intake routes queued events to their destination queue; consumers hand failed messages back with a delay
or park them in their dead-letter queue with the reason."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from memberflow.errors import MemberflowError, QueueUnavailable
from memberflow.pipeline.envelope import QueuedEvent
from memberflow.pipeline.policy import Park
from memberflow.pipeline.redrive import REDRIVES_ATTRIBUTE, ParkedMessage
from memberflow.pipeline.worker import QueuedMessage

DEFERRAL_RECORD_DAYS = 4
"""As long as SQS keeps a message by default."""


def _sqs(operation: str, **request: Any) -> Any:
    """One SQS call; its failures become `memberflow.errors`."""
    from botocore.exceptions import BotoCoreError, ClientError

    from memberflow.adapters.aws import aws_failure, client

    try:
        return getattr(client("sqs"), operation)(**request)
    except (BotoCoreError, ClientError) as error:
        raise aws_failure(error, "SQS") from None


def _text(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value}


class SqsEventRouter:
    """Sends each event to the queue of its type's destination, as template.yaml maps them (EVENT_DESTINATIONS)."""

    def __init__(self, destinations: Mapping[str, str], catalog: Any) -> None:
        self._destinations = dict(destinations)
        self._catalog = catalog

    def send(self, event: QueuedEvent) -> str:
        """Store the event; returns the SQS message id once SQS has accepted (durably stored) it."""
        destination = self._catalog.get(event.event.type).destination
        queue_url = self._destinations.get(destination)
        if not queue_url:
            raise QueueUnavailable(f"no queue is configured for destination {destination!r}")
        try:
            answer = _sqs(
                "send_message",
                QueueUrl=queue_url,
                MessageBody=event.model_dump_json(),
                MessageAttributes={
                    "idempotency_key": _text(event.idempotency_key),
                    "correlation_id": _text(event.correlation_id),
                    "event_type": _text(event.event.type),
                },
            )
        except MemberflowError as error:
            raise QueueUnavailable(f"the {event.event.type} event was not stored: {error}") from None
        return str(answer["MessageId"])


class SqsWorkQueue:
    """The `WorkQueue` of one consumer: its queue, its dead-letter queue, and a record of deferrals (kept in the
    idempotency table, which expires it) so that deliveries spent waiting out an outage are not counted as the
    member's attempts."""

    def __init__(self, queue_url: str, dead_letter_queue_url: str, deferrals_table: str, consumer: str) -> None:
        self._queue_url = queue_url
        self._dead_letter_queue_url = dead_letter_queue_url
        self._deferrals_table = deferrals_table
        self._consumer = consumer

    def retry_later(self, message: QueuedMessage, delay_seconds: int) -> None:
        _sqs(
            "change_message_visibility",
            QueueUrl=self._queue_url,
            ReceiptHandle=message.receipt_handle,
            VisibilityTimeout=delay_seconds,
        )

    def park(self, message: QueuedMessage, park: Park, correlation_id: str, idempotency_key: str) -> None:
        attributes = {
            "failure_reason": park.reason[:1000],
            "failure_kind": park.kind,
            "retryable": "true" if park.retryable else "false",
            "consumer": self._consumer,
            "source_message_id": message.message_id,
            "receive_count": str(message.receive_count),
            "correlation_id": correlation_id or "unknown",
            "idempotency_key": idempotency_key or "unknown",
            REDRIVES_ATTRIBUTE: message.attributes.get(REDRIVES_ATTRIBUTE, "0"),
        }
        _sqs(
            "send_message",
            QueueUrl=self._dead_letter_queue_url,
            MessageBody=message.body,
            MessageAttributes={k: _text(v) for k, v in attributes.items()},
        )

    def deferrals(self, message: QueuedMessage) -> int:
        item = self._ledger.get_item(Key={"id": self._ledger_id(message)}).get("Item") or {}
        return int(item.get("deferrals", 0))

    def record_deferral(self, message: QueuedMessage) -> None:
        self._ledger.update_item(
            Key={"id": self._ledger_id(message)},
            UpdateExpression="ADD deferrals :one SET expiration = :expires",
            ExpressionAttributeValues={":one": 1, ":expires": int(time.time()) + DEFERRAL_RECORD_DAYS * 86400},
        )

    @property
    def _ledger(self) -> Any:
        from memberflow.adapters.aws import table

        return table(self._deferrals_table)

    def _ledger_id(self, message: QueuedMessage) -> str:
        return f"memberflow.{self._consumer}.deferrals#{message.message_id}"


class SqsDeadLetters:
    """A dead-letter queue and the queue its messages came from: the `DeadLetters` of the automatic redrive."""

    def __init__(self, dead_letter_queue_url: str, source_queue_url: str) -> None:
        self._dead_letter_queue_url = dead_letter_queue_url
        self._source_queue_url = source_queue_url
        self._receipts: dict[str, str] = {}

    def receive(self, max_messages: int) -> list[ParkedMessage]:
        received: list[ParkedMessage] = []
        while len(received) < max_messages:
            answer = _sqs(
                "receive_message",
                QueueUrl=self._dead_letter_queue_url,
                MaxNumberOfMessages=min(10, max_messages - len(received)),
                MessageAttributeNames=["All"],
                WaitTimeSeconds=0,
            )
            messages = answer.get("Messages") or []
            if not messages:
                break
            for message in messages:
                attributes = {
                    name: value["StringValue"]
                    for name, value in (message.get("MessageAttributes") or {}).items()
                    if "StringValue" in value
                }
                self._receipts[message["MessageId"]] = message["ReceiptHandle"]
                received.append(ParkedMessage(message["MessageId"], message["Body"], attributes))
        return received

    def send_back(self, message: ParkedMessage, redrives: int) -> None:
        kept = {
            name: message.attributes[name]
            for name in ("correlation_id", "idempotency_key")
            if name in message.attributes
        }
        _sqs(
            "send_message",
            QueueUrl=self._source_queue_url,
            MessageBody=message.body,
            MessageAttributes={**{k: _text(v) for k, v in kept.items()}, REDRIVES_ATTRIBUTE: _text(str(redrives))},
        )
        _sqs(
            "delete_message", QueueUrl=self._dead_letter_queue_url, ReceiptHandle=self._receipts.pop(message.message_id)
        )
