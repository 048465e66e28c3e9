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
def test_template_resolves_the_functions_and_their_events() -> None:
    # The onboarding queue's concurrency is a parameter now (its share of the Mailchimp connection budget).
    # Its batch size too (default 100 now: a wave's fresh joins go to Mailchimp in bulk).
    settings = _settings(extra_parameter_overrides={"OnboardingMaxConcurrency": "5", "OnboardingBatchSize": "10"})
    template = LocalTemplate.load(TEMPLATE, settings.parameter_overrides("http://127.0.0.1:9/3.0"))

    assert set(template.functions) == {
        "WebhookIntakeFunction",
        "OnboardingFunction",
        "OnboardingDripFunction",
        "DeadLetterRedriveFunction",
        "EscalationFunction",
        "HealthReportFunction",
        "WinbackFunction",
        "WinbackPreviewFunction",
        "MemberImportFunction",
        "EventSyncFunction",
        "EventReconcileFunction",
    }

    intake = template.functions["WebhookIntakeFunction"]
    assert intake.code_dir == ROOT / "functions" / "webhook_intake"
    assert intake.handler == "app.handler" and intake.timeout == 10
    assert intake.events == [
        HttpApiRoute("POST", "/webhooks/{source}", "Webhook", "WebhookApi"),
        HttpApiRoute("POST", "/escalations", "Escalations", "WebhookApi"),
        HttpApiRoute("POST", "/webhooks/{source}/{secret}", "WebhookWithSecretPath", "WebhookApi"),
        HttpApiRoute("GET", "/webhooks/{source}/{secret}", "WebhookUrlCheck", "WebhookApi"),
    ]

    onboarding = template.functions["OnboardingFunction"]
    assert onboarding.timeout == 180
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

    redrive = template.functions["DeadLetterRedriveFunction"]
    (redrive_schedule,) = redrive.events
    assert isinstance(redrive_schedule, ScheduleSource)
    assert (redrive_schedule.name, redrive_schedule.expression) == ("DeadLetterRedriveSchedule", "rate(5 minutes)")

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
    assert queue.max_receive_count == 50  # MaxDeliveries: outage deferrals do not spend a member's attempts
    assert queue.properties["VisibilityTimeout"] == 1080

    overridden = LocalTemplate.load(TEMPLATE, _settings(max_deliveries=3).parameter_overrides())
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


def _batching_windows(settings: LocalSettings) -> dict[str, float]:
    template = LocalTemplate.load(TEMPLATE, settings.parameter_overrides("http://127.0.0.1:9/3.0"))
    return {
        name: source.maximum_batching_window_seconds
        for name in ("OnboardingFunction", "EscalationFunction")
        for source in template.functions[name].events
        if isinstance(source, SqsSource)
    }


def test_the_local_stack_gathers_batches_for_one_second_and_a_deploy_keeps_the_template_windows() -> None:
    # Locally a lone join or escalation is handled within about a second; deployed, Lambda waits the template's
    # windows (2 s, 5 s) to fill a batch.
    assert _batching_windows(_settings()) == {"OnboardingFunction": 1.0, "EscalationFunction": 1.0}
    deployed = LocalSettings.from_env({"MEMBERFLOW_LOCAL_BATCHING_WINDOW_SECONDS": "none"})
    assert _batching_windows(deployed) == {"OnboardingFunction": 2.0, "EscalationFunction": 5.0}


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
    # Without the sandboxes (services.SERVICES): the secrets are then exactly what the settings give.
    with LocalStack(_settings(), mailchimp=False, services=False, pollers=False, handlers=handlers) as stack:
        stack.calls = calls  # type: ignore[attr-defined]
        yield stack


