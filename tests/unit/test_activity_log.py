"""The activity log: what onboarding appends (joins, Mailchimp, welcome, activity with its thread, activation, the
drip's end), the record schema, and the S3 adapter (day partitions, hashed members, batched, nothing lost)."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from memberflow import activity
from memberflow.activity import ActivityRecord, member_hash
from memberflow.adapters.activity_log import S3ActivityLog
from memberflow.errors import AccountProblem
from memberflow.events import MemberActive
from memberflow.members import member_id_for
from memberflow.onboarding.activity import record_activity
from memberflow.onboarding.drip import DripDeps, send_due_drip_steps
from memberflow.onboarding.join import OnboardingDeps, onboard_member
from memberflow.onboarding.rules import OnboardingRules, WelcomeJourney
from memberflow.pipeline.envelope import QueuedEvent
from support.fakes import (
    FakeMailingList,
    MemoryActivityLog,
    MemoryDueWork,
    MemoryLedger,
    MemoryMembers,
    MemorySuppressions,
    MemoryTrace,
)
from support.intake import Intake, sample
from support.queue import JOINED, joined

ADA = "ada@example.org"
NOW = JOINED + timedelta(minutes=5)
KEY = b"activity-test-key"


@pytest.fixture
def world():
    log = MemoryActivityLog()
    mailing_list, members = FakeMailingList(), MemoryMembers()
    due_work, trace = MemoryDueWork(members), MemoryTrace()
    rules = OnboardingRules(list_id="list1", welcome_journey=WelcomeJourney("j1", "s1"))
    deps = OnboardingDeps(
        mailing_list=mailing_list,
        members=members,
        due_work=due_work,
        trace=trace,
        rules=rules,
        suppressions=MemorySuppressions(),
        ledger=(ledger := MemoryLedger(members)),
        clock=lambda: NOW,
        activity=log,
    )
    drip = DripDeps(
        mailing_list=mailing_list,
        members=members,
        due_work=due_work,
        trace=trace,
        list_id="list1",
        step_days=rules.drip_step_days,
        welcome_journey=rules.welcome_journey,
        ledger=ledger,
        activity=log,
    )
    return log, deps, drip


def post(queued_join: QueuedEvent, key: str, **where) -> QueuedEvent:
    event = MemberActive(
        identity=queued_join.event.identity, activity="post", active_at=JOINED + timedelta(hours=3), **where
    )
    return QueuedEvent(idempotency_key=key, correlation_id="c-" + key, source="discourse", event=event)


def test_the_onboarding_funnel_and_activity_land_in_the_log_without_personal_data(world):
    log, deps, drip = world
    join = joined(ADA, consent=True)
    onboard_member(join, deps)
    onboard_member(join, deps)  # a redelivery: the same records (same ids), no second welcome
    record_activity(post(join, "p1", thread="56", item="1", opens_thread=True, question=True), deps)
    record_activity(post(join, "p2", thread="56", item="2", is_reply=True), deps)
    for days in (1, 3, 7):
        send_due_drip_steps(NOW + timedelta(days=days), f"run-{days}", drip)

    records = log.buffered
    kinds = [record.kind for record in records]
    assert kinds.count("joined") == 2 and len({r.id for r in records if r.kind == "joined"}) == 1
    assert kinds.count("mailchimp_added") == 1 and kinds.count("welcomed") == 1
    assert kinds.count("post") == 2 and kinds.count("activated") == 1
    # Active after the join: the drip stopped before its last step, so it never finished.
    assert "drip_finished" not in kinds
    member = member_id_for(join.event.identity, ADA)
    assert {record.member for record in records} == {member}
    opener, reply = [record for record in records if record.kind == "post"]
    assert (opener.thread, opener.item, opener.opens_thread, opener.question, opener.is_reply) == (
        "56",
        "1",
        True,
        True,
        False,
    )
    assert (reply.thread, reply.is_reply, reply.question) == ("56", True, False)
    assert ADA not in json.dumps([record.to_json() for record in records])


def test_a_member_who_stays_silent_finishes_the_drip(world):
    log, deps, drip = world
    onboard_member(joined(ADA, consent=True), deps)
    for days in (1, 3, 7, 8):
        send_due_drip_steps(NOW + timedelta(days=days), f"run-{days}", drip)

    finished = [record for record in log.buffered if record.kind == "drip_finished"]
    assert len(finished) == 1 and finished[0].ts == NOW + timedelta(days=7)


def test_slack_messages_say_where_they_are_and_whether_they_ask_something():
    intake = Intake()
    body = sample("slack_message")["body"]
    body["event"]["text"] = "Does anyone know how to reset the password?"
    assert intake.deliver_sample("slack_message", body=body).status == 200
    event = intake.queued_event()
    assert (event.channel, event.thread, event.is_reply, event.opens_thread, event.question) == (
        "C0INTRODUCE",
        "1700000100.000300",
        False,
        True,
        True,
    )
    assert "text" not in event.model_dump()


def test_records_are_validated_and_written_as_the_schema_says():
    with pytest.raises(ValueError, match="unknown activity kind"):
        ActivityRecord(id="x", kind="mood", ts=NOW, member="m", platform="slack")
    line = ActivityRecord(
        id="x", kind="message", ts=datetime(2026, 11, 16, 9, 5, 7, 999, tzinfo=UTC), member="m", platform="slack"
    ).to_json()
    assert line == {
        "v": 1,
        "id": "x",
        "kind": "message",
        "ts": "2026-11-16 09:05:07",
        "member": "m",
        "platform": "slack",
    }
    assert set(line) <= set(activity.COLUMNS)


@mock_aws
def test_the_s3_log_writes_one_object_per_day_with_hashed_members_and_keeps_what_it_could_not_write():
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="activity-bucket")
    log = S3ActivityLog("activity-bucket", lambda: KEY, s3=s3)
    monday, tuesday = datetime(2026, 11, 16, 23, 59, tzinfo=UTC), datetime(2026, 11, 17, 0, 1, tzinfo=UTC)
    for n, at in enumerate([monday, monday, tuesday]):
        activity.note(log, "message", member_id="member-1", platform="slack", at=at, source_key=f"k{n}")

    assert log.flush() == 3
    assert log.flush() == 0
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="activity-bucket")["Contents"])
    assert [key.split("/")[1] for key in keys] == ["dt=2026-11-16", "dt=2026-11-17"]
    assert all(key.endswith(".jsonl.gz") for key in keys)
    assert all(key.endswith(".jsonl.gz") for key in keys)
    lines = [
        json.loads(line)
        for key in keys
        for line in gzip.decompress(s3.get_object(Bucket="activity-bucket", Key=key)["Body"].read())
        .decode()
        .splitlines()
    ]
    assert len(lines) == 3
    assert {line["member"] for line in lines} == {member_hash(KEY, "member-1")}
    assert "member-1" not in json.dumps(lines)

    # The bucket cannot be written: the records stay for the next flush.
    broken = S3ActivityLog("no-such-bucket", lambda: KEY, s3=s3)
    activity.note(broken, "post", member_id="member-2", platform="discourse", at=monday, source_key="k9")
    with pytest.raises(AccountProblem):
        broken.flush()
    assert broken.pending == 1
