"""The consent ledger in the members table: `MEMBER#<member id>` / `CONSENT#<hash of event id and change>`.

Entries live in the member's partition, so an erasure (which deletes the whole partition) takes them with the
member, and an export reads them with one query. Each is written with a condition that it does not exist: an entry is
never overwritten, and a redelivered event appends nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from memberflow.adapters.due_work import member_pk
from memberflow.adapters.dynamo import query_all, table
from memberflow.ledger import Change, ConsentEntry, Wording

SORT_PREFIX = "CONSENT#"


def item_from_entry(entry: ConsentEntry) -> dict[str, Any]:
    """The entry as the members table stores it."""
    item: dict[str, Any] = {
        "pk": member_pk(entry.member_id),
        "sk": SORT_PREFIX + entry.key,
        "member_id": entry.member_id,
        "change": entry.change.value,
        "platform": entry.platform,
        "source_event_type": entry.source_event_type,
        "source_event_id": entry.source_event_id,
        "at": entry.at.astimezone(UTC).isoformat(),
        "status": entry.status,
        "detail": entry.detail,
    }
    if entry.wording is not None:
        item["wording"] = entry.wording.as_json()
    if entry.extra:
        item["extra"] = dict(entry.extra)
    return item


class DynamoConsentLedger:
    def __init__(self, table_name: str) -> None:
        self._table_name = table_name

    @property
    def _table(self) -> Any:
        return table(self._table_name)

    def append(self, entry: ConsentEntry) -> bool:
        from memberflow.adapters.aws import ConditionNotMet

        item = item_from_entry(entry)
        try:
            self._table.put_item(Item=item, ConditionExpression="attribute_not_exists(pk)")
        except ConditionNotMet:
            return False
        return True

    def entries(self, member_id: str) -> list[ConsentEntry]:
        items = query_all(
            self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":pk": member_pk(member_id), ":prefix": SORT_PREFIX},
            ConsistentRead=True,
        )
        return sorted((entry_from_item(item) for item in items), key=lambda entry: entry.at)


def entry_from_item(item: dict[str, Any]) -> ConsentEntry:
    wording = item.get("wording")
    return ConsentEntry(
        member_id=item["member_id"],
        change=Change(item["change"]),
        platform=item.get("platform", ""),
        source_event_type=item.get("source_event_type", ""),
        source_event_id=item.get("source_event_id", ""),
        at=datetime.fromisoformat(item["at"]),
        status=item.get("status", ""),
        detail=item.get("detail", ""),
        wording=Wording(str(wording["text"]), str(wording["version"])) if wording else None,
        extra={str(k): str(v) for k, v in (item.get("extra") or {}).items()},
    )
