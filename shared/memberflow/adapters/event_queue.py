"""The member events queue (SQS): intake writes QueuedEvents, the onboarding consumer reads them back."""

from __future__ import annotations

from memberflow.models import QueuedEvent


class QueueUnavailable(RuntimeError):
    """The event was not stored (throttled, permission, network, missing queue): the sender should retry."""


class SqsEventQueue:
    def __init__(self, queue_url: str) -> None:
        self._queue_url = queue_url

    def send(self, event: QueuedEvent) -> str:
        """Store the event; returns the SQS message id once SQS has accepted (durably stored) it."""
        from botocore.exceptions import BotoCoreError, ClientError

        from memberflow.adapters.aws import client

        try:
            answer = client("sqs").send_message(
                QueueUrl=self._queue_url,
                MessageBody=event.model_dump_json(),
                MessageAttributes={
                    "idempotency_key": _text(event.idempotency_key),
                    "correlation_id": _text(event.correlation_id),
                    "event_type": _text(event.event.type),
                },
            )
        except (BotoCoreError, ClientError) as error:
            raise QueueUnavailable(f"SQS refused the member event: {error}") from error
        return str(answer["MessageId"])


def _text(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value}
