"""Plumbing of the local stack (memberflow_local): template resolution, resources in moto, the HTTP API
bridge, SQS event sources (partial batch failures, redrive to the DLQ) and schedules.

The real functions are not loaded here: tests of template.yaml inject tiny handlers, and the bridge and
pollers run against a small test template with dummy functions written under tmp_path.
"""

from __future__ import annotations

import base64
import json
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
try:
    import memberflow_local  # noqa: F401
except ImportError:  # the project is not installed editable: use the source tree
    sys.path.insert(0, str(ROOT / "infra" / "localstack"))

from memberflow_local import LocalSettings, LocalStack, LocalTemplate, TemplateError  # noqa: E402
from memberflow_local.event_sources import SqsPoller, failed_message_ids, lambda_sqs_record  # noqa: E402
from memberflow_local.http_api import build_http_api_event, is_text_content_type  # noqa: E402
from memberflow_local.runtime import FunctionRuntime  # noqa: E402
from memberflow_local.template import HttpApiRoute, ScheduleSource, SqsSource  # noqa: E402

TEMPLATE = ROOT / "template.yaml"


def _settings(**overrides: Any) -> LocalSettings:
    return LocalSettings.from_env({}, api_port=0, aws_port=0, mailchimp_port=0, **overrides)


# ------------------------------------------------------------------------------ template.yaml
def test_template_resolves_the_three_functions_and_their_events() -> None:
    template = LocalTemplate.load(TEMPLATE, _settings().parameter_overrides("http://127.0.0.1:9/3.0"))

    assert set(template.functions) == {
        "WebhookIntakeFunction",
        "OnboardingFunction",
        "OnboardingDripFunction",
    }

    intake = template.functions["WebhookIntakeFunction"]
    assert intake.code_dir == ROOT / "functions" / "webhook_intake"
    assert intake.handler == "app.handler" and intake.timeout == 10
    assert intake.events == [HttpApiRoute("POST", "/webhooks/{source}", "Webhook", "WebhookApi")]

    onboarding = template.functions["OnboardingFunction"]
    assert onboarding.timeout == 60
    (sqs,) = onboarding.events
    assert isinstance(sqs, SqsSource)
    assert (
        sqs.queue_logical_id,
        sqs.batch_size,
        sqs.report_batch_item_failures,
        sqs.maximum_concurrency,
    ) == (
        "MemberEventsQueue",
        10,
        True,
        5,
    )

    drip = template.functions["OnboardingDripFunction"]
    (schedule,) = drip.events
    assert isinstance(schedule, ScheduleSource)
    assert (schedule.name, schedule.expression, schedule.type) == (
        "DripSchedule",
        "rate(1 hour)",
        "ScheduleV2",
    )

    # Globals merged with each function's variables, parameters resolved
    env = onboarding.environment
    assert env["POWERTOOLS_SERVICE_NAME"] == "memberflow"
    assert env["POWERTOOLS_LOG_LEVEL"] == "INFO"
    assert env["TRACE_TABLE_NAME"] == "memberflow-local-TraceTable"
    assert env["MEMBERS_TABLE_NAME"] == "memberflow-local-MembersTable"
    assert env["MAILCHIMP_API_URL"] == "http://127.0.0.1:9/3.0"
    assert env["MAILCHIMP_LIST_ID"] == "list123"
    assert env["RETRY_BASE_SECONDS"] == "1"  # local override
    assert env["MAX_RECEIVE_COUNT"] == "5"  # template default
    assert env["DRIP_STEP_DAYS"] == "1,3,7"
    assert intake.environment["MAX_BODY_BYTES"] == "262144"


def test_template_queue_redrive_policy() -> None:
    template = LocalTemplate.load(TEMPLATE, _settings().parameter_overrides())
    queue = template.queues["MemberEventsQueue"]
    assert queue.dead_letter_queue == "MemberEventsDeadLetterQueue"
    assert queue.max_receive_count == 5
    assert queue.properties["VisibilityTimeout"] == 360

    overridden = LocalTemplate.load(TEMPLATE, _settings(max_receive_count=3).parameter_overrides())
    assert overridden.queues["MemberEventsQueue"].max_receive_count == 3


