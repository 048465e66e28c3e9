"""SQS event sources: poll the queue and invoke the function as Lambda's event source mapping does.

Per source, up to ``min(MaximumConcurrency, workers)`` poller threads each loop:
receive up to ``BatchSize`` messages (long poll 1 s, all attributes), build the Lambda SQS event,
invoke the function, then delete. The pollers' batches run concurrently, each in its own container of the
function (see :mod:`memberflow_local.runtime`; the stack sizes the function's pool to match), as Lambda's
event source mapping does up to ``MaximumConcurrency``. After the invocation:

* with ``ReportBatchItemFailures``: every message except those in ``batchItemFailures``. A ``None``
  result, ``{}`` or an empty/null ``batchItemFailures`` is full success; an exception, a result that is
  neither a dict nor ``None``, or an entry whose ``itemIdentifier`` is missing, empty or not a message
  id of the batch fails the whole batch (nothing deleted), as Lambda does;
* without it: all messages when the handler returned, none when it raised.

Failed messages are left to their visibility timeout; SQS (moto) redelivers them and, once a message
has been received ``maxReceiveCount`` times, moves it to the dead-letter queue of the RedrivePolicy
on the next receive.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from .runtime import FunctionRuntime
from .settings import LOCAL_REGION
from .template import SqsSource

log = logging.getLogger("memberflow_local.event_sources")
STOP_SECONDS = 10
"""How long stopping waits for the poller threads (each ends after the batch it is processing)."""


def lambda_message_attributes(attributes: dict[str, Any] | None) -> dict[str, Any]:
    """SQS ReceiveMessage MessageAttributes -> the Lambda event's ``messageAttributes``."""
    out: dict[str, Any] = {}
    for name, attr in (attributes or {}).items():
        entry: dict[str, Any] = {}
        if "StringValue" in attr:
            entry["stringValue"] = attr["StringValue"]
        if "BinaryValue" in attr:
            value = attr["BinaryValue"]
            entry["binaryValue"] = base64.b64encode(value).decode() if isinstance(value, bytes) else value
        entry["stringListValues"] = list(attr.get("StringListValues") or [])
        entry["binaryListValues"] = [
            base64.b64encode(v).decode() if isinstance(v, bytes) else v for v in attr.get("BinaryListValues") or []
        ]
        entry["dataType"] = attr.get("DataType", "String")
        out[name] = entry
    return out


def lambda_sqs_record(message: dict[str, Any], queue_arn: str, region: str = LOCAL_REGION) -> dict[str, Any]:
    attrs = message.get("Attributes") or {}
    attributes = {
        key: str(attrs[key])
        for key in (
            "ApproximateReceiveCount",
            "SentTimestamp",
            "SenderId",
            "ApproximateFirstReceiveTimestamp",
            "SequenceNumber",
            "MessageGroupId",
            "MessageDeduplicationId",
            "AWSTraceHeader",
            "DeadLetterQueueSourceArn",
        )
        if key in attrs
    }
    body = message.get("Body", "")
    record = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": body,
        "attributes": attributes,
        "messageAttributes": lambda_message_attributes(message.get("MessageAttributes")),
        "md5OfBody": message.get("MD5OfBody") or hashlib.md5(body.encode("utf-8")).hexdigest(),  # noqa: S324
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    record.update({"eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": region})
    return record


def failed_message_ids(result: Any, batch_ids: list[str]) -> set[str] | None:
    """Ids to keep from a ReportBatchItemFailures answer; ``None`` = the whole batch failed."""
    if result is None:
        return set()
    if not isinstance(result, dict):
        return None
    failures = result.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return None
    failed: set[str] = set()
    for item in failures:
        if not isinstance(item, dict):
            return None
        identifier = item.get("itemIdentifier")
        if not isinstance(identifier, str) or not identifier or identifier not in batch_ids:
            return None
        failed.add(identifier)
    return failed


