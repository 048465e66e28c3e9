"""Deliveries intake queued recently, kept in the idempotency table (its TTL attribute `expiration` removes them):
a platform's retry of a delivery already queued is then answered without a second queue message.

Items are `{"id": "memberflow.intake.delivery#<idempotency key>", "correlation_id", "expiration"}`; the intake
function's role may touch only ids with that prefix (template.yaml, `dynamodb:LeadingKeys`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

ID_PREFIX = "memberflow.intake.delivery#"
REMEMBERED_FOR = timedelta(hours=1)
"""Slack retries within minutes (at once, after about 1 and 5 minutes)."""


class DynamoDeliveryLog:
    def __init__(self, table_name: str, remembered_for: timedelta = REMEMBERED_FOR) -> None:
        self._table_name = table_name
        self._remembered_for = remembered_for

    @property
    def _table(self) -> Any:
        from memberflow.adapters.aws import table

        return table(self._table_name)

    def queued_before(self, idempotency_key: str, now: datetime) -> str | None:
        item = self._table.get_item(Key={"id": ID_PREFIX + idempotency_key}).get("Item")
        # DynamoDB deletes expired items lazily: an item past its expiration no longer counts.
        if not item or int(item.get("expiration", 0)) <= int(now.timestamp()):
            return None
        return str(item.get("correlation_id") or "unknown")

    def remember(self, idempotency_key: str, correlation_id: str, now: datetime) -> None:
        self._table.put_item(
            Item={
                "id": ID_PREFIX + idempotency_key,
                "correlation_id": correlation_id,
                "expiration": int((now + self._remembered_for).timestamp()),
            }
        )
