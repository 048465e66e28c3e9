"""boto3 clients, created once per container and only when first used.

The endpoint comes from the standard `AWS_ENDPOINT_URL` variable when it is set (a local stack), so no code here
knows whether it talks to AWS or to an emulator. DynamoDB is used through the low-level client with a thin
table wrapper rather than boto3's resource layer, whose model loading costs a cold start ~100 ms.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import cache
from typing import Any

from memberflow.errors import RateLimited
from memberflow.retry import with_brief_retries, worst_case_seconds

CONNECT_TIMEOUT_SECONDS = 1
READ_TIMEOUT_SECONDS = 3
ATTEMPTS = 2
WORST_CASE_CALL_SECONDS = worst_case_seconds(CONNECT_TIMEOUT_SECONDS + READ_TIMEOUT_SECONDS, ATTEMPTS)
"""The longest one AWS call can take (botocore's back-off between its two attempts stays under a second)."""
UNPROCESSED_SENDS = 4
"""Sends of one BatchWriteItem slice of 25 (BatchGetItem slice of 100): the first, and at most three more of what
DynamoDB left unprocessed."""
UNPROCESSED_BASE_DELAY_SECONDS = 0.1
"""The first pause before items left unprocessed are sent again; it doubles with each send (about 1 s in all)."""


class _Unprocessed(RateLimited):
    """Part of a batch call left unprocessed: the only failure its resends are for."""


def _config() -> Any:
    from botocore.config import Config

    # Short timeouts and few attempts: intake must answer Slack within 3 s, and a failed SQS write is better
    # answered with a fast 503 (the platform retries) than with a Lambda timeout. Same-region calls take ms.
    return Config(
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
        retries={"mode": "standard", "max_attempts": ATTEMPTS},
    )


@cache
def client(service: str) -> Any:
    import boto3

    return boto3.client(service, config=_config())


class ConditionNotMet(Exception):
    """A conditional write whose condition did not hold: an answer, not a failure (callers turn it into False)."""


def aws_failure(error: Exception, service: str) -> Exception:
    """A botocore failure as one of `memberflow.errors`, so that no botocore exception travels further."""
    from botocore.exceptions import ClientError

    from memberflow.errors import AccountProblem, RateLimited, ServiceUnavailable

    if not isinstance(error, ClientError):  # connection, timeout, credentials lookup, ...
        return ServiceUnavailable(f"{service} unreachable: {type(error).__name__}")
    code = error.response.get("Error", {}).get("Code", "")
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    if code in THROTTLING_CODES:
        return RateLimited(f"{service} throttled: {code}")
    if status >= 500 or code in ("InternalServerError", "ServiceUnavailable", "InternalFailure"):
        return ServiceUnavailable(f"{service} failed: {code or status}")
    # Access denied, a missing table or queue, a validation error of ours: an operator must look.
    return AccountProblem(f"{service} refused the request: {code or status}", status)


THROTTLING_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "RequestThrottled",
    }
)


@cache
def table(name: str) -> DynamoTable:
    return DynamoTable(name, client("dynamodb"))