class SqsPoller:
    """One SQS event source mapping."""

    def __init__(
        self,
        source: SqsSource,
        function: FunctionRuntime,
        *,
        queue_url: str,
        queue_arn: str,
        client_factory: Callable[[], Any],
        counts: Callable[[str], dict[str, int]] | None = None,
        workers: int = 2,
        region: str = LOCAL_REGION,
        wait_time_seconds: int = 1,
    ) -> None:
        self.source = source
        self.function = function
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.region = region
        self.wait_time_seconds = wait_time_seconds
        self.workers = self.worker_count(source, workers)
        self._client_factory = client_factory
        self._counts = counts
        """Reads the queue's counts without an SQS call (the local moto's state); None: GetQueueAttributes."""
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._busy = 0
        self._held = 0
        self._busy_lock = threading.Lock()
        self.invocations = 0
        self.failed_invocations = 0

    @staticmethod
    def worker_count(source: SqsSource, workers: int) -> int:
        """Concurrent batches for a source: its ``MaximumConcurrency`` bounded by ``workers``."""
        limit = source.maximum_concurrency or workers
        return max(1, min(workers, limit))

    @property
    def name(self) -> str:
        return f"{self.function.spec.logical_id}.{self.source.event_name or self.source.queue_logical_id}"

    def start(self) -> None:
        if self._threads:
            return
        self._stop.clear()
        for index in range(self.workers):
            thread = threading.Thread(target=self._run, name=f"sqs-poller-{self.name}-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def request_stop(self) -> None:
        """Ask the poller threads to stop after their current receive (at most its wait time)."""
        self._stop.set()

    def stop(self, timeout: float = 10) -> None:
        self.request_stop()
        self.wait_stopped(timeout)
        self._threads = []

    def wait_stopped(self, timeout: float) -> bool:
        """Wait up to `timeout` for the poller threads to end; whether they all have."""
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self._threads)

    @property
    def busy(self) -> bool:
        return self._busy > 0

    @property
    def held(self) -> int:
        """Messages received and not yet finished: gathered for a batch or in the function. The queue's other
        in-flight messages wait out a visibility timeout (a retry's delay)."""
        return self._held

    def _hold(self, count: int) -> None:
        with self._busy_lock:
            self._held += count

    def _run(self) -> None:
        sqs = self._client_factory()
        while not self._stop.is_set():
            try:
                self.poll_once(sqs)
            except Exception:  # noqa: BLE001 - keep polling (e.g. server shutting down)
                if self._stop.is_set():
                    break
                log.warning("poller %s: %s", self.name, traceback.format_exc(limit=3))
                self._stop.wait(1)

    def poll_once(self, sqs: Any) -> int:
        """Receive one batch and process it; returns the number of messages received."""
        with self._busy_lock:
            self._busy += 1
        messages: list[dict[str, Any]] = []
        try:
            response = sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=max(1, min(10, self.source.batch_size)),
                WaitTimeSeconds=self.wait_time_seconds,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            messages = response.get("Messages") or []
            self._hold(len(messages))
            # As Lambda does: a batch of more than 10 is gathered over the batching window.
            window_ends = time.monotonic() + self.source.maximum_batching_window_seconds
            while messages and len(messages) < self.source.batch_size and time.monotonic() < window_ends:
                more = (
                    sqs.receive_message(
                        QueueUrl=self.queue_url,
                        MaxNumberOfMessages=max(1, min(10, self.source.batch_size - len(messages))),
                        WaitTimeSeconds=0,
                        AttributeNames=["All"],
                        MessageAttributeNames=["All"],
                    ).get("Messages")
                    or []
                )
                if not more:
                    self._stop.wait(min(0.2, max(0.0, window_ends - time.monotonic())))
                self._hold(len(more))
                messages += more
            if messages:
                self.process(sqs, messages)
            return len(messages)
        finally:
            with self._busy_lock:
                self._busy -= 1
                self._held -= len(messages)

    def process(self, sqs: Any, messages: list[dict[str, Any]]) -> None:
        records = [lambda_sqs_record(m, self.queue_arn, self.region) for m in messages]
        ids = [r["messageId"] for r in records]
        event = {"Records": records}
        with self._busy_lock:
            self.invocations += 1
        try:
            result = self.function.invoke(event)
        except Exception:  # noqa: BLE001 - Lambda: the whole batch returns to the queue
            self._count_failure()
            log.error(
                "%s raised; %d message(s) stay in the queue:\n%s",
                self.function.spec.logical_id,
                len(ids),
                traceback.format_exc(),
            )
            return
        if self.source.report_batch_item_failures:
            failed = failed_message_ids(result, ids)
            if failed is None:
                self._count_failure()
                log.error(
                    "%s returned an invalid batch response %r; the whole batch stays in the queue",
                    self.function.spec.logical_id,
                    result,
                )
                return
        else:
            failed = set()
        to_delete = [m for m in messages if m["MessageId"] not in failed]
        if failed:
            log.info(
                "%s: %d of %d message(s) failed and stay in the queue",
                self.function.spec.logical_id,
                len(failed),
                len(messages),
            )
        for start in range(0, len(to_delete), 10):
            chunk = to_delete[start : start + 10]
            answer = sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
            for failure in answer.get("Failed") or []:
                log.warning("could not delete message: %s", failure)

    def _count_failure(self) -> None:
        with self._busy_lock:
            self.failed_invocations += 1

    def queue_counts(self, sqs: Any | None = None) -> dict[str, int]:
        if self._counts is not None:
            return self._counts(self.queue_url)
        sqs = sqs or self._client_factory()
        attrs = sqs.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return {k: int(v) for k, v in attrs.items()}

    def drain(self, timeout: float = 30, poll_interval: float = 0.2) -> bool:
        """Wait until the queue has no visible, in-flight or delayed messages; False on timeout."""
        sqs = None if self._counts is not None else self._client_factory()
        deadline = time.monotonic() + timeout
        while True:
            counts = self.queue_counts(sqs)
            # received-but-unfinished messages count as NotVisible until deleted
            if sum(counts.values()) == 0:
                return True
            if time.monotonic() >= deadline:
                log.info("drain %s timed out with %s", self.name, counts)
                return False
            time.sleep(poll_interval)