def test_template_requires_parameters_without_default() -> None:
    with pytest.raises(TemplateError, match="MailchimpListId"):
        LocalTemplate.load(TEMPLATE, {})
    with pytest.raises(TemplateError, match="unknown parameter"):
        LocalTemplate.load(TEMPLATE, {**_settings().parameter_overrides(), "Nope": "1"})


def test_settings_env_overrides() -> None:
    settings = LocalSettings.from_env(
        {
            "MEMBERFLOW_LOCAL_API_PORT": "3100",
            "MEMBERFLOW_LOCAL_MAX_RECEIVE_COUNT": "7",
            "MEMBERFLOW_LOCAL_MAILCHIMP_LIST_ID": "abc",
        }
    )
    assert (settings.api_port, settings.max_receive_count, settings.mailchimp_list_id) == (3100, 7, "abc")
    assert len(bytes.fromhex(settings.discord_relay_public_key)) == 32


# ------------------------------------------------------------------------------ the real template in moto
@pytest.fixture
def real_stack():
    calls: list[tuple[str, Any]] = []

    def recorder(name: str):
        def handler(event: Any, context: Any) -> Any:
            calls.append((name, event))
            return {"name": name, "remaining": context.get_remaining_time_in_millis()}

        return handler

    handlers = {
        name: recorder(name) for name in ("WebhookIntakeFunction", "OnboardingFunction", "OnboardingDripFunction")
    }
    with LocalStack(_settings(), mailchimp=False, pollers=False, handlers=handlers) as stack:
        stack.calls = calls  # type: ignore[attr-defined]
        yield stack


