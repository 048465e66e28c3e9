"""Queue member events and hand them to the onboarding function as Lambda's SQS event source would."""

from __future__ import annotations

import itertools
import time
import weakref
from datetime import UTC, datetime

from botocore.exceptions import ClientError

from memberflow.events import ConsentGiven, MemberActive, MemberJoined, MemberVerified
from memberflow.models import MemberIdentity, Platform
from memberflow.pipeline.envelope import QueuedEvent
from memberflow_local.event_sources import lambda_sqs_record

QUEUE = "MemberEventsQueue"
DLQ = "MemberEventsDeadLetterQueue"
JOINED = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
_ids = itertools.count(1)
_handed_back: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
"""Per stack, (queue URL, receipt handle) of the messages `run_onboarding` left in their queue for a retry: in flight
until their delay passes, out of reach of a receive, so `empty_queues` deletes them by their receipt handle."""


def joined(
    email: str | None,
    *,
    consent: bool,
    platform: Platform = Platform.DISCOURSE,
    user_id: str | None = None,
    key: str | None = None,
    name: str = "Ada Lovelace",
) -> QueuedEvent:
    user_id = user_id or str(next(_ids))
    identity = MemberIdentity(platform=platform, workspace="w1", user_id=user_id)
    event = MemberJoined(identity=identity, email=email, name=name, joined_at=JOINED, marketing_consent=consent)
    return QueuedEvent(
        idempotency_key=key or f"{platform}:w1:join:{user_id}",
        correlation_id=f"corr-{user_id}",
        source=platform.value,
        event=event,
    )


def verified(identity: MemberIdentity, email: str, *, consent: bool) -> QueuedEvent:
    """The platform proved `email` (Discourse user_confirmed_email); `consent` is what the account says now."""
    event = MemberVerified(identity=identity, email=email, joined_at=JOINED, marketing_consent=consent)
    return QueuedEvent(
        idempotency_key=f"{identity.platform}:w1:verified:{identity.user_id}",
        correlation_id=f"corr-v{identity.user_id}",
        source=identity.platform.value,
        event=event,
    )


def consent_given(identity: MemberIdentity, email: str) -> QueuedEvent:
    """The member ticked the consent box after joining (Discourse user_updated)."""
    event = ConsentGiven(identity=identity, email=email, name="Ada Lovelace", joined_at=JOINED)
    return QueuedEvent(
        idempotency_key=f"{identity.platform}:w1:consent:{identity.user_id}",
        correlation_id=f"corr-c{identity.user_id}",
        source=identity.platform.value,
        event=event,
    )


def active(identity: MemberIdentity, activity: str = "message") -> QueuedEvent:
    event = MemberActive(identity=identity, activity=activity, active_at=JOINED.replace(hour=18))
    n = next(_ids)
    return QueuedEvent(
        idempotency_key=f"{identity.platform}:w1:msg:{n}",
        correlation_id=f"corr-a{n}",
        source=identity.platform.value,
        event=event,
    )


def receive_all(stack, queue: str, count: int, timeout: float = 20) -> list[dict]:
    """Receive until `count` messages arrived, or until the queue has nothing left that could arrive (nothing
    visible or delayed: with the pollers off, nothing else sends to it meanwhile), or `timeout` passed."""
    sqs, url = stack.client("sqs"), stack.queue_url(queue)
    messages: list[dict] = []
    deadline = time.monotonic() + timeout
    while len(messages) < count:
        answer = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=0,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        received = answer.get("Messages", [])
        messages += received
        if received:
            continue
        if not _receivable(sqs, url) or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    return messages


def _receivable(sqs, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def run_onboarding(stack, *events: QueuedEvent, receive_count: int | None = None) -> dict:
    """Queue `events`, receive them and invoke the onboarding function with one SQS batch; return its answer."""
    sqs, url = stack.client("sqs"), stack.queue_url(QUEUE)
    sent = [sqs.send_message(QueueUrl=url, MessageBody=queued.model_dump_json())["MessageId"] for queued in events]
    messages = []
    for message in receive_all(stack, QUEUE, len(events)):
        if message["MessageId"] in sent:
            messages.append(message)
        else:  # left over from an earlier test's retry
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert len(messages) == len(events)
    records = [lambda_sqs_record(message, stack.queue_arn(QUEUE)) for message in messages]
    if receive_count is not None:
        for record in records:
            record["attributes"]["ApproximateReceiveCount"] = str(receive_count)
    answer = stack.invoke("OnboardingFunction", {"Records": records})
    failed = {item["itemIdentifier"] for item in answer.get("batchItemFailures", [])}
    for record in records:  # what Lambda's event source mapping does with a partial batch answer
        if record["messageId"] not in failed:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=record["receiptHandle"])
        else:
            _handed_back.setdefault(stack, []).append((url, record["receiptHandle"]))
    return answer


def dead_letters(stack) -> list[dict]:
    """What the dead-letter queue holds; the messages stay there, visible (a later test's cleanup removes them)."""
    sqs, url = stack.client("sqs"), stack.queue_url(DLQ)
    messages = receive_all(stack, DLQ, 1)
    for message in messages:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    return messages


def empty_queues(stack) -> None:
    """Nothing left in the queues from an earlier test: neither visible nor waiting out a retry delay."""
    sqs = stack.client("sqs")
    for url, receipt_handle in _handed_back.pop(stack, []):
        try:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=receipt_handle)
        except ClientError:  # received again and deleted since
            pass
    for queue in (QUEUE, DLQ):
        url = stack.queue_url(queue)
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
            for message in messages:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
