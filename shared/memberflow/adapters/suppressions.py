"""The suppression list in the members table: `SUPPRESSED#<keyed hash>` / `SUPPRESSION`, one item per address or
platform identity that was erased at the person's request.

The hash is HMAC-SHA256 under the stack's suppression key (a secret generated when the stack is created), never a
plain hash: an unsalted SHA-256 or MD5 of an address is confirmed by anyone who hashes a list of candidate
addresses, which would tell who asked to be forgotten. The items carry no expiry: the members table is retained,
and so is the key (losing it would make every suppression unmatchable).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from memberflow.adapters.dynamo import table
from memberflow.ports import Suppression
from memberflow.privacy import keyed_hash

SORT_KEY = "SUPPRESSION"


def suppression_pk(key: str) -> str:
    return f"SUPPRESSED#{key}"


class DynamoSuppressionList:
    def __init__(self, table_name: str, hash_key: Callable[[], bytes]) -> None:
        self._table_name = table_name
        self._hash_key = hash_key
        """Read on first use (from Secrets Manager): a join that finds no suppression still needs it."""

    @property
    def _table(self) -> Any:
        return table(self._table_name)

    def key_of(self, name: str) -> str:
        return keyed_hash(self._hash_key(), name)

    def add(self, name: str, at: datetime, requested_by: str) -> Suppression:
        key = self.key_of(name)
        self._table.put_item(
            Item={
                "pk": suppression_pk(key),
                "sk": SORT_KEY,
                "erased_at": at.isoformat(),
                "requested_by": requested_by,
            }
        )
        return Suppression(key, at, requested_by)

    def find(self, name: str) -> Suppression | None:
        key = self.key_of(name)
        item = self._table.get_item(Key={"pk": suppression_pk(key), "sk": SORT_KEY}, ConsistentRead=True).get("Item")
        return _suppression(key, item) if item else None

    def find_many(self, names: Sequence[str]) -> dict[str, Suppression]:
        by_pk = {suppression_pk(self.key_of(name)): name for name in names}
        items = self._table.batch_get([{"pk": pk, "sk": SORT_KEY} for pk in by_pk], consistent=True)
        found = {by_pk[item["pk"]]: item for item in items if item.get("pk") in by_pk}
        return {name: _suppression(self.key_of(name), item) for name, item in found.items()}


def _suppression(key: str, item: dict[str, Any]) -> Suppression:
    return Suppression(key, datetime.fromisoformat(item["erased_at"]), str(item.get("requested_by", "")))
