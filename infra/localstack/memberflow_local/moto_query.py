"""DynamoDB queries in moto read what DynamoDB reads, not a sorted copy of the whole table.

moto answers every query by first sorting every item of the table by its key, so each query costs in proportion to
the whole table: once the demo has seeded a few thousand members, reading one member's consent ledger took tens of
milliseconds, and a page of the win-back's inactivity index a quarter of a second. `install()` changes only which
candidates moto's query starts from:

- a query on the table's own key starts from the queried partition's items;
- an index query starts from every item, unsorted: moto sorts the items that match by the index's key and then the
  table's key, a total order, so the first sort changed nothing;
- anything else (a scan, whose pages follow the table's order) gets every item sorted by the table's key as moto
  sorts them, with each key compared as the string, number or bytes it holds rather than through moto's
  `DynamoType` (which converts both sides at every comparison: a million conversions for 16,000 items).

Everything after that (ordering, pagination, conditions, filters, projections) is still moto's own code.
"""

from __future__ import annotations

import inspect
import threading
from decimal import Decimal
from typing import Any

_partition = threading.local()
_EVERY_ITEM = object()
"""The candidates of an index query: every item of the table, in no particular order."""


def install() -> None:
    """Patch moto's `Table` once per process (idempotent)."""
    from moto.dynamodb.models.table import Table

    if getattr(Table.query, "_partition_only", False):
        return
    query = Table.query
    signature = inspect.signature(query)

    def partition_query(self: Any, *args: Any, **kwargs: Any) -> Any:
        arguments = signature.bind(self, *args, **kwargs).arguments
        hash_key = arguments.get("hash_key")
        if arguments.get("index_name"):
            hash_key = _EVERY_ITEM
        elif hash_key is None:
            return query(self, *args, **kwargs)
        _partition.key = (self, hash_key)
        try:
            return query(self, *args, **kwargs)
        finally:
            _partition.key = None

    def partition_items(self: Any) -> list[Any]:
        key = getattr(_partition, "key", None)
        if key is None or key[0] is not self:
            return _in_key_order(self)
        _partition.key = None  # the query's one read of candidates; anything later sees the whole table
        if key[1] is _EVERY_ITEM:
            return _every_item(self)
        stored = self.items.get(key[1])
        if stored is None:
            return []
        return list(stored.values()) if self.range_key_attr else [stored]

    partition_query._partition_only = True  # type: ignore[attr-defined]
    Table.query = partition_query  # type: ignore[method-assign]
    Table.all_items = partition_items  # type: ignore[method-assign]


def _every_item(table: Any) -> list[Any]:
    """Every item of `table`, in no particular order (moto keeps a partition's items under its hash key)."""
    if not table.range_key_attr:
        return list(table.items.values())
    return [item for stored in table.items.values() for item in stored.values()]


def _in_key_order(table: Any) -> list[Any]:
    """Every item of `table` in moto's order: by hash key, then range key, each compared by its value (a key
    attribute is a string, a number or bytes, one type per attribute)."""
    if not table.range_key_attr:
        return sorted(_every_item(table), key=lambda item: _comparable(item.hash_key))
    return sorted(_every_item(table), key=lambda item: (_comparable(item.hash_key), _comparable(item.range_key)))


def _comparable(key: Any) -> Any:
    """What moto's `DynamoType` compares for a key attribute: a number as a Decimal, anything else as stored."""
    return Decimal(key.value) if key.type == "N" else key.value