class EventSourceManager:
    """All SQS pollers of a stack. `end_long_polls` makes the long polls then waiting answer at once (the local
    moto's, see memberflow_local.moto_long_polls), so that stopping does not wait out a 20-second poll."""

    def __init__(
        self, pollers: list[SqsPoller] | None = None, *, end_long_polls: Callable[[], None] | None = None
    ) -> None:
        self.pollers = list(pollers or [])
        self._end_long_polls = end_long_polls

    def add(self, poller: SqsPoller) -> None:
        self.pollers.append(poller)

    def start(self) -> None:
        for poller in self.pollers:
            poller.start()

    def stop(self) -> None:
        # Every poller is told first, so their last long polls end together rather than one after another.
        for poller in self.pollers:
            poller.request_stop()
        if self._end_long_polls is not None:
            # Ended again until every thread is done: a receive sent just before the stop request may reach the
            # queue only after the first end, and would wait out its whole long poll.
            deadline = time.monotonic() + STOP_SECONDS
            while time.monotonic() < deadline:
                self._end_long_polls()
                if all(poller.wait_stopped(0.1) for poller in self.pollers):
                    break
        for poller in self.pollers:
            poller.stop()

    def drain(self, timeout: float = 30) -> bool:
        deadline = time.monotonic() + timeout
        # Twice in a row: a function may enqueue into another source's queue while we wait.
        for _ in range(2):
            for poller in self.pollers:
                if not poller.drain(max(0.0, deadline - time.monotonic())):
                    return False
        return True
