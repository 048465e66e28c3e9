"""Thread -> ticket links in DynamoDB (`escalation.ports.TicketLinks`), in the escalation's own table:

- `THREAD#<thread>` / `LINK`: the claim (written before Zendesk is called), then the ticket, its status, the
  comments added, the statuses the member was told, first-response and resolution times;
- `TICKET#<id>` / `LINK`: which thread a ticket belongs to (Zendesk's webhook names the ticket);
- `MEMBER#<subject>` / `THREAD#<thread>`: a member's threads, so an erasure finds them;
- `ALERTED#<escalation key>` / `LINK`: the moderators were alerted of this safety report (expires after a week).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from memberflow.adapters.dynamo import delete_partition, query_all, table, update_if
from memberflow.escalation.ports import TicketLink

LINK = "LINK"
ALERT_SECONDS = 7 * 24 * 3600


def thread_pk(thread: str) -> str:
    return f"THREAD#{thread}"


def ticket_pk(ticket_id: int) -> str:
    return f"TICKET#{ticket_id}"


def alert_pk(key: str) -> str:
    return f"ALERTED#{key}"


def member_pk(member: str) -> str:
    return f"MEMBER#{member}"


class DynamoTicketLinks:
    def __init__(self, table_name: str) -> None:
        self._table_name = table_name

    @property
    def _table(self) -> Any:
        return table(self._table_name)

    def get(self, thread: str) -> TicketLink | None:
        item = self._table.get_item(Key={"pk": thread_pk(thread), "sk": LINK}, ConsistentRead=True).get("Item")
        return _link(item) if item else None

    def _thread_of(self, ticket_id: int) -> str | None:
        item = self._table.get_item(Key={"pk": ticket_pk(ticket_id), "sk": LINK}, ConsistentRead=True).get("Item")
        return str(item["thread"]) if item else None

    def for_ticket(self, ticket_id: int) -> TicketLink | None:
        thread = self._thread_of(ticket_id)
        link = self.get(thread) if thread else None
        # A thread's earlier ticket (before its follow-up) is not the thread's ticket any more.
        return link if link is not None and link.ticket_id == ticket_id else None

    def claim(self, link: TicketLink, *, replacing_ticket: int | None = None) -> bool:
        from memberflow.adapters.aws import ConditionNotMet

        item: dict[str, Any] = {
            "pk": thread_pk(link.thread),
            "sk": LINK,
            "thread": link.thread,
            "claim_key": link.claim_key,
            "created_at": link.created_at.isoformat(),
            "member": link.member,
            "details": dict(link.details),
            "comments": [],
        }
        if link.previous_ticket is not None:
            item["previous_ticket"] = link.previous_ticket
        if replacing_ticket is None:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            condition = {
                "ConditionExpression": "ticket_id = :previous",
                "ExpressionAttributeValues": {":previous": replacing_ticket},
            }
        try:
            self._table.put_item(Item=item, **condition)
        except ConditionNotMet:
            return False
        self._table.put_item(Item={"pk": member_pk(link.member), "sk": thread_pk(link.thread)})
        return True

    def _set(self, thread: str, claim_key: str, values: Mapping[str, Any]) -> None:
        names = {f"#a{i}": name for i, name in enumerate(values)}
        update_if(
            self._table,
            Key={"pk": thread_pk(thread), "sk": LINK},
            UpdateExpression="SET " + ", ".join(f"#a{i} = :v{i}" for i in range(len(values))),
            ConditionExpression="claim_key = :claim",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={":claim": claim_key, **{f":v{i}": v for i, v in enumerate(values.values())}},
        )

    def note_job(self, thread: str, claim_key: str, job_id: str, index: int) -> None:
        self._set(thread, claim_key, {"job_id": job_id, "job_index": index})

    def complete(self, thread: str, claim_key: str, ticket_id: int, status: str) -> None:
        # The ticket's own item first: a status change arriving at once finds its thread.
        self._table.put_item(Item={"pk": ticket_pk(ticket_id), "sk": LINK, "thread": thread})
        self._set(thread, claim_key, {"ticket_id": ticket_id, "status": status})

    def note_comment(self, thread: str, key: str) -> None:
        self._table.update_item(
            Key={"pk": thread_pk(thread), "sk": LINK},
            UpdateExpression="SET comments = list_append(if_not_exists(comments, :none), :key)",
            ExpressionAttributeValues={":none": [], ":key": [key]},
        )

    def record_status(self, ticket_id: int, status: str, at: datetime, public_reply: bool) -> TicketLink | None:
        link = self.for_ticket(ticket_id)
        if link is None:
            return None
        seconds = max(0, int((at - link.created_at).total_seconds()))
        parts, values = ["#status = :status", "status_at = :at"], {":status": status, ":at": at.isoformat()}
        if public_reply or status in ("pending", "solved", "closed"):
            parts.append("first_response_seconds = if_not_exists(first_response_seconds, :seconds)")
            values[":seconds"] = seconds  # type: ignore[assignment]
        if status in ("solved", "closed"):
            parts.append("resolution_seconds = if_not_exists(resolution_seconds, :seconds)")
            values[":seconds"] = seconds  # type: ignore[assignment]
        answer = self._table.update_item(
            Key={"pk": thread_pk(link.thread), "sk": LINK},
            UpdateExpression="SET " + ", ".join(parts),
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=values,
            ReturnValues="ALL_NEW",
        )
        return _link(answer["Attributes"])

    def mark_notified(self, ticket_id: int, status: str) -> bool:
        thread = self._thread_of(ticket_id)
        if thread is None:
            return False
        answer = update_if(
            self._table,
            Key={"pk": thread_pk(thread), "sk": LINK},
            UpdateExpression="ADD notified :status",
            ConditionExpression="attribute_exists(pk) AND NOT contains(notified, :one)",
            ExpressionAttributeValues={":status": {status}, ":one": status},
        )
        return answer is not None

    def unmark_notified(self, ticket_id: int, status: str) -> None:
        thread = self._thread_of(ticket_id)
        if thread is not None:
            self._table.update_item(
                Key={"pk": thread_pk(thread), "sk": LINK},
                UpdateExpression="DELETE notified :status",
                ExpressionAttributeValues={":status": {status}},
            )

    def was_alerted(self, key: str) -> bool:
        item = self._table.get_item(Key={"pk": alert_pk(key), "sk": LINK}, ConsistentRead=True).get("Item")
        return item is not None

    def mark_alerted(self, key: str) -> None:
        # Kept a week, as long as the consumer's idempotency records: a redelivery after that is a new escalation.
        expires = int(time.time()) + ALERT_SECONDS
        self._table.put_item(Item={"pk": alert_pk(key), "sk": LINK, "expires_at": expires})

    def requesters(self, member: str) -> list[TicketLink]:
        """The links of a member's threads (for an erasure)."""
        links = []
        for item in query_all(
            self._table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": member_pk(member)},
            ConsistentRead=True,
        ):
            link = self.get(str(item["sk"]).removeprefix("THREAD#"))
            if link is not None:
                links.append(link)
        return links

    def erase_member(self, member: str) -> int:
        links = self.requesters(member)
        for link in links:
            if link.ticket_id is not None:
                self._table.delete_item(Key={"pk": ticket_pk(link.ticket_id), "sk": LINK})
            if link.previous_ticket is not None:
                self._table.delete_item(Key={"pk": ticket_pk(link.previous_ticket), "sk": LINK})
            self._table.delete_item(Key={"pk": thread_pk(link.thread), "sk": LINK})
        delete_partition(self._table, member_pk(member))
        return len(links)


def _link(item: Mapping[str, Any]) -> TicketLink:
    def number(name: str) -> int | None:
        value = item.get(name)
        return None if value is None else int(value)

    return TicketLink(
        thread=str(item["thread"]),
        claim_key=str(item["claim_key"]),
        created_at=datetime.fromisoformat(str(item["created_at"])),
        member=str(item["member"]),
        ticket_id=number("ticket_id"),
        status=item.get("status"),
        job_id=item.get("job_id"),
        job_index=number("job_index"),
        previous_ticket=number("previous_ticket"),
        details=dict(item.get("details") or {}),
        comments=frozenset(item.get("comments") or ()),
        notified=frozenset(item.get("notified") or ()),
        first_response_seconds=number("first_response_seconds"),
        resolution_seconds=number("resolution_seconds"),
    )
