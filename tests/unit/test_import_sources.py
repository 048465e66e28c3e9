"""Reading existing members from what platforms export: Slack users.list, Discourse's user export (with its admin
users list), and memberflow's CSV format. Rows that cannot be taken are refused with the field named."""

import json
from datetime import UTC, datetime
from pathlib import Path

from memberflow.onboarding.import_sources import (
    ImportedMember,
    RowRefusal,
    read_csv,
    read_discourse_export,
    read_slack_users,
)

SAMPLES = Path(__file__).resolve().parents[2] / "events" / "imports"


def members(rows):
    return [row for row in rows if isinstance(row, ImportedMember)]


def refusals(rows):
    return [row for row in rows if isinstance(row, RowRefusal)]


def test_slack_users_list_skips_bots_slackbot_deleted_users_and_guests_and_records_no_join_date():
    page = json.loads((SAMPLES / "slack_users_list.json").read_text())
    read = list(read_slack_users([page]))
    assert [m.identity.user_id for m in members(read)] == ["U0IMPORT01", "U0IMPORT02", "U0IMPORT06"]
    assert refusals(read) == []
    ada = members(read)[0]
    assert ada.identity.key == "slack:T0LOCAL01:U0IMPORT01"
    assert ada.email == "ada@example.org" and ada.name == "Ada Lovelace"
    assert ada.joined_at is None  # Slack keeps no join date: none is invented
    assert not ada.marketing_consent  # Slack carries no consent, as for live joins
    assert ada.email_verified and not members(read)[2].email_verified  # is_email_confirmed


def test_slack_guests_and_deleted_users_only_when_asked_and_pages_are_followed():
    page = json.loads((SAMPLES / "slack_users_list.json").read_text())
    first = {**page, "members": page["members"][:3], "response_metadata": {"next_cursor": "dXNlcjpVMEc5V0ZYTlo="}}
    second = {**page, "members": page["members"][3:]}
    read = members(read_slack_users([first, second], include_guests=True, include_deleted=True))
    assert [m.identity.user_id for m in read] == ["U0IMPORT01", "U0IMPORT02", "U0IMPORT03", "U0IMPORT04", "U0IMPORT06"]


def test_discourse_export_takes_consent_from_the_user_field_column_and_dates_from_the_export():
    admin = json.loads((SAMPLES / "discourse_admin_users_list.json").read_text())["users"]
    with (SAMPLES / "discourse_user_export.csv").open(newline="") as lines:
        read = list(
            read_discourse_export(
                lines, instance="https://forum.example.org", consent_field="Send me the newsletter", admin_users=admin
            )
        )
    got = {m.identity.user_id: m for m in members(read)}
    assert sorted(got) == ["1", "2", "4"]  # the system user and the staged user are not members
    ada, newbie, none = got["1"], got["2"], got["4"]
    assert ada.marketing_consent and ada.email_verified
    assert ada.joined_at == datetime(2024, 3, 1, 10, tzinfo=UTC)
    assert ada.last_active_at == datetime(2026, 11, 29, 18, tzinfo=UTC)
    assert newbie.marketing_consent and not newbie.email_verified  # address not confirmed: double opt-in
    assert not none.marketing_consent
    assert ada.identity.key == "discourse:https://forum.example.org:1"


def test_discourse_export_without_the_consent_column_is_refused_naming_it():
    with (SAMPLES / "discourse_user_export.csv").open(newline="") as lines:
        read = list(read_discourse_export(lines, instance="https://f.example", consent_field="Newsletter opt-in"))
    assert read == [RowRefusal(1, "Newsletter opt-in", "the consent field is not a column of the export")]


def test_memberflow_csv_reads_each_column_and_refuses_bad_rows_naming_the_field():
    with (SAMPLES / "members.csv").open(newline="") as lines:
        read = list(read_csv(lines))
    ok = members(read)
    assert [m.identity.key for m in ok] == [
        "discourse:https://forum.example.org:1",
        "slack:T0LOCAL01:U0IMPORT02",
        "generic:crm:n-77",
    ]
    assert ok[0].joined_at == datetime(2024, 3, 1, tzinfo=UTC) and ok[0].marketing_consent
    assert ok[1].joined_at is None and not ok[1].marketing_consent
    (bad,) = refusals(read)
    assert bad.row == 5 and bad.field == "email"


def test_memberflow_csv_names_a_missing_column_and_a_bad_value():
    assert list(read_csv(["email,name\n", "a@example.org,A\n"])) == [
        RowRefusal(
            1,
            "platform,user_id,joined,last_active,consent",
            "missing from the header: email,name,platform,user_id,joined,last_active,consent are needed",
        )
    ]
    header = "email,name,platform,user_id,joined,last_active,consent\n"
    read = list(read_csv([header, "a@example.org,A,slack,U1,yesterday,,true\n", "b@example.org,B,slack,U2,,,maybe\n"]))
    assert [(r.row, r.field) for r in refusals(read)] == [(2, "joined"), (3, "consent")]
    read = list(read_csv([header, "c@example.org,C,myspace,U3,,,true\n"]))
    assert [(r.row, r.field) for r in refusals(read)] == [(2, "platform")]


def test_slack_pages_without_any_address_or_ending_early_are_not_imported():
    from memberflow.onboarding import import_sources

    page = json.loads((SAMPLES / "slack_users_list.json").read_text())
    assert import_sources.slack_pages_problem([page]) is None
    without = json.loads(json.dumps(page))
    for user in without["members"]:
        user["profile"].pop("email", None)
    problem = import_sources.slack_pages_problem([page, without])  # someone has an address: a scope was there
    assert problem is None
    problem = import_sources.slack_pages_problem([without])
    assert problem and "users:read.email" in problem and "second member" in problem
    first = dict(page, response_metadata={"next_cursor": "dXNlcjpVMEc5V0ZYTlo="})
    problem = import_sources.slack_pages_problem([first])
    assert problem and "stopped early" in problem


def test_discourse_admin_pages_ending_with_a_full_page_are_not_used():
    from memberflow.onboarding import import_sources

    user = json.loads((SAMPLES / "discourse_admin_users_list.json").read_text())["users"][0]
    assert import_sources.discourse_admin_pages_problem([[user] * 100, [user] * 3]) is None
    assert import_sources.discourse_admin_pages_problem([[user] * 100, []]) is None
    assert "stopped early" in (import_sources.discourse_admin_pages_problem([[user] * 100, [user] * 100]) or "")
