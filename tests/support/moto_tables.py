"""DynamoDB tables for tests of the local stack's moto patches."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

REGION = "us-east-1"


def keyed_table(client: Any, name: str, *key: tuple[str, str]) -> None:
    """An on-demand table with this hash key (and range key), each (attribute, type)."""
    client.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": a, "KeyType": kind}
            for (a, _), kind in zip(key, ("HASH", "RANGE")[: len(key)], strict=True)
        ],
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": t} for a, t in key],
        BillingMode="PAY_PER_REQUEST",
    )


@contextmanager
def mocked_table(name: str, *key: tuple[str, str]) -> Iterator[Any]:
    """A DynamoDB client of an in-process moto holding one `keyed_table`, for the duration of the block."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        keyed_table(client, name, *key)
        yield client
