"""A DynamoDB Query on a table's own key reads one partition in moto, as it does in DynamoDB.

moto answers such a query by sorting every item of the table and keeping those of the partition, so each query costs
in proportion to the whole table: once the demo has seeded a few thousand members, reading one member's consent
ledger took tens of milliseconds and made the local stack several times slower. `install()` has moto's table query
find its candidates among the partition's items only; everything after that (ordering, pagination, conditions,
filters, projections) is still moto's own code. Index queries and scans are left alone: they do read the whole
table.
"""

from __future__ import annotations

import inspect
import threading
from typing import Any

_partition = threading.local()


def install() -> None:
    """Patch moto's `Table` once per process (idempotent)."""
    from moto.dynamodb.models.table import Table

    if getattr(Table.query, "_partition_only", False):
        return
    query, all_items = Table.query, Table.all_items
    signature = inspect.signature(query)

    def partition_query(self: Any, *args: Any, **kwargs: Any) -> Any:
        arguments = signature.bind(self, *args, **kwargs).arguments
        hash_key = arguments.get("hash_key")
        if arguments.get("index_name") or hash_key is None:
            return query(self, *args, **kwargs)
        _partition.key = (self, hash_key)
        try:
            return query(self, *args, **kwargs)
        finally:
            _partition.key = None

    def partition_items(self: Any) -> list[Any]:
        key = getattr(_partition, "key", None)
        if key is None or key[0] is not self:
            return all_items(self)
        _partition.key = None  # the query's one read of candidates; anything later sees the whole table
        stored = self.items.get(key[1])
        if stored is None:
            return []
        return list(stored.values()) if self.range_key_attr else [stored]

    partition_query._partition_only = True  # type: ignore[attr-defined]
    Table.query = partition_query  # type: ignore[method-assign]
    Table.all_items = partition_items  # type: ignore[method-assign]
