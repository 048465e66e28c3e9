"""Where the local stack makes moto faster without changing its answers: a DynamoDB table query reads only the
queried partition (memberflow_local.moto_query), with moto's own ordering, pagination and key conditions; an index
query still reads every item but no longer sorts the whole table first; and the server finds each host's backend
once instead of on every request."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends

from memberflow_local import moto_query
from support.moto_tables import keyed_table

REGION = "us-east-1"


class Untouchable:
    """A key no query of another partition may look at: any comparison fails."""

    def __eq__(self, other: object) -> bool:
        raise AssertionError("an item of another partition was compared")

    __lt__ = __gt__ = __le__ = __ge__ = __eq__
    __hash__ = object.__hash__


@pytest.fixture
def dynamodb():
    moto_query.install()
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        client.create_table(
            TableName="members",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
                {"AttributeName": "email", "AttributeType": "S"},
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "by-email",
                    "KeySchema": [{"AttributeName": "email", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "KEYS_ONLY"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        keyed_table(client, "flat", ("id", "S"))
        keyed_table(client, "numbered", ("n", "N"), ("at", "S"))
        for member in range(3):
            for n in range(5):
                item = {"pk": {"S": f"MEMBER#{member}"}, "sk": {"S": f"CONSENT#{n}"}, "email": {"S": f"m{member}@x"}}
                client.put_item(TableName="members", Item=item)
            client.put_item(TableName="members", Item={"pk": {"S": f"MEMBER#{member}"}, "sk": {"S": "PROFILE"}})
            client.put_item(TableName="flat", Item={"id": {"S": f"id-{member}"}, "n": {"N": str(member)}})
        yield client


def _untouchable_partition(table_name: str, hash_value: str) -> None:
    table = dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION].tables[table_name]
    for key, stored in table.items.items():
        if key.value == hash_value:
            for item in stored.values() if table.range_key_attr else [stored]:
                item.hash_key = Untouchable()


def _pages(dynamodb, request: dict) -> list[list[str]]:
    """Each page's sort keys, following LastEvaluatedKey to the end."""
    pages, start = [], None
    while True:
        page = dynamodb.query(**request, **({"ExclusiveStartKey": start} if start else {}))
        pages.append([item["sk"]["S"] for item in page["Items"]])
        start = page.get("LastEvaluatedKey")
        if not start:
            return pages


def test_a_table_query_reads_only_its_partition_and_pages_in_order(dynamodb):
    _untouchable_partition("members", "MEMBER#2")
    request = {
        "TableName": "members",
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
        "ExpressionAttributeValues": {":pk": {"S": "MEMBER#1"}, ":prefix": {"S": "CONSENT#"}},
        "Limit": 2,
    }
    pages = _pages(dynamodb, request)
    assert [sk for page in pages for sk in page] == [f"CONSENT#{n}" for n in range(5)]
    assert all(len(page) <= 2 for page in pages)

    backwards = dynamodb.query(**{**request, "Limit": 10}, ScanIndexForward=False)["Items"]
    assert [item["sk"]["S"] for item in backwards] == [f"CONSENT#{n}" for n in reversed(range(5))]


def test_a_partition_that_does_not_exist_is_empty_and_a_table_without_sort_key_answers_its_item(dynamodb):
    _untouchable_partition("flat", "id-2")
    missing = dynamodb.query(
        TableName="members",
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "MEMBER#9"}},
    )
    assert missing["Items"] == [] and missing["Count"] == 0
    flat = dynamodb.query(
        TableName="flat", KeyConditionExpression="id = :id", ExpressionAttributeValues={":id": {"S": "id-1"}}
    )
    assert flat["Items"] == [{"id": {"S": "id-1"}, "n": {"N": "1"}}]


def test_index_queries_and_scans_still_see_every_partition(dynamodb):
    by_email = dynamodb.query(
        TableName="members",
        IndexName="by-email",
        KeyConditionExpression="email = :email",
        ExpressionAttributeValues={":email": {"S": "m2@x"}},
    )
    assert {item["sk"]["S"] for item in by_email["Items"]} == {f"CONSENT#{n}" for n in range(5)}
    assert dynamodb.scan(TableName="members", Select="COUNT")["Count"] == 18


