"""Members in DynamoDB.

One table, two kinds of item:
- `MEMBER#<member id>` / `PROFILE`: the member (member id = hash of the email, or the platform identity when the
  platform gives no email). Members with a pending drip step carry `drip_queue` and `drip_due_at`, which puts them
  in the sparse `drip-due` index: the scheduled drip reads only the members that are due, never the whole table.
- `IDENTITY#<platform:workspace:user>` / `LINK`: which member a platform user is, so activity events (which carry
  only the platform's user id) find their member.
- `MEMBER#<member id>` / `OPTIN`: a member who consented but must confirm double opt-in first. It sits in the same
  sparse index (queue `opt-in`), so the scheduled run re-checks only those members, when each is due.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

DRIP_INDEX = "drip-due"
DRIP_PENDING = "pending"
OPT_IN_PENDING = "opt-in"
PROFILE = "PROFILE"
LINK = "LINK"
OPT_IN = "OPTIN"


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
    opted_out_before: bool = False
    """Mailchimp once answered unsubscribed or cleaned for this member: never ask for a direct subscribe again."""
    journey_started_at: datetime | None = None
    activated_at: datetime | None = None
    last_active_at: datetime | None = None
    drip_steps_sent: int = 0
    drip_due_at: datetime | None = None
    drip_started_at: datetime | None = None
    """When the member entered the drip: steps are due that many days after it."""
    last_correlation_id: str = ""

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> MemberRecord:
        return cls(
            member_id=item["member_id"],
            joined_at=datetime.fromisoformat(item["joined_at"]),
            email=item.get("email"),
            name=item.get("name"),
            platforms=sorted(item.get("platforms", [])),
            identities=sorted(item.get("identities", [])),
            marketing_consent=bool(item.get("marketing_consent", False)),
            mailchimp_status=item.get("mailchimp_status"),
            opted_out_before=bool(item.get("opted_out_before", False)),
            journey_started_at=_dt(item.get("journey_started_at")),
            activated_at=_dt(item.get("activated_at")),
            last_active_at=_dt(item.get("last_active_at")),
            drip_steps_sent=int(item.get("drip_steps_sent", 0)),
            drip_due_at=_dt(item.get("drip_due_at")),
            drip_started_at=_dt(item.get("drip_started_at")),
            last_correlation_id=item.get("last_correlation_id", ""),
        )


@dataclass(frozen=True)
class MemberJoin:
    """What one join tells us about a member."""

    member_id: str
    identity_key: str
    platform: str
    joined_at: datetime
    correlation_id: str
    email: str | None = None
    name: str | None = None
    marketing_consent: bool = False
    active_before_join: datetime | None = None
    """Activity seen from this platform identity before its join arrived (events are not ordered)."""


@dataclass(frozen=True)
class OptInWait:
    member_id: str
    since: datetime


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

    def record_join(self, join: MemberJoin) -> MemberRecord:
        """Create or update the member in one atomic write, so concurrent joins on two platforms lose nothing:
        platforms and identities are sets, consent once given stays given, the first join date is kept."""
        expressions = [
            "member_id = :id",
            "joined_at = if_not_exists(joined_at, :joined)",
            "drip_steps_sent = if_not_exists(drip_steps_sent, :zero)",
            "last_correlation_id = :correlation",
        ]
        values: dict[str, Any] = {
            ":id": join.member_id,
            ":joined": join.joined_at.isoformat(),
            ":zero": 0,
            ":correlation": join.correlation_id,
            ":platform": {join.platform},
            ":identity": {join.identity_key},
        }
        if join.email:
            expressions.append("email = :email")
            values[":email"] = join.email
        if join.name:
            expressions.append("#name = if_not_exists(#name, :name)")
            values[":name"] = join.name
        if join.marketing_consent:
            expressions.append("marketing_consent = :true")
            values[":true"] = True
        else:
            expressions.append("marketing_consent = if_not_exists(marketing_consent, :false)")
            values[":false"] = False
        if join.active_before_join:
            expressions.append("activated_at = if_not_exists(activated_at, :active)")
            expressions.append("last_active_at = if_not_exists(last_active_at, :active)")
            values[":active"] = join.active_before_join.isoformat()
        request: dict[str, Any] = {
            "Key": {"pk": member_pk(join.member_id), "sk": PROFILE},
            "UpdateExpression": "SET " + ", ".join(expressions) + " ADD platforms :platform, identities :identity",
            "ExpressionAttributeValues": values,
            "ReturnValues": "ALL_NEW",
        }
        if join.name:
            request["ExpressionAttributeNames"] = {"#name": "name"}  # `name` is a DynamoDB reserved word
        return MemberRecord.from_item(self._table.update_item(**request)["Attributes"])

    def set_mailchimp_status(self, member_id: str, status: str, *, opted_out: bool = False) -> None:
        expression = "SET mailchimp_status = :s" + (", opted_out_before = :true" if opted_out else "")
        values: dict[str, Any] = {":s": status} | ({":true": True} if opted_out else {})
        self._table.update_item(
            Key={"pk": member_pk(member_id), "sk": PROFILE},
            UpdateExpression=expression,
            ExpressionAttributeValues=values,
        )

    def enter_drip(self, member_id: str, started_at: datetime, first_due: datetime) -> bool:
        """Queue the first drip step, unless the member is already active or in (or past) the drip."""
        return self._update_if(
            Key={"pk": member_pk(member_id), "sk": PROFILE},
            UpdateExpression="SET drip_queue = :pending, drip_due_at = :due, drip_started_at = :started",
            ConditionExpression=(
                "attribute_exists(pk) AND attribute_not_exists(activated_at) "
                "AND attribute_not_exists(drip_queue) AND drip_steps_sent = :zero"
            ),
            ExpressionAttributeValues={
                ":pending": DRIP_PENDING,
                ":due": first_due.isoformat(),
                ":started": started_at.isoformat(),
                ":zero": 0,
            },
        )

    def await_opt_in(self, member_id: str, since: datetime, check_at: datetime) -> None:
        self._table.put_item(
            Item={
                "pk": member_pk(member_id),
                "sk": OPT_IN,
                "member_id": member_id,
                "awaiting_since": since.isoformat(),
                "drip_queue": OPT_IN_PENDING,
                "drip_due_at": check_at.isoformat(),
            }
        )

    def opt_ins_due(self, now: datetime) -> Iterator[OptInWait]:
        for item in self._due(OPT_IN_PENDING, now):
            yield OptInWait(item["member_id"], datetime.fromisoformat(item["awaiting_since"]))

    def recheck_opt_in_at(self, member_id: str, check_at: datetime) -> None:
        self._table.update_item(
            Key={"pk": member_pk(member_id), "sk": OPT_IN},
            UpdateExpression="SET drip_due_at = :due",
            ExpressionAttributeValues={":due": check_at.isoformat()},
        )

    def forget_opt_in(self, member_id: str) -> None:
        self._table.delete_item(Key={"pk": member_pk(member_id), "sk": OPT_IN})

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

    def claim_journey(self, member_id: str, now: datetime, lease: timedelta) -> bool:
        """Claim the right to start the welcome journey. The claim is a lease, so a crash between claim and
        trigger delays the journey instead of losing it; once started, nobody can claim it again."""
        return self._update_if(
            Key={"pk": member_pk(member_id), "sk": PROFILE},
            UpdateExpression="SET journey_claimed_until = :until",
            ConditionExpression=(
                "attribute_exists(pk) AND attribute_not_exists(journey_started_at) "
                "AND (attribute_not_exists(journey_claimed_until) OR journey_claimed_until < :now)"
            ),
            ExpressionAttributeValues={":until": (now + lease).isoformat(), ":now": now.isoformat()},
        )

    def confirm_journey_started(self, member_id: str, at: datetime) -> None:
        self._table.update_item(
            Key={"pk": member_pk(member_id), "sk": PROFILE},
            UpdateExpression="SET journey_started_at = :t REMOVE journey_claimed_until",
            ExpressionAttributeValues={":t": at.isoformat()},
        )

    def release_journey_claim(self, member_id: str) -> None:
        """The trigger failed before Mailchimp accepted it: let the retry claim it again at once."""
        self._table.update_item(
            Key={"pk": member_pk(member_id), "sk": PROFILE}, UpdateExpression="REMOVE journey_claimed_until"
        )

    def mark_active(self, member_id: str, at: datetime) -> bool:
        """Record activity and take the member out of the drip. True when this is their first activity.
        Events are not ordered: an activity older than the one recorded changes nothing."""
        answer = self._conditional_update(
            Key={"pk": member_pk(member_id), "sk": PROFILE},
            UpdateExpression=(
                "SET last_active_at = :t, activated_at = if_not_exists(activated_at, :t) REMOVE drip_queue, drip_due_at"
            ),
            ConditionExpression=(
                "attribute_exists(pk) AND (attribute_not_exists(last_active_at) OR last_active_at < :t)"
            ),
            ExpressionAttributeValues={":t": at.isoformat()},
            ReturnValues="UPDATED_OLD",
        )
        if answer is None:
            return False  # unknown member, or already active more recently
        return "activated_at" not in answer.get("Attributes", {})

    def due_for_drip(self, now: datetime) -> Iterator[MemberRecord]:
        for item in self._due(DRIP_PENDING, now):
            yield MemberRecord.from_item(item)

    def _due(self, queue: str, now: datetime, page_size: int = 100) -> Iterator[dict[str, Any]]:
        from boto3.dynamodb.conditions import Key

        kwargs: dict[str, Any] = {
            "IndexName": DRIP_INDEX,
            "KeyConditionExpression": Key("drip_queue").eq(queue) & Key("drip_due_at").lte(now.isoformat()),
            "Limit": page_size,
        }
        while True:
            page = self._table.query(**kwargs)
            yield from page["Items"]
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def claim_drip_step(self, member_id: str, steps_sent_before: int, next_due: datetime | None) -> bool:
        """Count the next drip step as sent before sending it, guarded on the count we read and on the member
        still being inactive: overlapping runs, or activity arriving meanwhile, never get a step sent twice or
        to an active member."""
        values: dict[str, Any] = {":before": steps_sent_before, ":after": steps_sent_before + 1}
        if next_due is None:
            expression = "SET drip_steps_sent = :after REMOVE drip_queue, drip_due_at"
        else:
            expression = "SET drip_steps_sent = :after, drip_due_at = :due"
            values[":due"] = next_due.isoformat()
        return self._update_if(
            Key={"pk": member_pk(member_id), "sk": PROFILE},
            UpdateExpression=expression,
            ConditionExpression=(
                "drip_steps_sent = :before AND attribute_exists(drip_queue) AND attribute_not_exists(activated_at)"
            ),
            ExpressionAttributeValues=values,
        )

    def unclaim_drip_step(self, member_id: str, steps_sent_before: int, due: datetime) -> bool:
        """Undo a claim whose step could not be sent, so the next run sends it (unless the member is active)."""
        return self._update_if(
            Key={"pk": member_pk(member_id), "sk": PROFILE},
            UpdateExpression="SET drip_steps_sent = :before, drip_queue = :pending, drip_due_at = :due",
            ConditionExpression="drip_steps_sent = :after AND attribute_not_exists(activated_at)",
            ExpressionAttributeValues={
                ":before": steps_sent_before,
                ":after": steps_sent_before + 1,
                ":pending": DRIP_PENDING,
                ":due": due.isoformat(),
            },
        )

    def _update_if(self, **request: Any) -> bool:
        """An update with a ConditionExpression: False when the condition did not hold."""
        return self._conditional_update(**request) is not None

    def _conditional_update(self, **request: Any) -> dict[str, Any] | None:
        """An update with a ConditionExpression: DynamoDB's answer, or None when the condition did not hold."""
        from botocore.exceptions import ClientError

        try:
            return dict(self._table.update_item(**request))
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return None
            raise

    def stop_drip(self, member_id: str) -> None:
        self._table.update_item(
            Key={"pk": member_pk(member_id), "sk": PROFILE}, UpdateExpression="REMOVE drip_queue, drip_due_at"
        )


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
