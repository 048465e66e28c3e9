"""DynamoDB helpers shared by the table adapters."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any


def table(name: str) -> Any:
    from memberflow.adapters.aws import table as cached_table

    return cached_table(name)


def update_if(table: Any, **request: Any) -> dict[str, Any] | None:
    """An update with a ConditionExpression: DynamoDB's answer, or None when the condition did not hold."""
    from memberflow.adapters.aws import ConditionNotMet

    try:
        return dict(table.update_item(**request))
    except ConditionNotMet:
        return None


def query_all(table: Any, **request: Any) -> Iterator[dict[str, Any]]:
    """Every item a query matches, page by page."""
    while True:
        page = table.query(**request)
        yield from page["Items"]
        if "LastEvaluatedKey" not in page:
            return
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def delete_partition(table: Any, pk: str, *, last: str | None = None) -> int:
    """Delete every item whose partition key is `pk` (tables keyed pk/sk); how many there were. The item whose sort
    key is `last`, if any, goes after all the others: a caller that finds the partition by that item (a member's
    `PROFILE`) still finds it after a failure part-way, and a retry deletes what is left."""
    keys = [
        {"pk": item["pk"], "sk": item["sk"]}
        for item in query_all(
            table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": pk},
            ProjectionExpression="pk, sk",
            ConsistentRead=True,
        )
    ]
    for key in sorted(keys, key=lambda key: key["sk"] == last):  # a stable sort: only `last` moves
        table.delete_item(Key=key)
    return len(keys)


def as_datetime(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
