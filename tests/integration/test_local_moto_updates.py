"""The local stack's DynamoDB updates (memberflow_local.moto_updates): an update expression is parsed once however
often it is sent, and the answers are moto's own (values, conditions, errors)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from memberflow_local import moto_updates
from support.moto_tables import mocked_table

JOIN = "SET #n = :n, platforms = list_append(if_not_exists(platforms, :none), :p) ADD joins :one"


@pytest.fixture
def table():
    moto_updates.install()
    with mocked_table("members", ("pk", "S")) as client:
        yield client


def _join(client, member: str, platform: str, **extra):
    return client.update_item(
        TableName="members",
        Key={"pk": {"S": member}},
        UpdateExpression=JOIN,
        ExpressionAttributeNames={"#n": "name"},
        ExpressionAttributeValues={
            ":n": {"S": member.title()},
            ":none": {"L": []},
            ":p": {"L": [{"S": platform}]},
            ":one": {"N": "1"},
            **extra.pop("values", {}),
        },
        ReturnValues="ALL_NEW",
        **extra,
    )["Attributes"]


def test_an_update_expression_is_parsed_once_and_each_update_applies_its_own_values(table, monkeypatch):
    from moto.dynamodb.parsing.expressions import ExpressionTokenizer

    tokenised = []
    original = ExpressionTokenizer.make_list
    monkeypatch.setattr(ExpressionTokenizer, "make_list", lambda text: tokenised.append(text) or original(text))

    _join(table, "ada", "slack")
    _join(table, "ada", "discord")
    grace = _join(table, "grace", "discourse")
    ada = table.get_item(TableName="members", Key={"pk": {"S": "ada"}})["Item"]

    assert tokenised.count(JOIN) <= 1  # moto tokenised it twice per call before
    assert ada["platforms"] == {"L": [{"S": "slack"}, {"S": "discord"}]} and ada["joins"] == {"N": "2"}
    assert grace == {
        "pk": {"S": "grace"},
        "name": {"S": "Grace"},
        "platforms": {"L": [{"S": "discourse"}]},
        "joins": {"N": "1"},
    }


def test_conditions_and_bad_expressions_still_fail_as_moto_fails_them(table):
    _join(table, "ada", "slack")
    with pytest.raises(ClientError) as refused:
        _join(table, "ada", "discord", ConditionExpression="joins < :max", values={":max": {"N": "1"}})
    assert refused.value.response["Error"]["Code"] == "ConditionalCheckFailedException"

    for _ in range(2):  # an error is raised again, not remembered as a tree
        with pytest.raises(ClientError) as invalid:
            table.update_item(
                TableName="members",
                Key={"pk": {"S": "ada"}},
                UpdateExpression="SET = :n",
                ExpressionAttributeValues={":n": {"S": "x"}},
            )
        assert invalid.value.response["Error"]["Code"] == "ValidationException"
