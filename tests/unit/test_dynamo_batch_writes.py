"""BatchWriteItem and BatchGetItem: items or keys DynamoDB leaves unprocessed (a throttled table) are sent again a few
times after a short jittered back-off, and the call fails as a transient error when some are still left, instead of
looping on."""

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


class ThrottledBatchGets:
    """Answers the first key of each BatchGetItem and leaves the rest unprocessed, `throttled_sends` times; a send
    past `HOT_LOOP` fails the test instead of spinning."""

    HOT_LOOP = 50

    def __init__(self, throttled_sends: int) -> None:
        self.throttled_sends = throttled_sends
        self.asked: list[int] = []

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:  # noqa: N803 - boto3's name
        [(table, request)] = RequestItems.items()
        keys = request["Keys"]
        self.asked.append(len(keys))
        assert len(self.asked) < self.HOT_LOOP, "unprocessed keys asked again without end"
        if len(self.asked) > self.throttled_sends:
            return {"Responses": {table: keys}, "UnprocessedKeys": {}}
        return {"Responses": {table: keys[:1]}, "UnprocessedKeys": {table: {**request, "Keys": keys[1:]}}}


def test_unprocessed_keys_are_asked_again_after_a_growing_pause_with_what_was_read_kept():
    dynamodb, pauses = ThrottledBatchGets(throttled_sends=2), []

    found = DynamoTable("profiles", dynamodb, sleep=pauses.append).batch_get(items(5), consistent=True)

    assert sorted(item["pk"] for item in found) == sorted(item["pk"] for item in items(5))
    assert dynamodb.asked == [5, 4, 3]
    assert len(pauses) == 2 and 0 < pauses[0] < pauses[1] <= 1


def test_keys_still_unprocessed_after_a_few_sends_fail_as_a_transient_error_not_a_hot_loop():
    dynamodb, pauses = ThrottledBatchGets(throttled_sends=1000), []

    with pytest.raises(RateLimited, match=f"1 items left unprocessed after {UNPROCESSED_SENDS} sends"):
        DynamoTable("profiles", dynamodb, sleep=pauses.append).batch_get(items(UNPROCESSED_SENDS + 1))

    assert dynamodb.asked == list(range(UNPROCESSED_SENDS + 1, 1, -1))
    assert len(pauses) == UNPROCESSED_SENDS - 1 and sum(pauses) < 2


def test_a_batch_call_that_fails_as_a_whole_is_not_resent_botocore_retried_it_already():
    from botocore.exceptions import ClientError

    class Throttled:
        sent = 0

        def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:  # noqa: N803 - boto3's name
            self.sent += 1
            raise ClientError({"Error": {"Code": "ThrottlingException"}}, "BatchWriteItem")

    dynamodb, pauses = Throttled(), []
    with pytest.raises(RateLimited, match="ThrottlingException"):
        DynamoTable("trace", dynamodb, sleep=pauses.append).put_many(items(3))
    assert dynamodb.sent == 1 and pauses == []