def test_every_table_queue_and_secret_of_the_template_exists_in_moto(real_stack: LocalStack) -> None:
    template = real_stack.template
    assert template is not None
    ddb = real_stack.client("dynamodb")
    assert set(template.tables) == {
        "MembersTable",
        "IdempotencyTable",
        "TraceTable",
        "TicketLinksTable",
        "RegistrationsTable",
    }
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
    gsi = next(g for g in members["GlobalSecondaryIndexes"] if g["IndexName"] == "drip-due")
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
    assert attrs["VisibilityTimeout"] == "1080"
    redrive = json.loads(attrs["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == real_stack.queue_arn("MemberEventsDeadLetterQueue")
    assert int(redrive["maxReceiveCount"]) == 50

    sm = real_stack.client("secretsmanager")
    webhook = json.loads(sm.get_secret_value(SecretId=real_stack.secret_arn("WebhookSigningSecrets"))["SecretString"])
    assert webhook == real_stack.settings.webhook_secrets()
    mailchimp = json.loads(sm.get_secret_value(SecretId=real_stack.secret_arn("MailchimpApiSecret"))["SecretString"])
    assert mailchimp == {"api_key": "local-key-us1"}

    # the functions see the created resources
    env = template.functions["OnboardingFunction"].environment
    assert env["QUEUE_URL"] == real_stack.queue_url("MemberEventsQueue")
    intake_env = template.functions["WebhookIntakeFunction"].environment
    assert json.loads(intake_env["EVENT_DESTINATIONS"]) == {
        "member-events": real_stack.queue_url("MemberEventsQueue"),
        "escalations": real_stack.queue_url("EscalationsQueue"),
        "member-imports": real_stack.queue_url("MemberImportQueue"),  # the import chunks' destination
        "registrations": real_stack.queue_url("RegistrationsQueue"),
    }
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


def test_a_stack_makes_one_client_per_service_shared_by_its_threads(real_stack: LocalStack) -> None:
    """Making a boto3 client costs more than most local calls: the stack makes each once (and the process one
    session), and boto3's clients are safe to share between threads."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        clients = set(pool.map(lambda _: id(real_stack.client("sqs")), range(8)))
    assert clients == {id(real_stack.client("sqs"))}
    assert real_stack.client("dynamodb") is not real_stack.client("sqs")
    assert real_stack.client("sqs").list_queues()["QueueUrls"]  # and it answers


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
import json, os, time

def handler(event, context):
    params = event.get("pathParameters") or {}
    source = params.get("source") or params.get("proxy")
    if source and source.startswith("slow"):
        time.sleep(0.5)
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
    with LocalStack(
        _settings(http_max_containers=4), template_path=tmp_path / "template.yaml", mailchimp=False
    ) as stack:
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
    assert payload["module"] == "memberflow_local_fn_ApiFunction_1"  # the first container, reused (warm)

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

    calls = _worker_calls(test_stack)
    bodies = [body for body, _ in calls if body != "scheduled"]
    # successes were deleted after their first delivery
    assert sorted(b for b in bodies if b.startswith("ok")) == ["ok-1", "ok-2", "ok-3"]
    # the failure came back until maxReceiveCount (2), then SQS moved it to the DLQ
    assert sorted(count for body, count in calls if body == "fail-1") == ["1", "2"]


def test_idle_pollers_wait_in_long_polls_and_the_stack_still_stops_at_once(
    test_stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As Lambda's pollers: 20-second long polls, so an idle stack makes no ReceiveMessage call a second per poller
    thread (it made one each second before); stopping ends the waiting polls rather than waiting them out."""
    from moto.sqs.responses import SQSResponse

    received: list[float] = []
    receive = SQSResponse.receive_message
    monkeypatch.setattr(SQSResponse, "receive_message", lambda self: received.append(time.monotonic()) or receive(self))
    time.sleep(3.5)
    threads = sum(poller.workers for poller in test_stack.event_sources.pollers)
    assert len(received) <= threads  # at most the long polls begun while the count began

    sqs = test_stack.client("sqs")
    sqs.send_message(QueueUrl=test_stack.queue_url("WorkQueue"), MessageBody="ok-idle")
    assert test_stack.drain(timeout=10)
    assert ("ok-idle", "1") in _worker_calls(test_stack)  # a waiting long poll took it

    began = time.monotonic()
    test_stack.event_sources.stop()
    assert time.monotonic() - began < 2  # not the 20 seconds of the polls in flight


def _worker_calls(stack: LocalStack) -> list[Any]:
    """CALLS of every WorkerFunction container (each container is its own load of app.py)."""
    return [call for module in stack.function("WorkerFunction").modules for call in module.CALLS]


def test_schedule_without_input_gets_the_scheduled_event_shape(test_stack: LocalStack) -> None:
    test_stack.fire_schedule("tick", datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC))
    calls = _worker_calls(test_stack)
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


# ------------------------------------------------------------------------------ containers (execution environments)
POOL_APP = """\
import os, threading, time

with open(os.environ["LOADS_FILE"], "a") as f:  # one line per load of this module (= per container)
    f.write(__name__ + "\\n")

_lock = threading.Lock()
ACTIVE = 0
MAX_ACTIVE = 0
INVOCATIONS = 0


def handler(event, context):
    global ACTIVE, MAX_ACTIVE, INVOCATIONS
    with _lock:
        ACTIVE += 1
        MAX_ACTIVE = max(MAX_ACTIVE, ACTIVE)
        INVOCATIONS += 1
    try:
        time.sleep(event.get("sleep", 0))
        return {"module": __name__, "request": context.aws_request_id, "stream": context.log_stream_name}
    finally:
        with _lock:
            ACTIVE -= 1
"""


@pytest.fixture
def pool_function(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A FunctionSpec for POOL_APP; loads are listed in tmp_path/loads.txt."""
    from memberflow_local.template import FunctionSpec

    code = tmp_path / "pool"
    code.mkdir()
    (code / "app.py").write_text(POOL_APP)
    loads = tmp_path / "loads.txt"
    loads.touch()
    monkeypatch.setenv("LOADS_FILE", str(loads))  # restored after the test (the runtime sets it again)
    spec = FunctionSpec("PoolFunction", code, "app.handler", timeout=10, environment={"LOADS_FILE": str(loads)})

    def make(max_containers: int) -> FunctionRuntime:
        runtime = FunctionRuntime(spec, max_containers=max_containers)
        runtimes.append(runtime)
        return runtime

    runtimes: list[FunctionRuntime] = []
    make.loads = lambda: loads.read_text().split()  # type: ignore[attr-defined]
    yield make
    for runtime in runtimes:
        runtime.close()


def _invoke_concurrently(runtime: FunctionRuntime, n: int, sleep: float) -> list[dict[str, Any]]:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(lambda _: runtime.invoke({"sleep": sleep}), range(n)))


def test_concurrent_invocations_run_in_separate_containers(pool_function: Any) -> None:
    runtime = pool_function(3)
    results = _invoke_concurrently(runtime, 3, sleep=0.5)

    names = sorted(r["module"] for r in results)
    assert names == [f"memberflow_local_fn_PoolFunction_{n}" for n in (1, 2, 3)]
    assert sorted(pool_function.loads()) == names  # one load of app.py per container
    modules = runtime.modules
    assert len({id(m) for m in modules}) == 3
    assert all(m.MAX_ACTIVE == 1 and m.INVOCATIONS == 1 for m in modules)  # one invocation at a time each
    assert len({r["request"] for r in results}) == 3  # a LambdaContext per invocation
    # the log stream belongs to the container, as in Lambda
    streams = {c.module_name: c.log_stream_name for c in runtime.containers}
    assert all(streams[r["module"]] == r["stream"] for r in results)
    assert runtime.handler is runtime.containers[0].handler


def test_a_free_container_is_reused_without_a_new_load(pool_function: Any) -> None:
    runtime = pool_function(3)
    for _ in range(4):
        assert runtime.invoke({})["module"] == "memberflow_local_fn_PoolFunction_1"
    assert pool_function.loads() == ["memberflow_local_fn_PoolFunction_1"]
    (container,) = runtime.containers
    assert container.invocations == 4 and container.module.INVOCATIONS == 4

    # after a burst, the warm containers serve the next invocations: no further loads
    _invoke_concurrently(runtime, 2, sleep=0.3)
    _invoke_concurrently(runtime, 2, sleep=0.3)
    assert len(pool_function.loads()) == 2 and len(runtime.containers) == 2


def test_the_container_cap_is_respected(pool_function: Any) -> None:
    runtime = pool_function(2)
    started = time.monotonic()
    results = _invoke_concurrently(runtime, 6, sleep=0.3)
    elapsed = time.monotonic() - started

    assert {r["module"] for r in results} == {f"memberflow_local_fn_PoolFunction_{n}" for n in (1, 2)}
    assert len(pool_function.loads()) == 2
    assert all(m.MAX_ACTIVE == 1 for m in runtime.modules)
    assert sum(m.INVOCATIONS for m in runtime.modules) == 6
    assert elapsed >= 0.85  # 6 invocations of 0.3 s, two at a time: three rounds


def test_a_runtime_without_cap_keeps_one_container(pool_function: Any) -> None:
    runtime = FunctionRuntime(pool_function(1).spec)  # the default: one container, invocations wait for it
    try:
        results = _invoke_concurrently(runtime, 3, sleep=0.1)
        assert {r["module"] for r in results} == {"memberflow_local_fn_PoolFunction_1"}
        assert runtime.modules[0].MAX_ACTIVE == 1
    finally:
        runtime.close()


def _invoke_concurrently_events(runtime: FunctionRuntime, events: list[Any]) -> list[Any]:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=len(events)) as pool:
        return list(pool.map(runtime.invoke, events))


def test_stack_sizes_each_function_pool_from_its_triggers(test_stack: LocalStack) -> None:
    # WorkerFunction: SQS (MaximumConcurrency 2, sqs_max_workers 2) + a schedule; ApiFunction: HTTP API
    assert test_stack.function("WorkerFunction").max_containers == 3
    assert test_stack.function("ApiFunction").max_containers == test_stack.settings.http_max_containers == 4
    (poller,) = test_stack.event_sources.pollers
    assert poller.workers == 2


def test_http_api_serves_concurrent_requests_in_separate_containers(test_stack: LocalStack) -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    api = test_stack.endpoints()["api_url"]
    runtime = test_stack.function("ApiFunction")
    first = runtime.containers[0].module if runtime.handler else None  # loads container 1
    first.json = _SlowJson(first.json)  # type: ignore[union-attr]  # container 1 holds each request 0.5 s
    barrier = threading.Barrier(3, timeout=10)

    def post(i: int) -> str:
        barrier.wait()
        return requests.post(f"{api}/webhooks/concurrent{i}", json={}, timeout=10).json()["module"]

    with ThreadPoolExecutor(max_workers=3) as pool:
        modules = list(pool.map(post, range(3)))
    assert len(set(modules)) >= 2  # while container 1 was busy, another one served
    assert 2 <= len(runtime.containers) <= runtime.max_containers


def test_http_api_starts_as_many_containers_as_concurrent_requests_need_up_to_the_cap(tmp_path: Path) -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    assert LocalSettings.from_env({}).http_max_containers == 50  # no longer 4: a burst is not queued locally
    (tmp_path / "template.yaml").write_text(TEST_TEMPLATE)
    for name, code in (("api", API_APP), ("worker", WORKER_APP)):
        (tmp_path / "functions" / name).mkdir(parents=True)
        (tmp_path / "functions" / name / "app.py").write_text(textwrap.dedent(code))

    with LocalStack(
        _settings(http_max_containers=16), template_path=tmp_path / "template.yaml", mailchimp=False
    ) as stack:
        api, runtime = stack.endpoints()["api_url"], stack.function("ApiFunction")
        barrier = threading.Barrier(32, timeout=30)

        def post(i: int) -> str:
            barrier.wait()
            return requests.post(f"{api}/webhooks/slow{i}", json={}, timeout=60).json()["module"]

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=32) as pool:
            modules = set(pool.map(post, range(32)))
        elapsed = time.monotonic() - started
        assert len(runtime.containers) == 16 == len(modules)  # grew with the burst, up to the cap, not beyond
        assert elapsed >= 1.0  # 32 requests of 0.5 s on 16 containers: two rounds


class _SlowJson:
    def __init__(self, json_module: Any) -> None:
        self._json = json_module

    def dumps(self, *args: Any, **kwargs: Any) -> str:
        time.sleep(0.5)
        return self._json.dumps(*args, **kwargs)


# ------------------------------------------------------------------------------ a real concurrency race, locally
RACE_TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  IdempotencyTable:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions:
        - AttributeName: id
          AttributeType: S
      KeySchema:
        - AttributeName: id
          KeyType: HASH
  RaceDlq:
    Type: AWS::SQS::Queue
  RaceQueue:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 2
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt RaceDlq.Arn
        maxReceiveCount: 5
  RaceFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/race/
      Handler: app.handler
      Runtime: python3.12
      Timeout: 10
      Environment:
        Variables:
          RACE_IDEMPOTENCY_TABLE: !Ref IdempotencyTable
      # The local stack holds a function to its role, as AWS does.
      Policies:
        - Statement:
            - Effect: Allow
              Action: [dynamodb:GetItem, dynamodb:PutItem, dynamodb:UpdateItem, dynamodb:DeleteItem]
              Resource: !GetAtt IdempotencyTable.Arn
      Events:
        Work:
          Type: SQS
          Properties:
            Queue: !GetAtt RaceQueue.Arn
            BatchSize: 1
            FunctionResponseTypes: [ReportBatchItemFailures]
            ScalingConfig:
              MaximumConcurrency: 2
"""

RACE_APP = """\
import json, os, time

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig, idempotent_function

processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
config = IdempotencyConfig(event_key_jmespath="key", raise_on_no_idempotency_key=True)
persistence = DynamoDBPersistenceLayer(table_name=os.environ["RACE_IDEMPOTENCY_TABLE"])
EFFECTS = []
ATTEMPTS = []
ERRORS = []


# key_prefix, as the product's functions set it: Powertools' default prefix includes the module name, which is
# unique per local container (memberflow_local_fn_RaceFunction_<n>), so containers would not share keys.
@idempotent_function(data_keyword_argument="item", persistence_store=persistence, config=config, key_prefix="race")
def handle_once(item):
    time.sleep(1.0)  # long enough for the other delivery to arrive in another container meanwhile
    EFFECTS.append(item["key"])
    return {"done": item["key"]}


def record_handler(record):
    ATTEMPTS.append(record["messageId"])
    try:
        handle_once(item=json.loads(record["body"]))
    except Exception as error:
        ERRORS.append(type(error).__name__)
        raise


def handler(event, context):
    config.register_lambda_context(context)
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
"""


def test_duplicate_deliveries_processed_concurrently_are_both_handled(tmp_path: Path) -> None:
    """Two deliveries of the same event at once: each runs in its own container, the second meets Powertools'
    in-progress record (IdempotencyAlreadyInProgressError), fails its item, comes back after the visibility
    timeout and gets the first one's saved result. Both messages end up deleted; the effect happened once."""
    (tmp_path / "template.yaml").write_text(RACE_TEMPLATE)
    (tmp_path / "functions" / "race").mkdir(parents=True)
    (tmp_path / "functions" / "race" / "app.py").write_text(RACE_APP)
    settings = _settings(sqs_max_workers=2)
    with LocalStack(settings, template_path=tmp_path / "template.yaml", mailchimp=False) as stack:
        sqs = stack.client("sqs")
        body = json.dumps({"key": "member-1"})
        sqs.send_message_batch(
            QueueUrl=stack.queue_url("RaceQueue"),
            Entries=[{"Id": "a", "MessageBody": body}, {"Id": "b", "MessageBody": body}],
        )
        assert stack.drain(timeout=30)
        modules = stack.function("RaceFunction").modules

        assert len(modules) == 2  # the two deliveries ran at the same time, in two containers
        assert [e for m in modules for e in m.EFFECTS] == ["member-1"]
        assert [e for m in modules for e in m.ERRORS] == ["IdempotencyAlreadyInProgressError"]
        attempts = [a for m in modules for a in m.ATTEMPTS]
        assert len(attempts) == 3 and len(set(attempts)) == 2  # the loser was retried once
        assert stack.dead_letters("RaceDlq") == []


def test_a_batch_larger_than_ten_is_gathered_over_the_batching_window() -> None:
    from memberflow_local.event_sources import SqsPoller
    from memberflow_local.template import SqsSource

    class Sqs:
        def __init__(self, waiting: int) -> None:
            self.waiting = waiting

        def receive_message(self, MaxNumberOfMessages: int, **_: Any) -> dict:
            count = min(MaxNumberOfMessages, self.waiting)
            self.waiting -= count
            return {
                "Messages": [
                    {"MessageId": f"m{self.waiting + i}", "ReceiptHandle": "r", "Body": "{}"} for i in range(count)
                ]
            }

    batches: list[int] = []
    poller = SqsPoller(
        SqsSource("Q", batch_size=25, maximum_batching_window_seconds=1.0),
        function=None,  # type: ignore[arg-type]
        queue_url="q",
        queue_arn="arn:aws:sqs:us-east-1:123456789012:q",
        client_factory=lambda: None,
    )
    poller.process = lambda sqs, messages: batches.append(len(messages))  # type: ignore[method-assign]
    sqs = Sqs(waiting=60)
    assert [poller.poll_once(sqs), poller.poll_once(sqs), poller.poll_once(sqs)] == [25, 25, 10]
    assert batches == [25, 25, 10]  # the last one waited out its window for more, then went with what it had
    lone = SqsPoller(
        SqsSource("Q", batch_size=25),
        function=None,
        queue_url="q",
        queue_arn="a",  # type: ignore[arg-type]
        client_factory=lambda: None,
    )
    lone.process = lambda sqs, messages: batches.append(len(messages))  # type: ignore[method-assign]
    assert lone.poll_once(Sqs(waiting=60)) == 10  # no window: one receive, as before


METRICS_APP = """
from aws_lambda_powertools import Metrics

metrics = Metrics(namespace="memberflow-test", service="pool")


def handler(event, context):
    metrics.add_metric(name=event["metric"], unit="Count", value=1)
    return sorted(metrics.provider.metric_set)  # what this function's next flush would publish
"""


def test_each_container_keeps_its_own_metrics_as_in_its_own_lambda_process(tmp_path: Path) -> None:
    """Powertools keeps every `Metrics`' figures in class-level dicts: one per process, which in Lambda is one per
    container. Here all functions share a process, so without a store of their own one function's flush would publish
    another's figures (under its own dimensions), and the other would then warn that it has none."""
    from memberflow_local.template import FunctionSpec

    runtimes = []
    for name in ("IntakeLike", "ConsumerLike"):
        code = tmp_path / name
        code.mkdir()
        (code / "app.py").write_text(METRICS_APP)
        runtimes.append(FunctionRuntime(FunctionSpec(name, code, "app.handler", timeout=10), max_containers=2))
    intake, consumer = runtimes
    try:
        assert intake.invoke({"metric": "WebhookRequests"}) == ["WebhookRequests"]
        assert consumer.invoke({"metric": "RegistrationsReceived"}) == ["RegistrationsReceived"]
    finally:
        for runtime in runtimes:
            runtime.close()
