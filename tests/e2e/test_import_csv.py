"""End to end on the local stack: `memberflow import csv` of consenting, non-consenting and previously unsubscribed
members; the sandbox Mailchimp, read back with the official client, holds each once with the right status and tags,
nobody who unsubscribed is subscribed, and only members inside the welcome window got the journey. A dry run changes
nothing, an interrupted import resumes, and a re-run changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import test_erasure_and_doctor as operator_commands

# The running local stack (template defaults: ImportWelcomeWindowDays 14), the official client and the command.
running_stack = operator_commands.running_stack
mailchimp = operator_commands.mailchimp
cli = operator_commands.cli

pytestmark = pytest.mark.e2e

NOW = datetime.now(UTC)
RECENT = (NOW - timedelta(days=2)).strftime("%Y-%m-%d")
OLD = "2023-04-02"


def write_members(path, rows):
    lines = ["email,name,platform,user_id,joined,last_active,consent,workspace"]
    lines += [",".join(row) for row in rows]
    path.write_text("\n".join(lines) + "\n")


def audience(mailchimp, list_id):
    members, offset = [], 0
    while True:
        page = mailchimp.lists.get_list_members_info(list_id, count=1000, offset=offset)["members"]
        members += page
        offset += len(page)
        if len(page) < 1000:
            break
    return {m["email_address"]: (m["status"], sorted(t["name"] for t in m["tags"])) for m in members}


def test_import_csv_lands_each_member_once_with_consent_honoured(running_stack, mailchimp, cli, tmp_path):
    list_id = running_stack.settings.mailchimp_list_id
    mailchimp.lists.add_list_member(list_id, {"email_address": "gone@example.org", "status": "unsubscribed"})
    rows = [
        ("new-yes@example.org", "New Yes", "discourse", "11", RECENT, RECENT, "true", "https://forum.example.org"),
        ("old-yes@example.org", "Old Yes", "discourse", "12", OLD, RECENT, "true", "https://forum.example.org"),
        ("new-no@example.org", "New No", "discourse", "13", RECENT, "", "false", "https://forum.example.org"),
        ("gone@example.org", "Gone Away", "discourse", "14", RECENT, "", "true", "https://forum.example.org"),
        ("slack@example.org", "Slack Person", "slack", "U0SLACK1", "", "", "false", "T0LOCAL01"),
        ("not-an-address", "Broken", "generic", "x1", OLD, "", "true", "crm"),
    ]
    path = tmp_path / "members.csv"
    write_members(path, rows)

    code, out = cli("import", "csv", str(path), "--dry-run")
    assert code == 0 and "dry run: nothing was changed" in out
    assert "new-yes@example.org" not in audience(mailchimp, list_id)

    code, out = cli("import", "csv", str(path))
    assert code == 0, out
    assert "summary: 5 member(s) read, 5 written" in out and "1 refused" in out
    assert "row 7: email:" in out  # the refusal names the row and the field
    got = audience(mailchimp, list_id)
    assert got["new-yes@example.org"][0] == "subscribed"
    assert got["old-yes@example.org"][0] == "subscribed"
    assert got["new-no@example.org"][0] == "transactional"
    assert got["slack@example.org"] == ("transactional", ["platform:slack"])  # no join date: no cohort tag
    assert got["gone@example.org"] == ("unsubscribed", [])  # never resubscribed, not tagged
    assert got["new-yes@example.org"][1] == sorted(["platform:discourse", f"cohort:{RECENT[:7]}"])
    assert got["old-yes@example.org"][1] == ["cohort:2023-04", "platform:discourse"]
    journeys = [t["email_address"] for t in running_stack.mailchimp.state.journey_triggers]
    assert journeys == ["new-yes@example.org"]  # only inside the 14-day window

    calls = dict(running_stack.mailchimp.state.calls)
    code, out = cli("import", "csv", str(path))  # finished: the checkpoint says so
    assert code == 0 and "already imported" in out
    code, out = cli("import", "csv", str(path), "--restart")  # run again anyway: nothing changes
    assert code == 0 and "5 already imported (unchanged)" in out
    assert dict(running_stack.mailchimp.state.calls) == calls  # not one Mailchimp call
    assert audience(mailchimp, list_id) == got
    assert [t["email_address"] for t in running_stack.mailchimp.state.journey_triggers] == journeys


def test_an_interrupted_import_resumes_from_its_checkpoint(running_stack, mailchimp, cli, tmp_path, monkeypatch):
    from memberflow_cli import imports

    list_id = running_stack.settings.mailchimp_list_id
    rows = [(f"wave{n}@example.org", f"Wave {n}", "generic", f"w{n}", OLD, "", "true", "crm") for n in range(600)]
    path = tmp_path / "wave.csv"
    write_members(path, rows)
    original = imports._LocalImport.chunk
    seen = []

    def interrupted(self, chunk, checkpoint):
        if len(seen) == 1:
            raise KeyboardInterrupt
        seen.append(len(chunk))
        return original(self, chunk, checkpoint)

    monkeypatch.setattr(imports._LocalImport, "chunk", interrupted)
    code, out = cli("import", "csv", str(path))
    assert code == 130 and "interrupted after 500 member(s)" in out
    monkeypatch.setattr(imports._LocalImport, "chunk", original)
    code, out = cli("import", "csv", str(path))
    assert code == 0 and "resuming after 500 member(s)" in out
    assert "600 member(s) read, 600 written" in out
    got = audience(mailchimp, list_id)
    assert all(
        got[f"wave{n}@example.org"] == ("subscribed", ["cohort:2023-04", "platform:generic"]) for n in range(600)
    )


def test_via_queue_the_stack_imports_the_chunks_itself(running_stack, mailchimp, cli, tmp_path):
    list_id = running_stack.settings.mailchimp_list_id
    rows = [(f"queued{n}@example.org", f"Q {n}", "generic", f"q{n}", OLD, "", "false", "crm") for n in range(700)]
    path = tmp_path / "queued.csv"
    write_members(path, rows)

    code, out = cli("import", "csv", str(path), "--via-queue")
    assert code == 0 and "2 chunk(s) queued for the stack's import function" in out
    assert running_stack.drain(timeout=120)

    got = audience(mailchimp, list_id)
    assert all(
        got[f"queued{n}@example.org"] == ("transactional", ["cohort:2023-04", "platform:generic"]) for n in range(700)
    )
    dead = running_stack.client("sqs").get_queue_attributes(
        QueueUrl=running_stack.queue_url("MemberImportDeadLetterQueue"), AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert dead["Attributes"]["ApproximateNumberOfMessages"] == "0"