def test_an_index_query_does_not_sort_the_whole_table(dynamodb):
    for member in range(3):
        _untouchable_partition("members", f"MEMBER#{member}")  # sorting the table by its key would fail
    by_email = dynamodb.query(
        TableName="members",
        IndexName="by-email",
        KeyConditionExpression="email = :email",
        ExpressionAttributeValues={":email": {"S": "m1@x"}},
    )
    assert [item["sk"]["S"] for item in by_email["Items"]] == [f"CONSENT#{n}" for n in range(5)]


def test_an_index_query_pages_in_the_index_order(dynamodb):
    request = {
        "TableName": "members",
        "IndexName": "by-email",
        "KeyConditionExpression": "email = :email",
        "ExpressionAttributeValues": {":email": {"S": "m1@x"}},
        "Limit": 2,
    }
    pages = _pages(dynamodb, request)
    # The index has no sort key: its items come in the table's key order, two a page.
    assert [sk for page in pages for sk in page] == [f"CONSENT#{n}" for n in range(5)]
    assert all(len(page) <= 2 for page in pages) and len(pages) >= 3
    backwards = dynamodb.query(**{**request, "Limit": 10}, ScanIndexForward=False)["Items"]
    assert [item["sk"]["S"] for item in backwards] == [f"CONSENT#{n}" for n in reversed(range(5))]


def test_the_local_moto_server_finds_each_hosts_backend_once():
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    from memberflow_local.aws import _dispatcher_remembering_backends

    looked_up: list[str | None] = []

    class Counting(DomainDispatcherApplication):
        def get_backend_for_host(self, host):
            looked_up.append(host)
            return super().get_backend_for_host(host)

    app = _dispatcher_remembering_backends(Counting)(create_backend_app)
    hosts = ["sqs.us-east-1.amazonaws.com", "dynamodb", None] * 3
    answers = [app.get_backend_for_host(host) for host in hosts]

    assert answers == ["sqs", "dynamodb", None] * 3
    assert looked_up == ["sqs.us-east-1.amazonaws.com", "dynamodb", None]


def test_a_scan_pages_through_the_table_in_moto_s_key_order(dynamodb):
    for n in (10, 9, 100, -1, 2.5):
        dynamodb.put_item(TableName="flat", Item={"id": {"S": f"n{n}"}, "n": {"N": str(n)}})
    for n in (10, 9, 100, -1, 2.5):
        for at in ("b", "a"):
            dynamodb.put_item(TableName="numbered", Item={"n": {"N": str(n)}, "at": {"S": at}})

    def scanned(table: str, key: tuple[str, ...]) -> list[tuple[str, ...]]:
        seen, start = [], None
        while True:
            page = dynamodb.scan(TableName=table, Limit=3, **({"ExclusiveStartKey": start} if start else {}))
            seen += [tuple(next(iter(item[k].values())) for k in key) for item in page["Items"]]
            start = page.get("LastEvaluatedKey")
            if not start:
                return seen

    # Strings in string order; numbers by value (not as text), then the sort key.
    assert scanned("flat", ("id",)) == sorted(scanned("flat", ("id",)))
    assert len(scanned("flat", ("id",))) == 8
    assert scanned("numbered", ("n", "at")) == [(n, at) for n in ("-1", "2.5", "9", "10", "100") for at in ("a", "b")]


def test_a_scan_orders_the_table_without_comparing_moto_s_typed_values(dynamodb, monkeypatch):
    from moto.dynamodb.models.dynamo_type import DynamoType

    def refused(self, other):
        raise AssertionError("the table was sorted through DynamoType comparisons")

    monkeypatch.setattr(DynamoType, "__lt__", refused)
    monkeypatch.setattr(DynamoType, "__gt__", refused)
    items = dynamodb.scan(TableName="members")["Items"]
    assert [(item["pk"]["S"], item["sk"]["S"]) for item in items][:6] == [
        ("MEMBER#0", f"CONSENT#{n}") for n in range(5)
    ] + [("MEMBER#0", "PROFILE")]
