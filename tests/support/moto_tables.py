"""DynamoDB tables for tests of the local stack's moto patches."""

from __future__ import annotations

from typing import Any


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
