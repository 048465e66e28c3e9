"""The local stack's DynamoDB conditions (memberflow_local.moto_conditions): a condition or filter expression is
split into tokens once however often it is sent, and every answer is still moto's own (each call's values, failed
conditions, errors)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from memberflow_local import moto_conditions
from support.moto_tables import mocked_table

NOT_TAKEN = "attribute_not_exists(pk) OR (#s <> :taken AND seats < :max)"
FILTER = "seats >= :least"


@pytest.fixture
def table():
    moto_conditions.install()
    with mocked_table("seats", ("pk", "S"), ("sk", "S")) as client:
        yield client


def _book(client, seat: str, seats: int, *, limit: int = 3, status: str = "open") -> str:
    """Books the seat unless it is taken or holds `limit` seats or more: "booked" or the error code."""
    try:
        client.put_item(
            TableName="seats",
            Item={"pk": {"S": "webinar"}, "sk": {"S": seat}, "seats": {"N": str(seats)}, "status": {"S": status}},
            ConditionExpression=NOT_TAKEN,
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":taken": {"S": "taken"}, ":max": {"N": str(limit)}},
        )
    except ClientError as error:
        return error.response["Error"]["Code"]
    return "booked"


def _at_least(client, least: int) -> list[str]:
    page = client.query(
        TableName="seats",
        KeyConditionExpression="pk = :pk",
        FilterExpression=FILTER,
        ExpressionAttributeValues={":pk": {"S": "webinar"}, ":least": {"N": str(least)}},
    )
    return [item["sk"]["S"] for item in page["Items"]]


def test_an_expression_is_lexed_once_and_each_call_is_judged_on_its_own_values(table, monkeypatch):
    from moto.dynamodb.comparisons import ConditionExpressionParser

    lexed = []
    original = ConditionExpressionParser._lex_one_node
    monkeypatch.setattr(
        ConditionExpressionParser, "_lex_one_node", lambda self, rest: lexed.append(rest) or original(self, rest)
    )

    assert _book(table, "a1", 1) == "booked"  # new
    assert _book(table, "a1", 5) == "booked"  # open, 1 seat < 3
    assert _book(table, "a1", 1) == "ConditionalCheckFailedException"  # 5 seats stored, not < 3
    assert _book(table, "a1", 1, limit=6) == "booked"  # the same expression, another limit: 5 < 6
    assert _book(table, "a2", 2, status="taken") == "booked"
    assert _book(table, "a2", 1) == "ConditionalCheckFailedException"  # taken
    assert _at_least(table, 2) == ["a2"] and _at_least(table, 1) == ["a1", "a2"] and _at_least(table, 3) == []

    assert sum(rest == NOT_TAKEN for rest in lexed) == 1  # lexed on every one of the 6 calls before
    assert sum(rest == FILTER for rest in lexed) == 1


def test_an_expression_moto_cannot_read_fails_each_time(table):
    for _ in range(2):  # raised again, not remembered as tokens (moto's own error: AWS would answer 400)
        with pytest.raises(ValueError, match="Cannot parse condition starting at:; DROP"):
            table.query(
                TableName="seats",
                KeyConditionExpression="pk = :pk",
                FilterExpression="seats >= :least ; DROP",
                ExpressionAttributeValues={":pk": {"S": "webinar"}, ":least": {"N": "1"}},
            )
