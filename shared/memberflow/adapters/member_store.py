"""Members in DynamoDB.

One table, two kinds of item:
- `MEMBER#<member id>` / `PROFILE`: the member (member id = hash of the email, or the platform identity when the
  platform gives no email). Members with a pending drip step carry `drip_queue` and `drip_due_at`, which puts them
  in the sparse `drip-due` index: the scheduled drip reads only the members that are due, never the whole table.
- `IDENTITY#<platform:workspace:user>` / `LINK`: which member a platform user is, so activity events (which carry
  only the platform's user id) find their member.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

DRIP_INDEX = "drip-due"
DRIP_PENDING = "pending"
PROFILE = "PROFILE"
LINK = "LINK"


@dataclass
class MemberRecord:
    member_id: str
    joined_at: datetime
    email: str | None = None
    name: str | None = None
    platforms: list[str] = field(default_factory=list)
    identities: list[str] = field(default_factory=list)
    marketing_consent: bool = False
    mailchimp_status: str | None = None
    journey_started_at: datetime | None = None
    activated_at: datetime | None = None
    last_active_at: datetime | None = None
    drip_steps_sent: int = 0
    drip_due_at: datetime | None = None
    last_correlation_id: str = ""

    def to_item(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "pk": member_pk(self.member_id),
            "sk": PROFILE,
            "member_id": self.member_id,
            "joined_at": self.joined_at.isoformat(),
            "platforms": list(self.platforms),
            "identities": list(self.identities),
            "marketing_consent": self.marketing_consent,
            "drip_steps_sent": self.drip_steps_sent,
            "last_correlation_id": self.last_correlation_id,
        }
        optional = {
            "email": self.email,
            "name": self.name,
            "mailchimp_status": self.mailchimp_status,
            "journey_started_at": _iso(self.journey_started_at),
            "activated_at": _iso(self.activated_at),
            "last_active_at": _iso(self.last_active_at),
            "drip_due_at": _iso(self.drip_due_at),
        }
        item.update({key: value for key, value in optional.items() if value is not None})
        if self.drip_due_at is not None:
            item["drip_queue"] = DRIP_PENDING
        return item

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> MemberRecord:
        return cls(
            member_id=item["member_id"],
            joined_at=datetime.fromisoformat(item["joined_at"]),
            email=item.get("email"),
            name=item.get("name"),
            platforms=list(item.get("platforms", [])),
            identities=list(item.get("identities", [])),
            marketing_consent=bool(item.get("marketing_consent", False)),
            mailchimp_status=item.get("mailchimp_status"),
            journey_started_at=_dt(item.get("journey_started_at")),
            activated_at=_dt(item.get("activated_at")),
            last_active_at=_dt(item.get("last_active_at")),
            drip_steps_sent=int(item.get("drip_steps_sent", 0)),
            drip_due_at=_dt(item.get("drip_due_at")),
            last_correlation_id=item.get("last_correlation_id", ""),
        )


@dataclass(frozen=True)
class IdentityLink:
    identity_key: str
    member_id: str | None
    last_active_at: datetime | None


def member_pk(member_id: str) -> str:
    return f"MEMBER#{member_id}"


def identity_pk(identity_key: str) -> str:
    return f"IDENTITY#{identity_key}"


class MemberStore:
    def __init__(self, table_name: str) -> None:
        self._table_name = table_name

    @property
    def _table(self) -> Any:
        from memberflow.adapters.aws import table

        return table(self._table_name)

    def get(self, member_id: str) -> MemberRecord | None:
        item = self._table.get_item(Key={"pk": member_pk(member_id), "sk": PROFILE}, ConsistentRead=True).get("Item")
        return MemberRecord.from_item(item) if item else None

    def save(self, member: MemberRecord) -> None:
        self._table.put_item(Item=member.to_item())

    def link(self, identity_key: str) -> IdentityLink | None:
        item = self._table.get_item(Key={"pk": identity_pk(identity_key), "sk": LINK}, ConsistentRead=True).get("Item")
        if not item:
            return None
        return IdentityLink(identity_key, item.get("member_id"), _dt(item.get("last_active_at")))

    def save_link(self, identity_key: str, member_id: str) -> None:
        self._table.update_item(
            Key={"pk": identity_pk(identity_key), "sk": LINK},
            UpdateExpression="SET member_id = :m",
            ExpressionAttributeValues={":m": member_id},
        )

    def note_unlinked_activity(self, identity_key: str, at: datetime) -> None:
        """Activity from someone we have not seen join: remembered, so their later join counts them as active."""
        self._table.update_item(
            Key={"pk": identity_pk(identity_key), "sk": LINK},
            UpdateExpression="SET last_active_at = :t",
            ExpressionAttributeValues={":t": at.isoformat()},
        )

    def mark_journey_started(self, member_id: str, at: datetime) -> bool:
        """True only for the first caller: a second delivery or a second platform never starts a second journey."""
        from botocore.exceptions import ClientError

        try:
            self._table.update_item(
                Key={"pk": member_pk(member_id), "sk": PROFILE},
                UpdateExpression="SET journey_started_at = :t",
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(journey_started_at)",
                ExpressionAttributeValues={":t": at.isoformat()},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def clear_journey_started(self, member_id: str) -> None:
        """Undo the claim when the trigger itself failed, so a retry can start the journey."""
        self._table.update_item(
            Key={"pk": member_pk(member_id), "sk": PROFILE}, UpdateExpression="REMOVE journey_started_at"
        )

    def mark_active(self, member_id: str, at: datetime) -> bool:
        """Record activity and take the member out of the drip. True when this is their first activity."""
        answer = self._table.update_item(
            Key={"pk": member_pk(member_id), "sk": PROFILE},
            UpdateExpression=(
                "SET last_active_at = :t, activated_at = if_not_exists(activated_at, :t) REMOVE drip_queue, drip_due_at"
            ),
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":t": at.isoformat()},
            ReturnValues="UPDATED_OLD",
        )
        return "activated_at" not in answer.get("Attributes", {})

    def due_for_drip(self, now: datetime, page_size: int = 100) -> Iterator[MemberRecord]:
        from boto3.dynamodb.conditions import Key

        kwargs: dict[str, Any] = {
            "IndexName": DRIP_INDEX,
            "KeyConditionExpression": Key("drip_queue").eq(DRIP_PENDING) & Key("drip_due_at").lte(now.isoformat()),
            "Limit": page_size,
        }
        while True:
            page = self._table.query(**kwargs)
            for item in page["Items"]:
                yield MemberRecord.from_item(item)
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def advance_drip(self, member_id: str, steps_sent_before: int, next_due: datetime | None) -> bool:
        """Count one more drip step, guarded on the count we read, so overlapping runs never send a step twice."""
        from botocore.exceptions import ClientError

        values: dict[str, Any] = {":before": steps_sent_before, ":after": steps_sent_before + 1}
        if next_due is None:
            expression = "SET drip_steps_sent = :after REMOVE drip_queue, drip_due_at"
        else:
            expression = "SET drip_steps_sent = :after, drip_due_at = :due"
            values[":due"] = next_due.isoformat()
        try:
            self._table.update_item(
                Key={"pk": member_pk(member_id), "sk": PROFILE},
                UpdateExpression=expression,
                ConditionExpression="drip_steps_sent = :before AND attribute_exists(drip_queue)",
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def stop_drip(self, member_id: str) -> None:
        self._table.update_item(
            Key={"pk": member_pk(member_id), "sk": PROFILE}, UpdateExpression="REMOVE drip_queue, drip_due_at"
        )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
