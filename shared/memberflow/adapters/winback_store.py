"""Win-back in the members table: the inactivity index, the selection records and each campaign's checkpoint.

- The inactivity index (`active-day`, a GSI; its key and names are in `active_days`): every member profile carries
  `active_day` = `<day of last activity, or of joining if never active>#<bucket>`, written by the same update that
  records the activity (`member_profiles`), so a run reads exactly the members whose inactivity crossed a threshold
  on a day: one query per bucket, about one item read per candidate, whatever the community's size. The buckets
  spread one busy day's writes over several index partitions. Projection ALL: the candidate's profile comes with it.
- A selection record: `MEMBER#<id>` / `WINBACK#<campaign>#<run day>` (under the member, so an erasure removes it),
  in the sparse GSI `winback-records` (`winback_campaign`, `winback_key` = `<day>#<member id>`) for the results.
  It is written with the member's `winback_history` (the days they were selected), guarded on the member not
  having been active since the read, so a re-run never selects anyone twice. The profile also names the latest
  selection (`winback_since`, `winback_since_campaign`) and the first activity after it (`winback_returned_at`);
  a record whose window is over gets the return copied onto it and is closed, and so is the previous record of a
  member selected again while its window is still open, so a return is never lost to a later selection.
- `WINBACK#<campaign>` / `STATE`: the run in progress (day, segment, index cursor) and the last completed run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from memberflow.adapters.active_days import ACTIVE_DAY_ATTRIBUTE, ACTIVE_DAY_BUCKETS, ACTIVE_DAY_INDEX, active_day_key
from memberflow.adapters.due_work import QUEUE_ATTRIBUTE, QUEUES, member_pk
from memberflow.adapters.dynamo import as_datetime, query_all, table, update_if
from memberflow.winback.assignment import HOLDOUT
from memberflow.winback.campaign import REACTIVATION_WINDOWS
from memberflow.winback.ports import HELD_OUT, RECORDED, Assignment, AssignmentRecord, CandidatePage, Recorded, RunState
from memberflow.winback.selection import Candidate

RECORDS_INDEX = "winback-records"
PROFILE = "PROFILE"


def record_sk(campaign_id: str, day: date) -> str:
    return f"WINBACK#{campaign_id}#{day.isoformat()}"


def candidate_from_item(item: Mapping[str, Any]) -> Candidate:
    return Candidate(
        member_id=item["member_id"],
        active_day=date.fromisoformat(str(item[ACTIVE_DAY_ATTRIBUTE]).partition("#")[0]),
        email=item.get("email"),
        mailchimp_status=item.get("mailchimp_status"),
        opted_out_before=bool(item.get("opted_out_before", False)),
        in_drip=item.get(QUEUE_ATTRIBUTE) == QUEUES["drip"].index_value,
        staff=bool(item.get("staff") or item.get("bot")),
        winback_opt_out=bool(item.get("winback_opt_out", False)),
        winback_history=tuple(date.fromisoformat(day) for day in item.get("winback_history", [])),
    )


class DynamoWinbackStore:
    def __init__(self, table_name: str) -> None:
        self._table_name = table_name
        self.items_read = 0
        """Items DynamoDB read by the run's side (the index queries' ScannedCount, checkpoints, record look-ups)."""

    @property
    def _table(self) -> Any:
        return table(self._table_name)

    # -- the inactivity index -----------------------------------------------------------------------------------

    def candidates(self, active_day: date, cursor: str | None, limit: int) -> CandidatePage:
        position = json.loads(cursor) if cursor else {"bucket": 0}
        bucket, start = int(position["bucket"]), position.get("start")
        request: dict[str, Any] = {
            "IndexName": ACTIVE_DAY_INDEX,
            "KeyConditionExpression": f"{ACTIVE_DAY_ATTRIBUTE} = :day",
            "ExpressionAttributeValues": {":day": f"{active_day.isoformat()}#{bucket}"},
            "Limit": limit,
        }
        if start:
            request["ExclusiveStartKey"] = start
        page = self._table.query(**request)
        self.items_read += page["ScannedCount"]
        candidates = [candidate_from_item(item) for item in page["Items"] if item.get("sk") == PROFILE]
        if "LastEvaluatedKey" in page:
            following: dict[str, Any] | None = {"bucket": bucket, "start": page["LastEvaluatedKey"]}
        elif bucket + 1 < ACTIVE_DAY_BUCKETS:
            following = {"bucket": bucket + 1}
        else:
            following = None
        return CandidatePage(candidates, json.dumps(following) if following else None)

    # -- the campaign's checkpoint -----------------------------------------------------------------------------

    def state(self, campaign_id: str) -> RunState:
        item = self._table.get_item(Key=self._state_key(campaign_id), ConsistentRead=True).get("Item") or {}
        self.items_read += 1

        def day(name: str) -> date | None:
            return date.fromisoformat(item[name]) if item.get(name) else None

        return RunState(
            done_through=day("done_through"),
            results_through=day("results_through"),
            run_day=day("run_day"),
            first_day=day("first_day"),
            segment=int(item.get("segment", 0)),
            cursor=item.get("cursor"),
        )

    def save_state(self, campaign_id: str, state: RunState) -> None:
        item: dict[str, Any] = {**self._state_key(campaign_id), "segment": state.segment}
        for name in ("done_through", "results_through", "run_day", "first_day"):
            value = getattr(state, name)
            if value is not None:
                item[name] = value.isoformat()
        if state.cursor is not None:
            item["cursor"] = state.cursor
        self._table.put_item(Item=item)

    @staticmethod
    def _state_key(campaign_id: str) -> dict[str, str]:
        return {"pk": f"WINBACK#{campaign_id}", "sk": "STATE"}

    # -- selection records ---------------------------------------------------------------------------------------

    def record(self, assignment: Assignment) -> Recorded:
        """The record first (conditional: once per member, campaign and run), then the member's win-back history
        (conditional: not active since the read, not selected today by another campaign). Two single-item writes
        rather than a transaction (half the cost); each step is repeated or undone by a re-run, so an interruption
        between them leaves nothing half-done: a record without its history gets it, a record whose member turned
        out to be active (or taken) is withdrawn."""
        from memberflow.adapters.aws import ConditionNotMet

        key = {"pk": member_pk(assignment.member_id), "sk": record_sk(assignment.campaign_id, assignment.run_day)}
        day = assignment.run_day.isoformat()
        record = {
            **key,
            "member_id": assignment.member_id,
            "campaign_id": assignment.campaign_id,
            "tier_days": assignment.tier_days,
            "group": assignment.group,
            "day": day,
            "status": HELD_OUT if assignment.group == HOLDOUT else RECORDED,
            "winback_campaign": assignment.campaign_id,
            "winback_key": f"{day}#{assignment.member_id}",
        }
        recorded = Recorded.NEW
        try:
            self._table.put_item(Item=record, ConditionExpression="attribute_not_exists(pk)")
        except ConditionNotMet:
            existing = self._table.get_item(Key=key, ConsistentRead=True).get("Item") or {}
            self.items_read += 1
            recorded = Recorded.PENDING if existing.get("status") == RECORDED else Recorded.DONE
        values: dict[str, Any] = {":none": [], ":day": [day], ":today": day, ":campaign": assignment.campaign_id}
        history: dict[str, Any] = {
            "Key": {"pk": member_pk(assignment.member_id), "sk": PROFILE},
            "UpdateExpression": (
                "SET winback_history = list_append(if_not_exists(winback_history, :none), :day), "
                "winback_since = :today, winback_since_campaign = :campaign REMOVE winback_returned_at"
            ),
            "ExpressionAttributeValues": values,
            "ReturnValues": "UPDATED_OLD",
        }
        not_today = "(attribute_not_exists(winback_history) OR NOT contains(winback_history, :today))"
        if recorded is not Recorded.NEW:
            # An earlier attempt of this run recorded the member: make sure their history has the day too.
            answer = update_if(self._table, ConditionExpression=f"attribute_exists(pk) AND {not_today}", **history)
            self._keep_return(assignment, answer)
            return recorded
        seen = active_day_key(assignment.member_id, assignment.seen_active_day)
        values[":seen"] = seen
        answer = update_if(
            self._table, ConditionExpression=f"{ACTIVE_DAY_ATTRIBUTE} = :seen AND {not_today}", **history
        )
        if answer is not None:
            self._keep_return(assignment, answer)
            return Recorded.NEW
        self._table.delete_item(Key=key)
        profile = self._table.get_item(
            Key={"pk": member_pk(assignment.member_id), "sk": PROFILE}, ConsistentRead=True
        ).get("Item")
        self.items_read += 1
        if profile is None or profile.get(ACTIVE_DAY_ATTRIBUTE) != seen:
            return Recorded.ACTIVE_MEANWHILE
        return Recorded.SELECTED_TODAY

    def _keep_return(self, assignment: Assignment, answer: Mapping[str, Any] | None) -> None:
        """A member selected again whose previous selection's record is still open (they came back within its
        window and went quiet again): the new selection replaced the return on their profile, so it is copied onto
        the previous selection's record, which is closed with it (the profile names that selection's day and
        campaign). Without a return there is nothing to keep: an open record finds no return on the profile, as it
        should."""
        old = (answer or {}).get("Attributes", {})
        since, returned = old.get("winback_since"), old.get("winback_returned_at")
        if not since or not returned or since == assignment.run_day.isoformat():
            return
        campaign_id = old.get("winback_since_campaign") or assignment.campaign_id
        update_if(
            self._table,
            Key={"pk": member_pk(assignment.member_id), "sk": record_sk(campaign_id, date.fromisoformat(since))},
            UpdateExpression="SET closed = :true, returned_at = :returned",
            ConditionExpression="attribute_exists(pk) AND attribute_not_exists(closed)",
            ExpressionAttributeValues={":true": True, ":returned": returned},
        )

    def settle(self, campaign_id: str, run_day: date, outcomes: Mapping[str, tuple[str, str]]) -> None:
        for member_id, (status, refusal) in outcomes.items():
            expression = "SET #status = :status" + (", refusal = :refusal" if refusal else "")
            values: dict[str, Any] = {":status": status} | ({":refusal": refusal} if refusal else {})
            self._table.update_item(
                Key={"pk": member_pk(member_id), "sk": record_sk(campaign_id, run_day)},
                UpdateExpression=expression,
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=values,
            )

    def records(self, campaign_id: str, today: date) -> Iterator[AssignmentRecord]:
        """Every record of the campaign with the member's return. A record whose longest reactivation window has
        passed is closed (its return copied onto it), so a later selection of the member changes nothing in it."""
        page: list[dict[str, Any]] = []
        for item in query_all(
            self._table,
            IndexName=RECORDS_INDEX,
            KeyConditionExpression="winback_campaign = :campaign",
            ExpressionAttributeValues={":campaign": campaign_id},
            Limit=500,
        ):
            self.items_read += 1
            page.append(item)
            if len(page) == 100:
                yield from self._with_returns(page, today)
                page = []
        yield from self._with_returns(page, today)

    def _with_returns(self, items: list[dict[str, Any]], today: date) -> Iterator[AssignmentRecord]:
        # A member selected twice can have two open records: their profile is read once (a batch may not ask for
        # one key twice).
        open_members = sorted({item["member_id"] for item in items if not item.get("closed")})
        self.items_read += len(open_members)
        profiles = {
            profile["member_id"]: profile
            for profile in self._table.batch_get(
                [{"pk": member_pk(member_id), "sk": PROFILE} for member_id in open_members],
                projection="member_id, winback_since, winback_returned_at",
            )
        }
        for item in items:
            day = date.fromisoformat(item["day"])
            if item.get("closed"):
                returned = as_datetime(item.get("returned_at"))
            else:
                profile = profiles.get(item["member_id"], {})
                current = profile.get("winback_since") == item["day"]
                returned = as_datetime(profile.get("winback_returned_at")) if current else None
                if today - day > timedelta(days=max(REACTIVATION_WINDOWS)):
                    self._close(item, returned)
            yield AssignmentRecord(
                member_id=item["member_id"],
                campaign_id=item["campaign_id"],
                tier_days=int(item["tier_days"]),
                group=item["group"],
                day=day,
                status=item["status"],
                returned_at=returned,
                refusal=item.get("refusal", ""),
            )

    def _close(self, item: Mapping[str, Any], returned: datetime | None) -> None:
        expression = "SET closed = :true" + (", returned_at = :returned" if returned else "")
        values: dict[str, Any] = {":true": True} | ({":returned": returned.isoformat()} if returned else {})
        self._table.update_item(
            Key={"pk": item["pk"], "sk": item["sk"]}, UpdateExpression=expression, ExpressionAttributeValues=values
        )


class S3ResultsStore:
    """Each campaign's results file: `winback/<campaign>/results.json` (the latest) and a dated copy per run."""

    def __init__(self, bucket: str) -> None:
        self._bucket = bucket

    def put(self, campaign_id: str, results: Mapping[str, Any]) -> str:
        from memberflow.adapters.aws import aws_failure, client

        body = json.dumps(results, indent=2).encode()
        key = f"winback/{campaign_id}/results.json"
        try:
            for name in (key, f"winback/{campaign_id}/history/{results.get('as_of', 'undated')}.json"):
                client("s3").put_object(Bucket=self._bucket, Key=name, Body=body, ContentType="application/json")
        except Exception as error:
            raise aws_failure(error, "S3") from None
        return f"s3://{self._bucket}/{key}"

    def get(self, campaign_id: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        from memberflow.adapters.aws import aws_failure, client

        try:
            answer = client("s3").get_object(Bucket=self._bucket, Key=f"winback/{campaign_id}/results.json")
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise aws_failure(error, "S3") from None
        return dict(json.loads(answer["Body"].read()))