def test_every_table_queue_and_secret_of_the_template_exists_in_moto(real_stack: LocalStack) -> None:
    template = real_stack.template
    assert template is not None
    ddb = real_stack.client("dynamodb")
    assert set(template.tables) == {"MembersTable", "IdempotencyTable", "TraceTable"}
    for logical_id, spec in template.tables.items():
        table = ddb.describe_table(TableName=real_stack.table_name(logical_id))["Table"]
        assert table["KeySchema"] == spec.properties["KeySchema"]
        want_gsis = {g["IndexName"]: g["KeySchema"] for g in spec.properties.get("GlobalSecondaryIndexes", [])}
        got_gsis = {g["IndexName"]: g["KeySchema"] for g in table.get("GlobalSecondaryIndexes", [])}
        assert got_gsis == want_gsis
        ttl = spec.properties.get("TimeToLiveSpecification")
        if ttl:
            desc = ddb.describe_time_to_live(TableName=table["TableName"])["TimeToLiveDescription"]
            assert desc["AttributeName"] == ttl["AttributeName"]
    members = ddb.describe_table(TableName=real_stack.table_name("MembersTable"))["Table"]
    (gsi,) = members["GlobalSecondaryIndexes"]
    assert gsi["IndexName"] == "drip-due"
    assert gsi["KeySchema"] == [
        {"AttributeName": "drip_queue", "KeyType": "HASH"},
        {"AttributeName": "drip_due_at", "KeyType": "RANGE"},
    ]
    assert gsi["Projection"]["ProjectionType"] == "ALL"

    sqs = real_stack.client("sqs")
    attrs = sqs.get_queue_attributes(QueueUrl=real_stack.queue_url("MemberEventsQueue"), AttributeNames=["All"])[
        "Attributes"
    ]
    assert attrs["VisibilityTimeout"] == "360"
    redrive = json.loads(attrs["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == real_stack.queue_arn("MemberEventsDeadLetterQueue")
    assert int(redrive["maxReceiveCount"]) == 5

    sm = real_stack.client("secretsmanager")
    webhook = json.loads(sm.get_secret_value(SecretId=real_stack.secret_arn("WebhookSigningSecrets"))["SecretString"])
    assert webhook == real_stack.settings.webhook_secrets()
    mailchimp = json.loads(sm.get_secret_value(SecretId=real_stack.secret_arn("MailchimpApiSecret"))["SecretString"])
    assert mailchimp == {"api_key": "local-key-us1"}

    # the functions see the created resources
    env = template.functions["OnboardingFunction"].environment
    assert env["MEMBER_EVENTS_QUEUE_URL"] == real_stack.queue_url("MemberEventsQueue")
    assert env["MAILCHIMP_SECRET_ARN"] == real_stack.secret_arn("MailchimpApiSecret")
    assert env["DEAD_LETTER_QUEUE_URL"] == real_stack.queue_url("MemberEventsDeadLetterQueue")


def test_real_template_routes_and_schedules(real_stack: LocalStack) -> None:
    api = real_stack.endpoints()["api_url"]
    response = requests.post(f"{api}/webhooks/slack", json={"type": "url_verification"}, timeout=10)
    assert response.status_code == 200
    name, event = real_stack.calls[-1]  # type: ignore[attr-defined]
    assert name == "WebhookIntakeFunction"
    assert event["pathParameters"] == {"source": "slack"}

    at = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    result = real_stack.fire_schedule("dripschedule", at)
    assert result["name"] == "OnboardingDripFunction"
    assert result["remaining"] > 290_000  # Timeout 300 s
    _, event = real_stack.calls[-1]  # type: ignore[attr-defined]
    assert event["detail-type"] == "Scheduled Event"
    assert event["time"] == "2025-03-01T12:00:00Z"
    assert event["resources"][0].startswith("arn:aws:scheduler:us-east-1:123456789012:schedule/")
    real_stack.fire_schedule("OnboardingDripFunction")

    with pytest.raises(KeyError, match="DripSchedule"):
        real_stack.fire_schedule("nope")

    admin = requests.post(f"{api}/_local/schedules/DripSchedule", json={"at": "2025-03-02T00:00:00Z"}, timeout=10)
    assert admin.status_code == 200
    assert admin.json()["function"] == "OnboardingDripFunction"
    assert real_stack.calls[-1][1]["time"] == "2025-03-02T00:00:00Z"  # type: ignore[attr-defined]
    unknown = requests.post(f"{api}/_local/schedules/nope", timeout=10)
    assert unknown.status_code == 404 and "DripSchedule" in unknown.json()["valid"]
    drained = requests.post(f"{api}/_local/drain", json={"timeout": 5}, timeout=10)
    assert drained.json() == {"drained": True}


def test_only_one_stack_per_process(real_stack: LocalStack) -> None:
    with pytest.raises(RuntimeError, match="another LocalStack"):
        LocalStack(_settings(), mailchimp=False).start()


# ------------------------------------------------------------------------------ a small test template
TEST_TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  MaxReceiveCount:
    Type: Number
    Default: 2
Globals:
  Function:
    Runtime: python3.12
    Timeout: 5
    Environment:
      Variables:
        SHARED_NAME: !Sub "${AWS::StackName}-shared"
Resources:
  WorkDlq:
    Type: AWS::SQS::Queue
  WorkQueue:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 1
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt WorkDlq.Arn
        maxReceiveCount: !Ref MaxReceiveCount
  ApiFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/api/
      Handler: app.handler
      Environment:
        Variables:
          WORK_QUEUE_URL: !Ref WorkQueue
      Events:
        Hook:
          Type: HttpApi
          Properties:
            Method: POST
            Path: /webhooks/{source}
        Items:
          Type: HttpApi
          Properties:
            Method: GET
            Path: /items/{proxy+}
  WorkerFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/worker/
      Handler: app.handler
      Events:
        Work:
          Type: SQS
          Properties:
            Queue: !GetAtt WorkQueue.Arn
            BatchSize: 10
            FunctionResponseTypes: [ReportBatchItemFailures]
            ScalingConfig:
              MaximumConcurrency: 2
        Tick:
          Type: Schedule
          Properties:
            Schedule: rate(5 minutes)
"""

API_APP = """\
import json, os

def handler(event, context):
    params = event.get("pathParameters") or {}
    source = params.get("source") or params.get("proxy")
    if source == "boom":
        raise RuntimeError("boom")
    if source == "plain":
        return "just text"
    if source == "dict":
        return {"hello": "world"}
    return {
        "statusCode": 201,
        "headers": {"content-type": "application/json", "x-function": context.function_name},
        "cookies": ["a=1"],
        "body": json.dumps({"event": event, "queue": os.environ["WORK_QUEUE_URL"],
                            "shared": os.environ["SHARED_NAME"], "module": __name__}),
    }
"""

WORKER_APP = """\
CALLS = []

def handler(event, context):
    failures = []
    for record in event.get("Records", []):
        CALLS.append((record["body"], record["attributes"]["ApproximateReceiveCount"]))
        if record["body"].startswith("fail"):
            failures.append({"itemIdentifier": record["messageId"]})
    if not event.get("Records"):
        CALLS.append(("scheduled", event))
    return {"batchItemFailures": failures}
"""


@pytest.fixture
def test_stack(tmp_path: Path):
    (tmp_path / "template.yaml").write_text(TEST_TEMPLATE)
    for name, code in (("api", API_APP), ("worker", WORKER_APP)):
        (tmp_path / "functions" / name).mkdir(parents=True)
        (tmp_path / "functions" / name / "app.py").write_text(textwrap.dedent(code))
    with LocalStack(_settings(), template_path=tmp_path / "template.yaml", mailchimp=False) as stack:
        yield stack


def test_http_bridge_builds_payload_v2_events(test_stack: LocalStack) -> None:
    api = test_stack.endpoints()["api_url"]
    response = requests.post(
        f"{api}/webhooks/discourse?x=1&x=2&y=",
        data=json.dumps({"user": {"id": 1}}),
        headers={"Content-Type": "application/json", "X-Multi": "a", "Cookie": "c1=v1; c2=v2"},
        timeout=10,
    )
    assert response.status_code == 201
    assert response.headers["x-function"] == "memberflow-local-ApiFunction"
    assert response.headers["set-cookie"] == "a=1"
    payload = response.json()
    event = payload["event"]
    assert payload["queue"] == test_stack.queue_url("WorkQueue")
    assert payload["shared"] == "memberflow-local-shared"
    assert payload["module"] == "memberflow_local_fn_ApiFunction"

    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /webhooks/{source}"
    assert event["rawPath"] == "/webhooks/discourse"
    assert event["rawQueryString"] == "x=1&x=2&y="
    assert event["queryStringParameters"] == {"x": "1,2", "y": ""}
    assert event["pathParameters"] == {"source": "discourse"}
    assert event["cookies"] == ["c1=v1", "c2=v2"]
    assert "cookie" not in event["headers"]
    assert event["headers"]["content-type"] == "application/json"
    assert event["headers"]["x-multi"] == "a"
    assert all(k == k.lower() for k in event["headers"])
    assert event["isBase64Encoded"] is False
    assert json.loads(event["body"]) == {"user": {"id": 1}}
    ctx = event["requestContext"]
    assert ctx["http"]["method"] == "POST" and ctx["http"]["path"] == "/webhooks/discourse"
    assert ctx["http"]["sourceIp"] == "127.0.0.1"
    assert ctx["routeKey"] == "POST /webhooks/{source}" and ctx["stage"] == "$default"
    assert ctx["requestId"] and ctx["timeEpoch"] > 0 and ctx["accountId"] == "123456789012"


def test_http_bridge_base64_encodes_form_and_binary_bodies(test_stack: LocalStack) -> None:
    api = test_stack.endpoints()["api_url"]
    form = requests.post(
        f"{api}/webhooks/mailchimp", data={"type": "subscribe", "data[email]": "a@b.c"}, timeout=10
    ).json()["event"]
    assert form["isBase64Encoded"] is True
    assert base64.b64decode(form["body"]) == b"type=subscribe&data%5Bemail%5D=a%40b.c"

    raw = bytes(range(256))
    binary = requests.post(
        f"{api}/webhooks/bin", data=raw, headers={"Content-Type": "application/octet-stream"}, timeout=10
    ).json()["event"]
    assert binary["isBase64Encoded"] is True and base64.b64decode(binary["body"]) == raw

    text = requests.post(
        f"{api}/webhooks/txt", data="héllo".encode(), headers={"Content-Type": "text/plain"}, timeout=10
    ).json()["event"]
    assert text["isBase64Encoded"] is False and text["body"] == "héllo"


def test_http_bridge_routes_results_and_errors(test_stack: LocalStack) -> None:
    api = test_stack.endpoints()["api_url"]
    missing = requests.post(f"{api}/nope", timeout=10)
    assert missing.status_code == 404 and missing.json() == {"message": "Not Found"}
    wrong_method = requests.get(f"{api}/webhooks/slack", timeout=10)
    assert wrong_method.status_code == 404
    too_deep = requests.post(f"{api}/webhooks/a/b", timeout=10)
    assert too_deep.status_code == 404

    greedy = requests.get(f"{api}/items/a/b/c", timeout=10).json()["event"]
    assert greedy["pathParameters"] == {"proxy": "a/b/c"}
    assert greedy["routeKey"] == "GET /items/{proxy+}"
    assert "body" not in greedy

    boom = requests.post(f"{api}/webhooks/boom", timeout=10)
    assert boom.status_code == 500 and boom.json() == {"message": "Internal Server Error"}

    plain = requests.post(f"{api}/webhooks/plain", timeout=10)
    assert plain.status_code == 200 and plain.text == "just text"
    assert plain.headers["content-type"].startswith("application/json")
    as_dict = requests.post(f"{api}/webhooks/dict", timeout=10)
    assert as_dict.status_code == 200 and as_dict.json() == {"hello": "world"}


def test_sqs_partial_batch_failure_redelivers_and_dead_letters(test_stack: LocalStack) -> None:
    sqs = test_stack.client("sqs")
    queue_url = test_stack.queue_url("WorkQueue")
    sqs.send_message_batch(
        QueueUrl=queue_url,
        Entries=[{"Id": str(i), "MessageBody": body} for i, body in enumerate(["ok-1", "ok-2", "fail-1", "ok-3"])],
    )

    dlq_url = test_stack.queue_url("WorkDlq")
    deadline = time.monotonic() + 20
    dead: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not dead:
        dead = sqs.receive_message(QueueUrl=dlq_url, WaitTimeSeconds=1).get("Messages", [])
    assert [m["Body"] for m in dead] == ["fail-1"]
    assert test_stack.drain(timeout=10)

    calls = sys.modules["memberflow_local_fn_WorkerFunction"].CALLS
    bodies = [body for body, _ in calls if body != "scheduled"]
    # successes were deleted after their first delivery
    assert sorted(b for b in bodies if b.startswith("ok")) == ["ok-1", "ok-2", "ok-3"]
    # the failure came back until maxReceiveCount (2), then SQS moved it to the DLQ
    assert [count for body, count in calls if body == "fail-1"] == ["1", "2"]


def test_schedule_without_input_gets_the_scheduled_event_shape(test_stack: LocalStack) -> None:
    test_stack.fire_schedule("tick", datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC))
    calls = sys.modules["memberflow_local_fn_WorkerFunction"].CALLS
    ((_, event),) = [c for c in calls if c[0] == "scheduled"]
    assert event["source"] == "aws.events" and event["detail-type"] == "Scheduled Event"
    assert event["time"] == "2025-01-02T03:04:05Z" and event["detail"] == {}
    assert event["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/WorkerFunctionTick"]


# ------------------------------------------------------------------------------ pure helpers
class _FakeSqs:
    def __init__(self) -> None:
        self.deleted: list[str] = []

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:  # noqa: N803
        self.deleted += [e["ReceiptHandle"] for e in Entries]
        return {"Successful": [{"Id": e["Id"]} for e in Entries]}


def _messages(n: int) -> list[dict[str, Any]]:
    return [
        {
            "MessageId": f"m{i}",
            "ReceiptHandle": f"r{i}",
            "Body": f"b{i}",
            "MD5OfBody": "x",
            "Attributes": {
                "ApproximateReceiveCount": "1",
                "SentTimestamp": "1",
                "SenderId": "s",
                "ApproximateFirstReceiveTimestamp": "1",
            },
        }
        for i in range(n)
    ]


def _poller(handler: Any, report: bool = True) -> SqsPoller:
    from memberflow_local.template import FunctionSpec

    spec = FunctionSpec("Fn", Path("."), "app.handler", timeout=3)
    return SqsPoller(
        SqsSource("Q", 10, report, 2),
        FunctionRuntime(spec, handler),
        queue_url="http://q",
        queue_arn="arn:aws:sqs:us-east-1:123456789012:q",
        client_factory=lambda: None,
    )


@pytest.mark.parametrize(
    ("result", "deleted"),
    [
        ({"batchItemFailures": [{"itemIdentifier": "m1"}]}, ["r0", "r2"]),
        ({"batchItemFailures": []}, ["r0", "r1", "r2"]),
        (None, ["r0", "r1", "r2"]),
        ({}, ["r0", "r1", "r2"]),
        ({"batchItemFailures": [{"itemIdentifier": "unknown"}]}, []),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, []),
        ({"batchItemFailures": [{"id": "m1"}]}, []),
        ("not a dict", []),
    ],
)
def test_batch_item_failures_semantics(result: Any, deleted: list[str]) -> None:
    sqs = _FakeSqs()
    _poller(lambda event, context: result).process(sqs, _messages(3))
    assert sqs.deleted == deleted


def test_handler_exception_keeps_the_whole_batch() -> None:
    def boom(event: Any, context: Any) -> Any:
        raise RuntimeError("x")

    sqs = _FakeSqs()
    _poller(boom).process(sqs, _messages(3))
    assert sqs.deleted == []
    sqs = _FakeSqs()
    _poller(lambda e, c: "anything", report=False).process(sqs, _messages(2))
    assert sqs.deleted == ["r0", "r1"]


def test_lambda_sqs_record_shape() -> None:
    message = _messages(1)[0]
    message["MessageAttributes"] = {
        "s": {"DataType": "String", "StringValue": "v"},
        "b": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
    }
    record = lambda_sqs_record(message, "arn:aws:sqs:us-east-1:123456789012:q")
    assert record["eventSource"] == "aws:sqs" and record["awsRegion"] == "us-east-1"
    assert record["eventSourceARN"] == "arn:aws:sqs:us-east-1:123456789012:q"
    assert record["messageAttributes"]["s"] == {
        "stringValue": "v",
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "String",
    }
    assert record["messageAttributes"]["b"]["binaryValue"] == "AAE="
    assert set(record["attributes"]) == {
        "ApproximateReceiveCount",
        "SentTimestamp",
        "SenderId",
        "ApproximateFirstReceiveTimestamp",
    }
    assert failed_message_ids({"batchItemFailures": None}, ["m0"]) == set()


def test_content_types_and_event_builder() -> None:
    assert is_text_content_type("application/json; charset=utf-8")
    assert is_text_content_type("application/vnd.api+json")
    assert is_text_content_type("text/plain")
    assert not is_text_content_type("application/x-www-form-urlencoded")
    assert not is_text_content_type(None)
    event = build_http_api_event(
        method="post",
        path="/webhooks/x",
        query_string="",
        headers=[("X-A", "1"), ("x-a", "2")],
        body=b"",
        route_key="POST /webhooks/{source}",
        path_parameters={"source": "x"},
    )
    assert event["headers"] == {"x-a": "1,2"}
    assert "queryStringParameters" not in event and "body" not in event
    assert event["isBase64Encoded"] is False
