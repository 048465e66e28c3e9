"""BatchWriteItem: items DynamoDB leaves unprocessed (a throttled table) are sent again a few times after a short
jittered back-off, and the write fails as a transient error when some are still left, instead of looping on."""

from __future__ import annotations

from typing import Any

import pytest

from memberflow.adapters.aws import UNPROCESSED_SENDS, DynamoTable
from memberflow.errors import RateLimited, Transient


class ThrottledDynamoDB:
    """Leaves the last `unprocessed` items of each BatchWriteItem unprocessed, `throttled_sends` times."""

    def __init__(self, throttled_sends: int, unprocessed: int = 2) -> None:
        self.throttled_sends = throttled_sends
        self.unprocessed = unprocessed
        self.sent: list[int] = []

    def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:  # noqa: N803 - boto3's name
        [(table, requests)] = RequestItems.items()
        self.sent.append(len(requests))
        if len(self.sent) > self.throttled_sends:
            return {"UnprocessedItems": {}}
        return {"UnprocessedItems": {table: requests[-self.unprocessed :]}}


def items(count: int) -> list[dict[str, Any]]:
    return [{"pk": f"TRACE#{i}", "sk": "step"} for i in range(count)]


def test_unprocessed_items_are_sent_again_after_a_growing_pause():
    dynamodb, pauses = ThrottledDynamoDB(throttled_sends=2), []

    DynamoTable("trace", dynamodb, sleep=pauses.append).put_many(items(5))

    assert dynamodb.sent == [5, 2, 2]
    assert len(pauses) == 2 and 0 < pauses[0] < pauses[1] <= 1


def test_items_still_unprocessed_after_a_few_sends_fail_as_a_transient_error():
    dynamodb, pauses = ThrottledDynamoDB(throttled_sends=1000), []

    with pytest.raises(RateLimited, match="2 items left unprocessed") as failure:
        DynamoTable("trace", dynamodb, sleep=pauses.append).put_many(items(5))

    assert isinstance(failure.value, Transient)
    assert dynamodb.sent == [5] + [2] * (UNPROCESSED_SENDS - 1)
    assert len(pauses) == UNPROCESSED_SENDS - 1 and sum(pauses) < 2


def test_the_pauses_are_jittered():
    first_pauses = set()
    for _ in range(20):
        pauses: list[float] = []
        DynamoTable("trace", ThrottledDynamoDB(throttled_sends=1), sleep=pauses.append).put_many(items(3))
        first_pauses.add(pauses[0])
    assert len(first_pauses) > 1
