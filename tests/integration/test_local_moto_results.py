"""The local stack's DynamoDB item results (memberflow_local.moto_results): the plain JSON copy is, byte for byte
once parsed, what moto's shape walk writes, for every item operation and every attribute type."""

from __future__ import annotations

import json

import pytest

from memberflow_local import moto_results
from support.moto_tables import mocked_table

EVERY_TYPE = {
    "pk": {"S": "MEMBER#1"},
    "sk": {"S": "PROFILE"},
    "count": {"N": "12"},
    "ratio": {"N": "0.25"},
    "photo": {"B": b"\x00\x01binary\xff"},
    "active": {"BOOL": True},
    "gone": {"BOOL": False},
    "nothing": {"NULL": True},
    "platforms": {"L": [{"S": "slack"}, {"N": "3"}, {"M": {"deep": {"B": b"\x02"}}}]},
    "consent": {"M": {"status": {"S": "subscribed"}, "tags": {"SS": ["a", "b"]}}},
    "scores": {"NS": ["1", "2.5"]},
    "blobs": {"BS": [b"\x01", b"\x02"]},
}


@pytest.fixture
def compared(monkeypatch):
    """Each item result of the test: (operation, plain copy, moto's shape walk), both as answered."""
    from moto.dynamodb.responses import DynamoResult

    moto_results.install()
    fast = DynamoResult.execute_result
    answers = []

    def both(self, context):
        answer = fast(self, context)
        answers.append((context.operation_model.name, answer, fast.shape_walk(self, context)))
        return answer

    monkeypatch.setattr(DynamoResult, "execute_result", both)
    return answers


def test_every_item_operation_answers_what_the_shape_walk_answers(compared):
    with mocked_table("members", ("pk", "S"), ("sk", "S")) as client:
        client.put_item(TableName="members", Item=EVERY_TYPE)
        for n in range(2, 8):
            client.put_item(TableName="members", Item={**EVERY_TYPE, "pk": {"S": f"MEMBER#{n}"}})
            client.put_item(TableName="members", Item={"pk": {"S": f"MEMBER#{n}"}, "sk": {"S": "LINK#x"}})
        key = {"pk": {"S": "MEMBER#1"}, "sk": {"S": "PROFILE"}}
        total = {"ReturnConsumedCapacity": "TOTAL"}

        got = client.get_item(TableName="members", Key=key, **total)
        assert got["Item"]["photo"] == {"B": b"\x00\x01binary\xff"} and got["Item"]["blobs"]["BS"] == [b"\x01", b"\x02"]
        client.get_item(TableName="members", Key={"pk": {"S": "MEMBER#404"}, "sk": {"S": "PROFILE"}})
        client.get_item(
            TableName="members",
            Key=key,
            ProjectionExpression="#c, consent.tags",
            ExpressionAttributeNames={"#c": "count"},
        )
        client.put_item(TableName="members", Item=EVERY_TYPE, ReturnValues="ALL_OLD", **total)
        client.update_item(
            TableName="members",
            Key=key,
            UpdateExpression="SET #c = #c + :one, photo = :photo",
            ExpressionAttributeNames={"#c": "count"},
            ExpressionAttributeValues={":one": {"N": "1"}, ":photo": {"B": b"\x03"}},
            ReturnValues="ALL_NEW",
            **total,
        )
        client.update_item(TableName="members", Key=key, UpdateExpression="REMOVE nothing", ReturnValues="UPDATED_OLD")
        paged = {
            "query": {"KeyConditionExpression": "pk = :v", "PaginationConfig": {"PageSize": 1}},
            "scan": {"FilterExpression": "sk = :v", "PaginationConfig": {"PageSize": 4}, **total},
        }
        values = {"query": "MEMBER#3", "scan": "PROFILE"}
        found = {
            operation: sum(
                len(page["Items"])
                for page in client.get_paginator(operation).paginate(
                    TableName="members", ExpressionAttributeValues={":v": {"S": values[operation]}}, **options
                )
            )
            for operation, options in paged.items()
        }
        assert found == {"query": 2, "scan": 7}
        client.scan(TableName="members", Select="COUNT")
        client.batch_get_item(
            RequestItems={"members": {"Keys": [key, {"pk": {"S": "MEMBER#2"}, "sk": {"S": "PROFILE"}}]}}
        )
        client.batch_write_item(
            RequestItems={"members": [{"PutRequest": {"Item": {**EVERY_TYPE, "pk": {"S": "MEMBER#9"}}}}]}, **total
        )
        client.transact_get_items(TransactItems=[{"Get": {"TableName": "members", "Key": key}}])
        client.transact_write_items(
            TransactItems=[{"Put": {"TableName": "members", "Item": {**EVERY_TYPE, "pk": {"S": "MEMBER#10"}}}}]
        )
        client.delete_item(TableName="members", Key=key, ReturnValues="ALL_OLD", **total)
        client.describe_table(TableName="members")  # not an item result: moto's own serializer, untouched

    operations = {operation for operation, _, _ in compared}
    assert operations >= moto_results.ITEM_OPERATIONS
    for operation, answer, shape_walk in compared:
        status, headers, body = answer
        # moto adds its request id and date to the answer's headers after this point
        assert status == shape_walk[0] and shape_walk[1].items() <= headers.items(), operation
        assert json.loads(body) == json.loads(shape_walk[2]), operation


def test_a_value_without_a_plain_form_goes_through_the_shape_walk():
    from datetime import UTC, datetime

    assert moto_results.plain({"a": [b"\x01", {"b": None, "c": 1.5}]}) == {"a": ["AQ==", {"c": 1.5}]}
    for odd in ({"at": datetime.now(UTC)}, {"a": [None]}):
        with pytest.raises(moto_results.NotPlain):
            moto_results.plain(odd)
