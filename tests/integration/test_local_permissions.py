"""The local stack holds each function to its role in template.yaml: moto would allow any call, AWS allows only what
the role says, so a call the role lacks fails locally (AccessDenied) as it would once deployed."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from memberflow_local.permissions import acting_as
from support.queue import empty_queues, joined, run_onboarding


@pytest.fixture(autouse=True)
def clean(local_stack):
    local_stack.mailchimp.reset()
    empty_queues(local_stack)
    local_stack.permissions.denied.clear()
    yield


def test_a_join_onboarded_makes_only_calls_its_roles_allow(local_stack):
    checked = local_stack.permissions.checked
    answer = run_onboarding(local_stack, joined("perm.ada@example.org", consent=True))
    assert answer == {"batchItemFailures": []}
    assert local_stack.permissions.checked - checked >= 10  # the secrets, the tables, the activity log
    assert local_stack.permissions.denied == []


def test_a_call_outside_the_functions_role_is_refused_as_aws_refuses_it(local_stack):
    dynamodb = local_stack.client("dynamodb")
    members = local_stack.table_name("MembersTable")
    with acting_as("WebhookIntakeFunction"), pytest.raises(ClientError) as refused:
        dynamodb.put_item(TableName=members, Item={"pk": {"S": "MEMBER#x"}, "sk": {"S": "PROFILE"}})
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    [denied] = local_stack.permissions.denied
    assert (denied.function, denied.action) == ("WebhookIntakeFunction", "dynamodb:PutItem")
    assert denied.resource.endswith(f"table/{members}")
    # Outside any function (the stack, a test, the CLI) nothing is checked.
    dynamodb.get_item(TableName=members, Key={"pk": {"S": "MEMBER#x"}, "sk": {"S": "PROFILE"}})


def test_intake_may_write_deliveries_only_under_its_own_key_prefix(local_stack):
    dynamodb = local_stack.client("dynamodb")
    table = local_stack.table_name("IdempotencyTable")
    item = {"expiration": {"N": "1"}}
    with acting_as("WebhookIntakeFunction"):
        dynamodb.put_item(TableName=table, Item={"id": {"S": "memberflow.intake.delivery#slack:1"}, **item})
        with pytest.raises(ClientError):
            dynamodb.put_item(TableName=table, Item={"id": {"S": "memberflow.onboarding#forged"}, **item})
    assert [d.action for d in local_stack.permissions.denied] == ["dynamodb:PutItem"]


def test_batch_calls_are_checked_per_table_and_sqs_batches_by_their_single_action(local_stack):
    audit = local_stack.permissions
    members, trace = local_stack.table_name("MembersTable"), local_stack.table_name("TraceTable")
    read = audit.describe("dynamodb", "BatchGetItem", {"RequestItems": {members: {"Keys": []}, trace: {"Keys": []}}})
    assert read.action == "dynamodb:BatchGetItem" and len(read.resources) == 2
    url = local_stack.queue_url("MemberEventsQueue")
    sent = audit.describe("sqs", "SendMessageBatch", {"QueueUrl": url, "Entries": []})
    assert sent.action == "sqs:SendMessage"
    assert sent.resources == ((local_stack.queue_arn("MemberEventsQueue"), ()),)
