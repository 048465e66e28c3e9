"""Trace records in DynamoDB: pk = subject, sk = time + a random suffix, so steps list in the order they happened."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from memberflow.trace import Outcome, Step, TraceRecord

TRACE_RETENTION = timedelta(days=180)


class DynamoTraceStore:
    def __init__(self, table_name: str) -> None:
        self._table_name = table_name

    @property
    def _table(self) -> Any:
        from memberflow.adapters.aws import table

        return table(self._table_name)

    def record(self, record: TraceRecord) -> None:
        self._table.put_item(Item=_item(record))

    def record_many(self, records: Sequence[TraceRecord]) -> None:
        self._table.put_many([_item(record) for record in records])

    def erase(self, subject: str) -> int:
        """Delete every record filed under `subject` (a member who asked to be forgotten)."""
        from memberflow.adapters.dynamo import delete_partition

        return delete_partition(self._table, subject)

    def query(self, subject: str) -> list[TraceRecord]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :subject",
            "ExpressionAttributeValues": {":subject": subject},
        }
        while True:
            page = self._table.query(**kwargs)
            items.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return [
            TraceRecord(
                subject=item["pk"],
                step=Step(item["step"]),
                outcome=Outcome(item["outcome"]),
                detail=item.get("detail", ""),
                correlation_id=item.get("correlation_id", ""),
                source=item.get("source", ""),
                at=datetime.fromisoformat(item["at"]).astimezone(UTC),
                extra=dict(item.get("extra", {})),
            )
            for item in items
        ]


def _item(record: TraceRecord) -> dict[str, Any]:
    item: dict[str, Any] = {
        "pk": record.subject,
        "sk": f"{record.at.isoformat()}#{uuid.uuid4().hex[:8]}",
        "step": record.step.value,
        "outcome": record.outcome.value,
        "detail": record.detail,
        "correlation_id": record.correlation_id,
        "source": record.source,
        "at": record.at.isoformat(),
        "expires_at": int((record.at + TRACE_RETENTION).timestamp()),
    }
    if record.extra:
        item["extra"] = dict(record.extra)
    return item
