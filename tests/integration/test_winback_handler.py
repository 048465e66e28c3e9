"""Win-back on the local stack: the scheduled function against moto (the members table's inactivity index, the
records, the results bucket) and the sandbox Mailchimp, read back through the official client."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest

from memberflow.adapters.active_days import active_day_key
from memberflow.adapters.member_profiles import DynamoMemberRepository
from memberflow.adapters.winback_store import DynamoWinbackStore, S3ResultsStore
from memberflow.members import MemberJoin
from memberflow.privacy import email_key
from memberflow.winback.assignment import HOLDOUT
from memberflow.winback.ports import Assignment, Recorded
from memberflow_local.scenes.winback import (
    PREVIEW_FUNCTION,
    SeedMember,
    _preview_request,
    community,
    seed,
    seed_audience,
    tag_members,
)
from support.mailchimp import official_client

TODAY = date(2026, 11, 30)
TAGS = ["winback-30-a", "winback-30-b", "winback-60-a", "winback-60-b", "winback-90-a", "winback-90-b"]


@pytest.fixture(autouse=True)
def clean(local_stack):
    local_stack.mailchimp.reset()
    ddb = local_stack.client("dynamodb")
    name = local_stack.table_name("MembersTable")
    for page in ddb.get_paginator("scan").paginate(TableName=name, ProjectionExpression="pk, sk"):
        for item in page["Items"]:
            ddb.delete_item(TableName=name, Key=item)
    yield


@pytest.fixture
def mailchimp(local_stack):
    return official_client(local_stack.mailchimp.url, local_stack.settings.mailchimp_api_key)


def fire(local_stack, day: date, *, resume: bool = False):
    at = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=6)
    name = "WinbackResumeSchedule" if resume else "WinbackSchedule"
    return local_stack.fire_schedule(name, at=at)


def seeded(local_stack, members):
    seed(local_stack.client("dynamodb"), local_stack.table_name("MembersTable"), members)
    seed_audience(local_stack.mailchimp.state, local_stack.settings.mailchimp_list_id, members)
    return {m.member_id: m for m in members}


def test_the_daily_run_tags_exactly_the_contacted_members_and_a_rerun_changes_nothing(local_stack, mailchimp):
    members = seeded(local_stack, community(1500, TODAY))
    list_id = local_stack.settings.mailchimp_list_id
    (report,) = fire(local_stack, TODAY)["runs"]
    assert report["completed"] and report["contacted"] > 0 and report["held_out"] > 0

    store = DynamoWinbackStore(local_stack.table_name("MembersTable"))
    records = list(store.records("winback", TODAY))
    contacted = {members[r.member_id].email for r in records if r.group != HOLDOUT}
    held_out = {members[r.member_id].email for r in records if r.group == HOLDOUT}
    assert len(contacted) == report["contacted"] and len(held_out) == report["held_out"]
    tagged = tag_members(mailchimp, list_id, TAGS)
    on_anyone = set().union(*tagged.values())
    assert on_anyone == contacted
    assert not on_anyone & held_out
    opted_out = {m.email for m in members.values() if m.mailchimp_status in ("unsubscribed", "cleaned")}
    assert not on_anyone & opted_out
    assert all(r.tier_days in (30, 60, 90) and r.day == TODAY for r in records)
    # One bulk call per tag used (each holds < 500 here), plus one per tag whose members selected again had it
    # removed first, plus finding or creating each tag's segment.
    calls = local_stack.mailchimp.state.calls
    assert report["tag_calls"] == len([tag for tag in TAGS if tagged[tag]])
    assert calls["POST /lists/{list_id}/segments/{segment_id}"] == report["tag_calls"] + report["untag_calls"]
    assert report["not_tagged"] == 0 and report["tags_cleared"] > 0

    results = S3ResultsStore(local_stack.physical["WinbackResultsBucket"].ref).get("winback")
    assert results is not None and results["as_of"] == TODAY.isoformat()
    assert sum(g.get("contacted", 0) for t in results["tiers"] for g in t["groups"]) == len(contacted)
    # A person's data on request includes their win-back contact.
    from memberflow.runtime.personal_data import export_person

    someone = next(r for r in records if r.group != HOLDOUT)
    exported = export_person(members[someone.member_id].email, local_stack.physical_id, None)
    assert [item["sk"] for item in exported["record"]["winback"]] == [f"WINBACK#winback#{TODAY.isoformat()}"]
    assert not any(str(sk).startswith("WINBACK#") for sk in exported["record"]["due_work"])

    events = len(local_stack.mailchimp.state.audience(list_id).tag_events)
    (again,) = fire(local_stack, TODAY)["runs"]
    assert again["already_done"] and again["contacted"] == 0
    assert fire(local_stack, TODAY, resume=True)["runs"] == []  # nothing in progress to continue
    (tomorrow,) = fire(local_stack, TODAY + timedelta(days=1))["runs"]
    assert not set(r.member_id for r in store.records("winback", TODAY + timedelta(days=1)) if r.day != TODAY) & {
        r.member_id for r in records
    }
    assert len(local_stack.mailchimp.state.audience(list_id).tag_events) == events + tomorrow["contacted"]


def test_a_member_selected_again_is_mailed_again_and_an_address_mailchimp_ignores_is_not_contacted(
    local_stack, mailchimp
):
    from memberflow.winback.assignment import assign
    from memberflow_cli.winback import campaign_file

    campaign = campaign_file().get("winback")
    crossed = TODAY - timedelta(days=30)
    candidates = [
        SeedMember(email_key(f"{n}{i}@example.org"), f"{n}{i}@example.org", crossed) for n in "rs" for i in range(20)
    ]
    # Two members the holdout does not take: one comes back and goes quiet again, one is not in the audience.
    again = next(m for m in candidates if m.email.startswith("r") and assign(m.member_id, campaign) != HOLDOUT)
    stranger = next(m for m in candidates if m.email.startswith("s") and assign(m.member_id, campaign) != HOLDOUT)
    seeded(local_stack, [again])
    seed(local_stack.client("dynamodb"), local_stack.table_name("MembersTable"), [stranger])
    list_id = local_stack.settings.mailchimp_list_id
    tag = campaign.tier_tags(campaign.tiers[0])[assign(again.member_id, campaign)]

    def added(email: str) -> list[str]:
        return [
            e["tag"] for e in local_stack.mailchimp.state.audience(list_id).tag_events if e["email_address"] == email
        ]

    (first,) = fire(local_stack, TODAY)["runs"]
    assert added(again.email) == [tag] and not added(stranger.email)
    store = DynamoWinbackStore(local_stack.table_name("MembersTable"))
    status = {r.member_id: r.status for r in store.records("winback", TODAY)}
    assert status == {again.member_id: "tagged", stranger.member_id: "not_tagged"}
    assert (first["contacted"], first["not_tagged"], first["tags_cleared"]) == (1, 1, 0)

    # Back five days later, quiet again: 30 days on, past the cooldown, the same tier selects them again. Their tag
    # is removed and added anew, so the "tag added" journey mails them a second time.
    DynamoMemberRepository(local_stack.table_name("MembersTable")).mark_active(
        again.member_id, datetime.combine(TODAY + timedelta(days=5), datetime.min.time(), UTC)
    )
    later = TODAY + timedelta(days=35)
    (second,) = fire(local_stack, later)["runs"]
    assert added(again.email) == [tag, tag] and not added(stranger.email)
    assert second["completed"] and second["contacted"] == 1 and second["not_tagged"] == 1
    assert again.email in tag_members(mailchimp, list_id, [tag])[tag]
    records = sorted(store.records("winback", later), key=lambda r: (r.day, r.member_id))
    assert [(r.member_id, r.day, r.status) for r in records if r.member_id == again.member_id] == [
        (again.member_id, TODAY, "tagged"),
        (again.member_id, later, "tagged"),
    ]
    assert {r.status for r in records if r.member_id == stranger.member_id} == {"not_tagged"}

    results = S3ResultsStore(local_stack.physical["WinbackResultsBucket"].ref).get("winback")
    assert results is not None
    groups = [g for t in results["tiers"] for g in t["groups"] if g["variant"] != HOLDOUT]
    assert sum(g["contacted"] for g in groups) == 2 and sum(g["not_tagged"] for g in groups) == 2


def test_a_return_is_kept_when_the_member_is_selected_again_before_the_window_closed(local_stack):
    """Back on the day of the contact, quiet again for 30 days, selected again on the first day the cooldown of 30
    allows: the first selection's window is still open, and its return must not be lost to the second one."""
    table = local_stack.table_name("MembersTable")
    repository, store = DynamoMemberRepository(table), DynamoWinbackStore(table)
    crossed = TODAY - timedelta(days=30)
    (member_id,) = seeded(local_stack, [SeedMember(email_key("back@example.org"), "back@example.org", crossed)])
    assert store.record(Assignment("winback", TODAY, member_id, 30, "a", crossed)) is Recorded.NEW
    store.settle("winback", TODAY, {member_id: ("tagged", "")})
    back = datetime.combine(TODAY, datetime.min.time(), UTC) + timedelta(hours=10)
    repository.mark_active(member_id, back)
    again = TODAY + timedelta(days=30)
    assert store.record(Assignment("winback", again, member_id, 30, "a", TODAY)) is Recorded.NEW
    # Both records are open on the day of the second selection; the member's profile is read once for them.
    returns = {r.day: r.returned_at for r in store.records("winback", again)}
    assert returns == {TODAY: back, again: None}
    assert {r.day: r.returned_at for r in store.records("winback", again + timedelta(days=31))} == returns


