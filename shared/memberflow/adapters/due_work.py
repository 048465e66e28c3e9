"""The due-work index: a sparse DynamoDB index of (queue, due time) over the members table.

An item is in the index only while it carries the two index attributes, so a run queries what is due in its
queue and never scans the community. Each queue says which item holds its work: the drip's state lives on the
member profile (so a claim can be refused atomically once the member is active), an opt-in wait on an item of its
own. A new queue (win-back, ...) is one more `QueueSpec`.

The attribute names (`drip_queue`, `drip_due_at`) and the index name (`drip-due`) predate the other queues; they
are kept so deployed tables need no migration.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from memberflow.adapters.dynamo import query_all, table, update_if
from memberflow.ports import DueWork

INDEX_NAME = "drip-due"
QUEUE_ATTRIBUTE = "drip_queue"
DUE_ATTRIBUTE = "drip_due_at"


@dataclass(frozen=True)
class QueueSpec:
    index_value: str
    """The value of the queue attribute (historical values are kept: the drip's is "pending")."""
    sort_key: str
    """The item that holds the work, under the member's partition."""
    stop_attribute: str | None = None
    """While the item carries this attribute, the work is not claimed (the drip: `activated_at`)."""
    enter_once_counter: str | None = None
    """Scheduling only enters members whose counter is still 0 (the drip is entered once)."""


QUEUES: dict[str, QueueSpec] = {
    "drip": QueueSpec("pending", "PROFILE", stop_attribute="activated_at", enter_once_counter="drip_steps_sent"),
    "opt-in": QueueSpec("opt-in", "OPTIN"),
}


def member_pk(member_id: str) -> str:
    return f"MEMBER#{member_id}"


class DynamoDueWorkIndex:
    def __init__(self, table_name: str, queues: Mapping[str, QueueSpec] | None = None) -> None:
        self._table_name = table_name
        self._queues = dict(queues or QUEUES)

    @property
    def _table(self) -> Any:
        return table(self._table_name)

    def _spec(self, queue: str) -> QueueSpec:
        return self._queues[queue]

    def _key(self, queue: str, member_id: str) -> dict[str, str]:
        return {"pk": member_pk(member_id), "sk": self._spec(queue).sort_key}

    def due(self, queue: str, now: datetime) -> Iterator[DueWork]:
        spec = self._spec(queue)
        for item in query_all(
            self._table,
            IndexName=INDEX_NAME,
            KeyConditionExpression=f"{QUEUE_ATTRIBUTE} = :queue AND {DUE_ATTRIBUTE} <= :now",
            ExpressionAttributeValues={":queue": spec.index_value, ":now": now.isoformat()},
            Limit=100,
        ):
            yield DueWork(queue, item["member_id"], datetime.fromisoformat(item[DUE_ATTRIBUTE]), item)

    def schedule(
        self,
        queue: str,
        member_id: str,
        due_at: datetime,
        details: Mapping[str, Any] | None = None,
        *,
        keep_existing: bool = False,
    ) -> bool:
        spec = self._spec(queue)
        fields = {QUEUE_ATTRIBUTE: spec.index_value, DUE_ATTRIBUTE: due_at.isoformat(), **(details or {})}
        if spec.sort_key != "PROFILE":
            item = {**self._key(queue, member_id), "member_id": member_id, **fields}
            if not keep_existing:
                self._table.put_item(Item=item)
                return True
            from memberflow.adapters.aws import ConditionNotMet

            try:
                self._table.put_item(Item=item, ConditionExpression="attribute_not_exists(pk)")
            except ConditionNotMet:
                return False
            return True
        names = {f"#f{i}": name for i, name in enumerate(fields)}
        values: dict[str, Any] = {f":f{i}": value for i, value in enumerate(fields.values())}
        condition = ["attribute_exists(pk)", f"attribute_not_exists({QUEUE_ATTRIBUTE})"]
        if spec.stop_attribute:
            condition.append(f"attribute_not_exists({spec.stop_attribute})")
        if spec.enter_once_counter:
            condition.append(f"{spec.enter_once_counter} = :zero")
            values[":zero"] = 0
        answer = update_if(
            self._table,
            Key=self._key(queue, member_id),
            UpdateExpression="SET " + ", ".join(f"#f{i} = :f{i}" for i in range(len(fields))),
            ConditionExpression=" AND ".join(condition),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
        return answer is not None

    def claim(self, work: DueWork, *, next_due: datetime | None, progress: Mapping[str, int] | None = None) -> bool:
        spec = self._spec(work.queue)
        sets, condition, values = _moves(progress, forward=True)
        values.update({":queue": spec.index_value, ":seen": work.due_at.isoformat()})
        condition += [f"{QUEUE_ATTRIBUTE} = :queue", f"{DUE_ATTRIBUTE} = :seen"]
        if next_due is None:
            expression = (f"SET {', '.join(sets)} " if sets else "") + f"REMOVE {QUEUE_ATTRIBUTE}, {DUE_ATTRIBUTE}"
        else:
            sets.append(f"{DUE_ATTRIBUTE} = :next")
            values[":next"] = next_due.isoformat()
            expression = "SET " + ", ".join(sets)
        return self._update(work, spec, expression, condition, values)

    def release(self, work: DueWork, *, progress: Mapping[str, int] | None = None) -> bool:
        spec = self._spec(work.queue)
        sets, condition, values = _moves(progress, forward=False)
        sets += [f"{QUEUE_ATTRIBUTE} = :queue", f"{DUE_ATTRIBUTE} = :due"]
        values.update({":queue": spec.index_value, ":due": work.due_at.isoformat()})
        condition.append("attribute_exists(pk)")
        return self._update(work, spec, "SET " + ", ".join(sets), condition, values)

    def _update(
        self, work: DueWork, spec: QueueSpec, expression: str, condition: list[str], values: dict[str, Any]
    ) -> bool:
        """The conditional write of a claim or a release; never while the member is stopped (e.g. active)."""
        if spec.stop_attribute:
            condition.append(f"attribute_not_exists({spec.stop_attribute})")
        answer = update_if(
            self._table,
            Key=self._key(work.queue, work.member_id),
            UpdateExpression=expression,
            ConditionExpression=" AND ".join(condition),
            ExpressionAttributeValues=values,
        )
        return answer is not None

    def remove(self, queue: str, member_id: str) -> None:
        if self._spec(queue).sort_key != "PROFILE":
            self._table.delete_item(Key=self._key(queue, member_id))
            return
        # Conditional: on a member erased meanwhile, an update would create an empty profile under their key.
        update_if(
            self._table,
            Key=self._key(queue, member_id),
            UpdateExpression=f"REMOVE {QUEUE_ATTRIBUTE}, {DUE_ATTRIBUTE}",
            ConditionExpression="attribute_exists(pk)",
        )


def _moves(progress: Mapping[str, int] | None, *, forward: bool) -> tuple[list[str], list[str], dict[str, Any]]:
    """Counters that move with a claim (from `before` to `before + 1`) or back with a release, guarded on the value
    they must have now: SET clauses, conditions and values."""
    sets: list[str] = []
    condition: list[str] = []
    values: dict[str, Any] = {}
    for i, (counter, before) in enumerate((progress or {}).items()):
        new, now = (f":after{i}", f":before{i}") if forward else (f":before{i}", f":after{i}")
        sets.append(f"{counter} = {new}")
        condition.append(f"{counter} = {now}")
        values[f":before{i}"], values[f":after{i}"] = before, before + 1
    return sets, condition, values
