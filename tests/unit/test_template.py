"""The SAM template's promises: least privilege, one role per function, a safe SQS wiring, the runtime."""

from pathlib import Path

import pytest

from memberflow_local.template import load_yaml

TEMPLATE = load_yaml(Path(__file__).resolve().parents[2] / "template.yaml")
RESOURCES = TEMPLATE["Resources"]
FUNCTIONS = {name: r for name, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::Function"}


def statements(function: dict) -> list[dict]:
    found = []
    for policy in function["Properties"].get("Policies", []):
        # SAM policy templates expand to wildcard actions (SQSSendMessagePolicy grants sqs:SendMessage*).
        assert isinstance(policy, dict) and set(policy) == {"Statement"}, f"use explicit statements, not {policy}"
        found += policy["Statement"]
    return found


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_function_policies_name_every_action(name):
    for statement in statements(FUNCTIONS[name]):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all("*" not in action for action in actions), (name, actions)
        assert statement["Resource"] != "*", (name, statement)
    assert "Role" not in FUNCTIONS[name]["Properties"], "each function gets its own generated role"


def test_runtime_is_python_312_or_newer_on_arm64():
    globals_ = TEMPLATE["Globals"]["Function"]
    assert globals_["Runtime"] in {"python3.12", "python3.13"}
    assert globals_["Architectures"] == ["arm64"]


def test_onboarding_queue_wiring_follows_lambda_guidance():
    queue = RESOURCES["MemberEventsQueue"]["Properties"]
    function = FUNCTIONS["OnboardingFunction"]["Properties"]
    [source] = [e["Properties"] for e in function["Events"].values() if e["Type"] == "SQS"]
    assert queue["VisibilityTimeout"] >= 6 * function["Timeout"]
    assert "maxReceiveCount" in queue["RedrivePolicy"]
    assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert 2 <= source["ScalingConfig"]["MaximumConcurrency"] < 10  # Mailchimp allows 10 connections


def test_secrets_live_in_secrets_manager_not_in_function_environment():
    for function in FUNCTIONS.values():
        variables = function["Properties"].get("Environment", {}).get("Variables", {})
        assert not any("KEY" in name and "ARN" not in name for name in variables), variables


def test_operations_dashboard_body_is_valid_json_once_substituted():
    import json
    import re

    body = RESOURCES["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    widgets = json.loads(re.sub(r"\$\{[^}]+\}", "placeholder", body))["widgets"]
    assert {"Member events queue and dead-letter queue"} <= {w["properties"]["title"] for w in widgets}


def test_intake_reads_and_writes_only_its_own_delivery_records_in_the_idempotency_table():
    from memberflow.adapters.delivery_log import ID_PREFIX

    intake = FUNCTIONS["WebhookIntakeFunction"]["Properties"]
    on_table = [
        s
        for s in statements(FUNCTIONS["WebhookIntakeFunction"])
        if s["Resource"] == {"Fn::GetAtt": ["IdempotencyTable", "Arn"]}
    ]
    assert [sorted(s["Action"]) for s in on_table] == [["dynamodb:GetItem", "dynamodb:PutItem"]]
    assert on_table[0]["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [ID_PREFIX + "*"]}}
    assert intake["Environment"]["Variables"]["IDEMPOTENCY_TABLE_NAME"] == {"Ref": "IdempotencyTable"}