def test_activity_moves_the_member_in_the_inactivity_index_and_marks_their_return(local_stack):
    table = local_stack.table_name("MembersTable")
    repository, store = DynamoMemberRepository(table), DynamoWinbackStore(table)
    email = "quiet@example.org"
    member_id = email_key(email)
    joined = datetime(2026, 9, 1, 10, tzinfo=UTC)
    repository.record_join(MemberJoin(member_id, "discourse:f:1", "discourse", joined, "c1", email=email))

    def found_on(day: date) -> bool:
        return member_id in members_on(store, day)

    assert found_on(joined.date())  # never active: inactive since joining
    store.record(Assignment("winback", TODAY, member_id, 90, "a", joined.date()))
    active = datetime(2026, 12, 3, 9, tzinfo=UTC)
    repository.mark_active(member_id, active)
    assert not found_on(joined.date()) and found_on(active.date())
    (record,) = list(store.records("winback", TODAY + timedelta(days=5)))
    assert record.returned_at == active
    repository.mark_active(member_id, active + timedelta(days=2))  # a later activity: the return stays the first
    (record,) = list(store.records("winback", TODAY + timedelta(days=5)))
    assert record.returned_at == active


def test_a_selection_is_recorded_once_and_never_for_a_member_active_since_the_read(local_stack):
    table = local_stack.table_name("MembersTable")
    store = DynamoWinbackStore(table)
    crossed = TODAY - timedelta(days=30)
    members = seeded(
        local_stack, [SeedMember(email_key(f"m{i}@example.org"), f"m{i}@example.org", crossed) for i in range(3)]
    )
    first, second, third = members
    assert store.record(Assignment("winback", TODAY, first, 30, "a", crossed)) is Recorded.NEW
    assert store.record(Assignment("winback", TODAY, first, 30, "a", crossed)) is Recorded.PENDING
    store.settle("winback", TODAY, {first: ("tagged", "")})
    assert store.record(Assignment("winback", TODAY, first, 30, "a", crossed)) is Recorded.DONE
    # Another campaign the same day: the member's history says they were selected today.
    assert store.record(Assignment("other", TODAY, first, 30, "a", crossed)) is Recorded.SELECTED_TODAY
    DynamoMemberRepository(table).mark_active(second, datetime(2026, 11, 29, tzinfo=UTC))
    assert store.record(Assignment("winback", TODAY, second, 30, "a", crossed)) is Recorded.ACTIVE_MEANWHILE
    assert store.record(Assignment("winback", TODAY, third, 30, HOLDOUT, crossed)) is Recorded.NEW
    assert store.record(Assignment("winback", TODAY, third, 30, HOLDOUT, crossed)) is Recorded.DONE
    profile = local_stack.client("dynamodb").get_item(
        TableName=table, Key={"pk": {"S": f"MEMBER#{first}"}, "sk": {"S": "PROFILE"}}
    )["Item"]
    assert [day["S"] for day in profile["winback_history"]["L"]] == [TODAY.isoformat()]
    assert profile["active_day"]["S"] == active_day_key(first, crossed)


