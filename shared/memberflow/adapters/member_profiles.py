"""Member profiles and identity links in DynamoDB (the members table).

- `MEMBER#<member id>` / `PROFILE`: the member (member id = hash of the email, or the platform identity when the
  platform gives no email). The drip's due-work state lives on it too (see `due_work`).
- `IDENTITY#<platform:workspace:user>` / `LINK`: which member a platform user is, so activity events (which carry
  only the platform's user id) find their member; and their membership screening (the join held, the latest join
  that passed).
- `SUPPRESSED#<keyed hash>` / `SUPPRESSION`: someone who asked to be forgotten (see `suppressions`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from memberflow.adapters.active_days import ACTIVE_DAY_ATTRIBUTE, active_day_key
from memberflow.adapters.due_work import DUE_ATTRIBUTE, QUEUE_ATTRIBUTE, member_pk
from memberflow.adapters.dynamo import as_datetime, delete_partition, query_all, table, update_if
from memberflow.members import IdentityLink, MemberJoin, MemberRecord

PROFILE = "PROFILE"
LINK = "LINK"


def identity_pk(identity_key: str) -> str:
    return f"IDENTITY#{identity_key}"


def record_from_item(item: dict[str, Any]) -> MemberRecord:
    return MemberRecord(
        member_id=item["member_id"],
        joined_at=as_datetime(item.get("joined_at")),
        email=item.get("email"),
        name=item.get("name"),
        platforms=sorted(item.get("platforms", [])),
        identities=sorted(item.get("identities", [])),
        verified_identities=sorted(item.get("verified_identities", [])),
        marketing_consent=bool(item.get("marketing_consent", False)),
        mailchimp_status=item.get("mailchimp_status"),
        opted_out_before=bool(item.get("opted_out_before", False)),
        journey_started_at=as_datetime(item.get("journey_started_at")),
        activated_at=as_datetime(item.get("activated_at")),
        last_active_at=as_datetime(item.get("last_active_at")),
        drip_steps_sent=int(item.get("drip_steps_sent", 0)),
        drip_due_at=as_datetime(item.get(DUE_ATTRIBUTE)),
        drip_started_at=as_datetime(item.get("drip_started_at")),
        last_correlation_id=item.get("last_correlation_id", ""),
    )


class DynamoMemberRepository:
    def __init__(self, table_name: str) -> None:
        self._table_name = table_name

    @property
    def _table(self) -> Any:
        return table(self._table_name)

    def get(self, member_id: str) -> MemberRecord | None:
        item = self._table.get_item(Key={"pk": member_pk(member_id), "sk": PROFILE}, ConsistentRead=True).get("Item")
        return record_from_item(item) if item else None

    def get_many(self, member_ids: Sequence[str]) -> dict[str, MemberRecord]:
        keys = [{"pk": member_pk(member_id), "sk": PROFILE} for member_id in dict.fromkeys(member_ids)]
        records = (record_from_item(item) for item in self._table.batch_get(keys, consistent=True))
        return {record.member_id: record for record in records}

    def record_join(self, join: MemberJoin) -> MemberRecord:
        """Create or update the member in one atomic write, so concurrent joins on two platforms lose nothing:
        platforms and identities (and the identities whose platform proved the address) are sets, consent once
        given stays given, the first join date is kept."""
        expressions = [
            "member_id = :id",
            "drip_steps_sent = if_not_exists(drip_steps_sent, :zero)",
            "last_correlation_id = :correlation",
        ]
        values: dict[str, Any] = {
            ":id": join.member_id,
            ":zero": 0,
            ":correlation": join.correlation_id,
            ":platform": {join.platform},
            ":identity": {join.identity_key},
        }
        seen = join.active_before_join or join.joined_at
        if seen is not None:
            # The inactivity index (win-back): a member never active counts as inactive since joining. An imported
            # member whose platform gives neither date is not in it until their first activity (or the backfill).
            expressions.append(f"{ACTIVE_DAY_ATTRIBUTE} = if_not_exists({ACTIVE_DAY_ATTRIBUTE}, :active_day)")
            values[":active_day"] = active_day_key(join.member_id, seen.date())
        if join.joined_at is not None:
            expressions.append("joined_at = if_not_exists(joined_at, :joined)")
            values[":joined"] = join.joined_at.isoformat()
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
        added = ["platforms :platform", "identities :identity"]
        if join.address_verified:
            added.append("verified_identities :identity")
        request: dict[str, Any] = {
            "Key": {"pk": member_pk(join.member_id), "sk": PROFILE},
            "UpdateExpression": "SET " + ", ".join(expressions) + " ADD " + ", ".join(added),
            "ExpressionAttributeValues": values,
            "ReturnValues": "ALL_NEW",
        }
        if join.name:
            request["ExpressionAttributeNames"] = {"#name": "name"}  # `name` is a DynamoDB reserved word
        return record_from_item(self._table.update_item(**request)["Attributes"])

    def set_mailchimp_status(
        self, member_id: str, status: str, *, opted_out: bool = False, consent: bool | None = None
    ) -> None:
        expression = "SET mailchimp_status = :s" + (", opted_out_before = :true" if opted_out else "")
        values: dict[str, Any] = {":s": status} | ({":true": True} if opted_out else {})
        if consent is not None:
            expression += ", marketing_consent = :consent"
            values[":consent"] = consent
        self._table.update_item(
            Key={"pk": member_pk(member_id), "sk": PROFILE},
            UpdateExpression=expression,
            ExpressionAttributeValues=values,
        )

    def link(self, identity_key: str) -> IdentityLink | None:
        item = self._table.get_item(Key={"pk": identity_pk(identity_key), "sk": LINK}, ConsistentRead=True).get("Item")
        return _identity_link(identity_key, item) if item else None

    def save_link(self, identity_key: str, member_id: str) -> IdentityLink:
        answer = self._table.update_item(
            Key={"pk": identity_pk(identity_key), "sk": LINK},
            UpdateExpression="SET member_id = :m",
            ExpressionAttributeValues={":m": member_id},
            ReturnValues="ALL_NEW",
        )
        return _identity_link(identity_key, answer.get("Attributes") or {"member_id": member_id})

    def note_unlinked_activity(self, identity_key: str, at: datetime) -> str | None:
        """Activity from someone we have not seen join: remembered, so their later join counts them as active.
        Returns the member the identity is linked to now (a join may have linked it meanwhile)."""
        answer = self._table.update_item(
            Key={"pk": identity_pk(identity_key), "sk": LINK},
            UpdateExpression="SET last_active_at = :t",
            ExpressionAttributeValues={":t": at.isoformat()},
            ReturnValues="ALL_NEW",
        )
        return answer.get("Attributes", {}).get("member_id")

    def hold_for_screening(self, identity_key: str, joined_at: datetime) -> None:
        self._keep_latest(identity_key, "screening_since", joined_at)

    def pass_screening(self, identity_key: str, joined_at: datetime) -> None:
        self._keep_latest(identity_key, "screened_join", joined_at)

    def _keep_latest(self, identity_key: str, attribute: str, at: datetime) -> None:
        """Set a join time on the link unless a later one is there (redeliveries and old joins change nothing).
        Times are stored as UTC ISO strings, which sort as the times do."""
        update_if(
            self._table,
            Key={"pk": identity_pk(identity_key), "sk": LINK},
            UpdateExpression=f"SET {attribute} = :t",
            ConditionExpression=f"attribute_not_exists({attribute}) OR {attribute} < :t",
            ExpressionAttributeValues={":t": at.astimezone(UTC).isoformat()},
        )

    def claim_journey(self, member_id: str, now: datetime, lease: timedelta) -> bool:
        """Claim the right to start the welcome journey. The claim is a lease, so a crash between claim and
        trigger delays the journey instead of losing it; once started, nobody can claim it again."""
        claimed = update_if(
            self._table,
            Key={"pk": member_pk(member_id), "sk": PROFILE},
            UpdateExpression="SET journey_claimed_until = :until",
            ConditionExpression=(
                "attribute_exists(pk) AND attribute_not_exists(journey_started_at) "
                "AND (attribute_not_exists(journey_claimed_until) OR journey_claimed_until < :now)"
            ),
            ExpressionAttributeValues={":until": (now + lease).isoformat(), ":now": now.isoformat()},
        )
        return claimed is not None

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
        answer = update_if(
            self._table,
            Key={"pk": member_pk(member_id), "sk": PROFILE},
            # Activity takes the member out of the drip's due-work queue in the same write, moves them in the
            # inactivity index (win-back) and marks the first activity after a win-back selection.
            UpdateExpression=(
                "SET last_active_at = :t, activated_at = if_not_exists(activated_at, :t), "
                f"{ACTIVE_DAY_ATTRIBUTE} = :active_day, winback_returned_at = if_not_exists(winback_returned_at, :t) "
                f"REMOVE {QUEUE_ATTRIBUTE}, {DUE_ATTRIBUTE}"
            ),
            ConditionExpression=(
                "attribute_exists(pk) AND (attribute_not_exists(last_active_at) OR last_active_at < :t)"
            ),
            ExpressionAttributeValues={":t": at.isoformat(), ":active_day": active_day_key(member_id, at.date())},
            ReturnValues="UPDATED_OLD",
        )
        if answer is None:
            return False  # unknown member, or already active more recently
        return "activated_at" not in answer.get("Attributes", {})

    def erase(self, member_id: str) -> int:
        """Delete every item under the member's partition: the profile (with the drip's state) and the due work
        of every other queue (an opt-in wait, ...), whatever queues exist now or later. The profile goes last, so
        an erasure that fails part-way still finds the member (and what is left under them) when it is retried."""
        return delete_partition(self._table, member_pk(member_id), last=PROFILE)

    def delete_link(self, identity_key: str) -> bool:
        answer = self._table.delete_item(Key={"pk": identity_pk(identity_key), "sk": LINK}, ReturnValues="ALL_OLD")
        return bool(answer.get("Attributes"))

    def move(self, member_id: str, new_member_id: str, new_email: str) -> bool:
        """Copy every item of the member's partition under the new id (the profile first, on condition that the
        new address holds no other member), relink the identities, then delete the old items. A repeat after a
        crash finds the profile it wrote (`moved_from`) and finishes the move."""
        from memberflow.adapters.aws import ConditionNotMet

        items = list(
            query_all(
                self._table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": member_pk(member_id)},
                ConsistentRead=True,
            )
        )
        profile = next((item for item in items if item["sk"] == PROFILE), None)
        if profile is None:
            return False
        moved = {**profile, "pk": member_pk(new_member_id), "member_id": new_member_id, "email": new_email}
        moved["moved_from"] = member_id
        try:
            self._table.put_item(
                Item=moved,
                ConditionExpression="attribute_not_exists(pk) OR moved_from = :old",
                ExpressionAttributeValues={":old": member_id},
            )
        except ConditionNotMet:
            return False
        for item in items:
            if item["sk"] != PROFILE:
                copied = {**item, "pk": member_pk(new_member_id)}
                if "member_id" in copied:
                    copied["member_id"] = new_member_id
                self._table.put_item(Item=copied)
        for identity_key in profile.get("identities", []):
            self.save_link(identity_key, new_member_id)
        for item in items:
            self._table.delete_item(Key={"pk": item["pk"], "sk": item["sk"]})
        return True


def _identity_link(identity_key: str, item: dict[str, Any]) -> IdentityLink:
    return IdentityLink(
        identity_key,
        item.get("member_id"),
        as_datetime(item.get("last_active_at")),
        screening_since=as_datetime(item.get("screening_since")),
        screened_join=as_datetime(item.get("screened_join")),
    )