class DynamoTable:
    """The calls of boto3's `Table` resource that memberflow makes, with plain Python values in and out."""

    def __init__(self, name: str, dynamodb: Any, sleep: Callable[[float], None] = time.sleep) -> None:
        from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

        self.name = name
        self._client = dynamodb
        self._sleep = sleep
        self._serialize = TypeSerializer().serialize
        self._deserialize = TypeDeserializer().deserialize

    def _encode(self, values: dict[str, Any]) -> dict[str, Any]:
        return {key: self._serialize(value) for key, value in values.items()}

    def _decode(self, item: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if item is None else {key: self._deserialize(value) for key, value in item.items()}

    def _request(self, request: dict[str, Any]) -> dict[str, Any]:
        request = {"TableName": self.name, **request}
        for name in ("Key", "Item", "ExpressionAttributeValues"):
            if name in request:
                request[name] = self._encode(request[name])
        return request

    def _call(self, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return dict(getattr(self._client, operation)(**self._request(request)))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise ConditionNotMet() from None
            raise aws_failure(error, "DynamoDB") from None
        except BotoCoreError as error:
            raise aws_failure(error, "DynamoDB") from None

    def get_item(self, **request: Any) -> dict[str, Any]:
        answer = self._call("get_item", request)
        return {"Item": self._decode(answer["Item"])} if "Item" in answer else {}

    def put_item(self, **request: Any) -> dict[str, Any]:
        return self._call("put_item", request)

    def delete_item(self, **request: Any) -> dict[str, Any]:
        return self._call("delete_item", request)

    def update_item(self, **request: Any) -> dict[str, Any]:
        answer = self._call("update_item", request)
        return {"Attributes": self._decode(answer["Attributes"])} if "Attributes" in answer else {}

    def query(self, **request: Any) -> dict[str, Any]:
        """`LastEvaluatedKey` comes back as DynamoDB sent it: pass it on as `ExclusiveStartKey` unchanged."""
        answer = self._call("query", request)
        page: dict[str, Any] = {"Items": [self._decode(item) for item in answer.get("Items", [])]}
        page["ScannedCount"] = int(answer.get("ScannedCount", len(page["Items"])))
        if "LastEvaluatedKey" in answer:
            page["LastEvaluatedKey"] = answer["LastEvaluatedKey"]
        return page

    def put_many(self, items: list[dict[str, Any]]) -> None:
        """Write `items` (unconditional puts), 25 per BatchWriteItem call, what DynamoDB leaves unprocessed sent
        again (`_until_processed`)."""
        for start in range(0, len(items), 25):
            puts = [{"PutRequest": {"Item": self._encode(item)}} for item in items[start : start + 25]]
            self._until_processed("batch_write_item", {self.name: puts})

    def batch_get(
        self, keys: list[dict[str, Any]], projection: str | None = None, *, consistent: bool = False
    ) -> list[dict[str, Any]]:
        """The items under `keys` that exist (any order), 100 keys per call, unprocessed keys asked again
        (`_until_processed`)."""
        found: list[dict[str, Any]] = []

        def take(answer: dict[str, Any]) -> None:
            found.extend(self._decode(item) or {} for item in answer.get("Responses", {}).get(self.name, []))

        for start in range(0, len(keys), 100):
            request: dict[str, Any] = {"Keys": [self._encode(key) for key in keys[start : start + 100]]}
            if projection:
                request["ProjectionExpression"] = projection
            if consistent:
                request["ConsistentRead"] = True
            self._until_processed("batch_get_item", {self.name: request}, take)
        return found

    def _until_processed(
        self, operation: str, pending: dict[str, Any], take: Callable[[dict[str, Any]], None] | None = None
    ) -> None:
        """Send a batch call, and what DynamoDB leaves unprocessed (the table is throttled) again after a short
        jittered exponential back-off, as AWS advises: UNPROCESSED_SENDS sends at most, then `RateLimited`, so a
        throttled table ends the work instead of spinning until the function times out. A call that fails as a
        whole is not resent here: botocore has retried it already."""
        unprocessed = "UnprocessedItems" if operation == "batch_write_item" else "UnprocessedKeys"

        def send() -> None:
            nonlocal pending
            answer = self._batch(operation, pending)
            if take is not None:
                take(answer)
            pending = answer.get(unprocessed) or {}
            if pending:  # per table: a list of write requests, or a request with its "Keys"
                left = sum(len(left["Keys"] if isinstance(left, dict) else left) for left in pending.values())
                raise _Unprocessed(f"DynamoDB throttled: {left} items left unprocessed")

        try:
            with_brief_retries(
                send,
                attempts=UNPROCESSED_SENDS,
                base_delay=UNPROCESSED_BASE_DELAY_SECONDS,
                sleep=self._sleep,
                retry_if=lambda failure: isinstance(failure, _Unprocessed),
            )
        except _Unprocessed as left:
            raise RateLimited(f"{left} after {UNPROCESSED_SENDS} sends") from None

    def _batch(self, operation: str, request_items: dict[str, Any]) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return dict(getattr(self._client, operation)(RequestItems=request_items))
        except (ClientError, BotoCoreError) as error:
            raise aws_failure(error, "DynamoDB") from None