def test_the_preview_answers_who_and_why_and_names_a_bad_field(local_stack):
    seeded(local_stack, community(600, TODAY))
    answer = local_stack.invoke(PREVIEW_FUNCTION, _preview_request("winback", TODAY))
    assert answer["statusCode"] == 200
    shown = json.loads(answer["body"])
    assert sum(shown["counts"].values()) > 0 and shown["members"]
    assert not local_stack.mailchimp.state.audience(local_stack.settings.mailchimp_list_id).tag_events
    request = _preview_request("winback", TODAY)
    request["queryStringParameters"] = {"day": "30/11/2026", "campaign": "winback"}
    bad = local_stack.invoke(PREVIEW_FUNCTION, request)
    assert bad["statusCode"] == 400 and json.loads(bad["body"])["problems"][0]["field"] == "day"
    request["queryStringParameters"] = {}
    assert json.loads(local_stack.invoke(PREVIEW_FUNCTION, request)["body"])["problems"][0]["field"] == "campaign"
    request["queryStringParameters"] = {"campaign": "nope"}
    assert local_stack.invoke(PREVIEW_FUNCTION, request)["statusCode"] == 404


def test_backfill_gives_profiles_written_before_win_back_their_active_day(local_stack):
    from memberflow_cli.winback import backfill_active_days

    table = local_stack.table_name("MembersTable")
    ddb = local_stack.client("dynamodb")
    old = {"quiet": "2026-08-01T10:00:00+00:00", "never": None}
    for name, active in old.items():
        item = {
            "pk": {"S": f"MEMBER#{name}"},
            "sk": {"S": "PROFILE"},
            "member_id": {"S": name},
            "joined_at": {"S": "2026-07-01T09:00:00+00:00"},
        }
        if active:
            item["last_active_at"] = {"S": active}
        ddb.put_item(TableName=table, Item=item)
    seeded(local_stack, [SeedMember("new", "new@example.org", TODAY)])
    assert backfill_active_days(table) == 2
    store = DynamoWinbackStore(table)
    found = {day: members_on(store, day) for day in (date(2026, 8, 1), date(2026, 7, 1), TODAY)}
    assert found == {date(2026, 8, 1): {"quiet"}, date(2026, 7, 1): {"never"}, TODAY: {"new"}}
    assert backfill_active_days(table) == 0  # once is enough


def members_on(store, day: date) -> set[str]:
    """Every member the inactivity index holds under `day`, page by page, bucket by bucket."""
    cursor, found = None, set()
    while True:
        page = store.candidates(day, cursor, 100)
        found |= {c.member_id for c in page.candidates}
        cursor = page.next_cursor
        if cursor is None:
            return found
