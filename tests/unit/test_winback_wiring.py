"""Win-back's deployment: the template's schedules, roles, route and bucket; what the preview function can run
with; the command's tables."""

from __future__ import annotations

import importlib.util
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from memberflow_local.template import load_yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_yaml(ROOT / "template.yaml")
RESOURCES = TEMPLATE["Resources"]


def actions(function: str) -> dict[str, object]:
    granted: dict[str, object] = {}
    for policy in RESOURCES[function]["Properties"]["Policies"]:
        for statement in policy["Statement"]:
            for action in statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]:
                granted[action] = statement["Resource"]
    return granted


def test_the_run_is_scheduled_daily_and_continued_every_15_minutes_one_invocation_at_a_time():
    properties = RESOURCES["WinbackFunction"]["Properties"]
    events = properties["Events"]
    assert {e["Type"] for e in events.values()} == {"ScheduleV2"}
    daily, resume = events["WinbackSchedule"]["Properties"], events["WinbackResumeSchedule"]["Properties"]
    assert daily["ScheduleExpression"] == {"Ref": "WinbackSchedule"}
    assert TEMPLATE["Parameters"]["WinbackSchedule"]["Default"] == "cron(0 6 * * ? *)"
    assert TEMPLATE["Parameters"]["WinbackResumeSchedule"]["Default"] == "rate(15 minutes)"
    assert '"detail": {"resume": true}' in resume["Input"]["Fn::Sub"] and '"detail": {}' in daily["Input"]["Fn::Sub"]
    assert properties["Timeout"] == 900 and properties["ReservedConcurrentExecutions"] == 1
    dead_letters = {"Fn::GetAtt": ["WinbackScheduleDeadLetterQueue", "Arn"]}
    assert daily["DeadLetterConfig"] == resume["DeadLetterConfig"] == {"Arn": dead_letters}
    assert properties["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]["Destination"] == dead_letters


def test_the_run_reads_only_its_indexes_and_the_preview_reads_only():
    run, preview = actions("WinbackFunction"), actions("WinbackPreviewFunction")
    assert "dynamodb:Scan" not in run and "dynamodb:Scan" not in preview
    assert run["dynamodb:Query"] == [
        {"Fn::Sub": "${MembersTable.Arn}/index/active-day"},
        {"Fn::Sub": "${MembersTable.Arn}/index/winback-records"},
    ]
    assert set(preview) == {"dynamodb:Query", "dynamodb:GetItem"}
    assert preview["dynamodb:Query"] == {"Fn::Sub": "${MembersTable.Arn}/index/active-day"}
    # The results under their two prefixes, and the activity log's contacts and holdouts (a statement of its own).
    results = next(
        s
        for policy in RESOURCES["WinbackFunction"]["Properties"]["Policies"]
        for s in policy["Statement"]
        if s["Sid"] == "WriteResults"
    )
    assert results["Action"] == "s3:PutObject" and results["Resource"] == [
        {"Fn::Sub": "${WinbackResultsBucket.Arn}/winback/*"},
        {"Fn::Sub": "${WinbackResultsBucket.Arn}/history/*"},
    ]
    assert run["s3:PutObject"] == {"Fn::Sub": "${ActivityBucket.Arn}/activity/*"}


def test_the_preview_route_is_iam_authenticated_and_the_webhook_routes_stay_open():
    route = RESOURCES["WinbackPreviewFunction"]["Properties"]["Events"]["Preview"]["Properties"]
    assert (route["Method"], route["Path"], route["Auth"]) == ("GET", "/winback/preview", {"Authorizer": "AWS_IAM"})
    api = RESOURCES["WebhookApi"]["Properties"]["Auth"]
    assert api == {"EnableIamAuthorizer": True}  # available to routes that ask; no default authorizer


def test_the_results_bucket_is_private_encrypted_tls_only_and_expires_old_runs():
    bucket = RESOURCES["WinbackResultsBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    rules = {rule["Id"]: rule for rule in bucket["LifecycleConfiguration"]["Rules"]}
    assert rules["ExpireRunHistory"]["Prefix"] == "history/" and rules["ExpireRunHistory"]["ExpirationInDays"] > 0
    [statement] = RESOURCES["WinbackResultsBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny" and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_the_members_table_has_the_inactivity_and_records_indexes():
    indexes = {
        gsi["IndexName"]: [key["AttributeName"] for key in gsi["KeySchema"]]
        for gsi in RESOURCES["MembersTable"]["Properties"]["GlobalSecondaryIndexes"]
    }
    assert indexes["active-day"] == ["active_day", "member_id"]
    assert indexes["winback-records"] == ["winback_campaign", "winback_key"]


def test_the_preview_function_runs_with_its_own_environment_only(monkeypatch):
    """The preview's environment holds the members table only (no Mailchimp, no bucket): its code must need no
    more. Run it with exactly that environment, on moto."""
    import boto3
    from moto import mock_aws

    from memberflow.runtime.container import reset

    variables = RESOURCES["WinbackPreviewFunction"]["Properties"]["Environment"]["Variables"]
    assert set(variables) == {"MEMBERS_TABLE_NAME"}
    for name in list(__import__("os").environ):
        if name.startswith(("MAILCHIMP_", "WINBACK_", "MEMBERS_", "TRACE_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MEMBERS_TABLE_NAME", "members")
    for name, value in {
        "AWS_ACCESS_KEY_ID": "t",
        "AWS_SECRET_ACCESS_KEY": "t",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    reset()
    spec = importlib.util.spec_from_file_location("winback_preview_app", ROOT / "functions/winback/preview.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    with mock_aws():
        props = RESOURCES["MembersTable"]["Properties"]
        boto3.client("dynamodb").create_table(
            TableName="members",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=props["AttributeDefinitions"],
            KeySchema=props["KeySchema"],
            GlobalSecondaryIndexes=props["GlobalSecondaryIndexes"],
        )
        spec.loader.exec_module(module)

        class Context:
            function_name, memory_limit_in_mb, aws_request_id = "preview", 256, "r1"
            invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:preview"

        answer = module.handler(
            {"queryStringParameters": {"campaign": "winback", "day": "2026-11-30"}, "requestContext": {}}, Context()
        )
    reset()
    assert answer["statusCode"] == 200, answer
    assert json.loads(answer["body"])["counts"] == {"contacted": 0, "held_out": 0, "excluded": 0}


def results_file(variant_back: int, holdout_back: int) -> dict:
    from memberflow.winback.campaign import parse_campaigns
    from memberflow.winback.ports import AssignmentRecord
    from memberflow.winback.results import summarise

    campaign = parse_campaigns(
        json.dumps({"version": 1, "campaigns": [{"id": "c", "tiers": [{"days": 30, "tag": "wb-30"}]}]})
    ).get("c")
    day = date(2026, 10, 1)
    from datetime import UTC, datetime

    back = datetime(2026, 10, 5, tzinfo=UTC)
    records = [
        AssignmentRecord(f"v{i}", "c", 30, "", day, "tagged", back if i < variant_back else None) for i in range(900)
    ] + [
        AssignmentRecord(f"h{i}", "c", 30, "holdout", day, "holdout", back if i < holdout_back else None)
        for i in range(100)
    ]
    return summarise(campaign, records, date(2026, 11, 30))


@pytest.mark.parametrize(("variant_back", "holdout_back", "verdict"), [(270, 10, "works"), (100, 10, "not shown")])
def test_the_results_command_prints_rates_lift_interval_and_a_verdict(variant_back, holdout_back, verdict):
    from memberflow_cli.winback import results_table

    table = results_table(results_file(variant_back, holdout_back))
    [row] = [line for line in table.splitlines() if " default " in line]
    assert f"{variant_back} of 900 ({100 * variant_back / 900:.1f}%)" in row and row.rstrip().endswith(verdict)
    assert "[" in row and "]" in row  # the interval
    assert any(line.rstrip().endswith("control") for line in table.splitlines())


@pytest.mark.parametrize(("contacted", "held_out"), [(1, 1), (3, 2), (900, 20)])
def test_the_results_command_says_works_only_with_enough_members_in_each_group(contacted, held_out):
    """Everyone contacted came back, nobody held out did: with a group this small that proves nothing."""
    from memberflow.winback.campaign import parse_campaigns
    from memberflow.winback.ports import AssignmentRecord
    from memberflow.winback.results import summarise
    from memberflow_cli.winback import results_table

    campaign = parse_campaigns(
        json.dumps({"version": 1, "campaigns": [{"id": "c", "tiers": [{"days": 30, "tag": "wb-30"}]}]})
    ).get("c")
    day, back = date(2026, 10, 1), datetime(2026, 10, 5, tzinfo=UTC)
    records = [AssignmentRecord(f"v{i}", "c", 30, "", day, "tagged", back) for i in range(contacted)] + [
        AssignmentRecord(f"h{i}", "c", 30, "holdout", day, "holdout") for i in range(held_out)
    ]
    table = results_table(summarise(campaign, records, date(2026, 11, 30)))
    [row] = [line for line in table.splitlines() if " default " in line]
    assert "works" not in row and "too few to tell (< 30 a group)" in row
    assert "+100.0" in row  # the lift is shown, with its interval, just not judged


def test_the_results_command_leaves_open_windows_out_of_the_rates_and_says_so():
    from memberflow.winback.campaign import parse_campaigns
    from memberflow.winback.ports import AssignmentRecord
    from memberflow.winback.results import summarise
    from memberflow_cli.winback import results_table

    campaign = parse_campaigns(
        json.dumps({"version": 1, "campaigns": [{"id": "c", "tiers": [{"days": 30, "tag": "wb-30"}]}]})
    ).get("c")
    today = date(2026, 11, 30)
    recent = today - timedelta(days=10)
    records = [AssignmentRecord(f"v{i}", "c", 30, "", recent, "tagged") for i in range(90)] + [
        AssignmentRecord(f"h{i}", "c", 30, "holdout", recent, "holdout") for i in range(10)
    ]
    records.append(AssignmentRecord("gone", "c", 30, "", recent, "not_tagged"))
    table = results_table(summarise(campaign, records, today))
    [row] = [line for line in table.splitlines() if " default " in line]
    # Nobody is back yet, but nobody's window has closed either: no rate of 0%, and no lift.
    assert "0 of 0 (-)" in row and "0.0%" not in row and row.rstrip().endswith("window not over yet")
    assert "100 members were selected 30 days ago or less" in table
    assert "1 selected members were not contacted" in table


def test_the_preview_command_lists_counts_reasons_and_members():
    from memberflow_cli.winback import preview_lines

    shown = {
        "campaign": "winback",
        "day": "2026-11-30",
        "covers": ["2026-11-30", "2026-11-30"],
        "counts": {"contacted": 2, "held_out": 1, "excluded": 1},
        "excluded_by_reason": {"unsubscribed": 1},
        "tags": {"winback-30-a": 2},
        "members": [
            {"email": "a***@example.org", "tier_days": 30, "inactive_since": "2026-10-31", "outcome": "excluded",
             "why": "unsubscribed"},
        ],
        "members_listed": 1,
    }  # fmt: skip
    text = "\n".join(preview_lines(shown))
    assert "would contact 2, hold out 1, exclude 1" in text and "nothing is sent" in text
    assert "excluded, unsubscribed: 1" in text and "tag winback-30-a: 2" in text and "a***@example.org" in text


def test_the_sample_events_are_what_the_schedules_and_the_route_send():
    from memberflow.models import ScheduledRun

    events = ROOT / "events" / "winback"
    daily = json.loads((events / "scheduled_event.json").read_text())
    resume = json.loads((events / "resume_event.json").read_text())
    assert ScheduledRun.model_validate(daily).time and daily["detail"] == {}
    assert ScheduledRun.model_validate(resume).time and resume["detail"] == {"resume": True}
    request = json.loads((events / "preview_request.json").read_text())
    assert request["_source"] and request["requestContext"]["authorizer"]["iam"]["userArn"]
    route = RESOURCES["WinbackPreviewFunction"]["Properties"]["Events"]["Preview"]["Properties"]
    assert request["routeKey"] == f"{route['Method']} {route['Path']}"
    assert request["queryStringParameters"]["campaign"] == "winback"
