"""The webhook intake Lambda handler in-process against moto: API Gateway HTTP API events in, SQS messages and
trace records out."""

from __future__ import annotations

import importlib.util
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from memberflow import signatures
from memberflow.runtime import container
from memberflow.trace import rejections_subject
from support.apigw import LambdaContext, http_api_event

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "events" / "webhooks"
REGION = "us-east-1"
RELAY_SEED = "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"
SECRETS = {
    "slack_signing_secret": "8f742231b10e8888abcd99yyyzzz85a5",
    "discourse_secret": "discourse-webhook-secret",
    "discord_relay_public_key": signatures.discord_public_key(RELAY_SEED),
    "generic_hmac_secret": "generic-hmac-secret",
}
TRACE_TABLE = "memberflow-trace"
IDEMPOTENCY_TABLE = "memberflow-idempotency"


@dataclass
class Stack:
    app: ModuleType
    queue_url: str

    def invoke(
        self,
        source: str,
        body: bytes,
        headers: dict[str, str],
        *,
        encode: bool = False,
        request_id: str = "req-1",
    ) -> dict[str, Any]:
        event = http_api_event(source, body, headers, base64_body=encode, request_id=request_id)
        return self.app.handler(event, LambdaContext(function_name="memberflow-WebhookIntake"))

    def messages(self) -> list[dict[str, Any]]:
        answer = boto3.client("sqs", region_name=REGION).receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=0
        )
        return answer.get("Messages", [])

    def trace(self, subject: str) -> list[dict[str, Any]]:
        table = boto3.resource("dynamodb", region_name=REGION).Table(TRACE_TABLE)
        return table.query(KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": subject})["Items"]


def load_handler_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("webhook_intake_app", ROOT / "functions/webhook_intake/app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def clear_cached_clients_and_settings() -> None:
    container.reset()


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    for name, value in {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "POWERTOOLS_SERVICE_NAME": "memberflow",
        "POWERTOOLS_METRICS_NAMESPACE": "memberflow",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        queue_url = boto3.client("sqs", region_name=REGION).create_queue(QueueName="member-events")["QueueUrl"]
        secret_arn = boto3.client("secretsmanager", region_name=REGION).create_secret(
            Name="webhook-signing-secrets", SecretString=json.dumps(SECRETS)
        )["ARN"]
        boto3.client("dynamodb", region_name=REGION).create_table(
            TableName=TRACE_TABLE,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
        )
        boto3.client("dynamodb", region_name=REGION).create_table(
            TableName=IDEMPOTENCY_TABLE,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        )
        monkeypatch.setenv("IDEMPOTENCY_TABLE_NAME", IDEMPOTENCY_TABLE)
        monkeypatch.setenv("EVENT_DESTINATIONS", json.dumps({"member-events": queue_url}))
        monkeypatch.setenv("WEBHOOK_SECRETS_ARN", secret_arn)
        monkeypatch.setenv("TRACE_TABLE_NAME", TRACE_TABLE)
        monkeypatch.setenv("MAX_BODY_BYTES", "262144")
        clear_cached_clients_and_settings()
        yield Stack(load_handler_module(), queue_url)
        clear_cached_clients_and_settings()


def sample(name: str) -> tuple[bytes, dict[str, str]]:
    delivery = json.loads((SAMPLES / f"{name}.json").read_text())
    return json.dumps(delivery["body"]).encode(), delivery["headers"]


def slack_signed(body: bytes, headers: dict[str, str], ts: int | None = None) -> dict[str, str]:
    ts = int(time.time()) if ts is None else ts
    return {**headers, **signatures.sign_slack(SECRETS["slack_signing_secret"], body, ts)}


def answer_body(response: dict[str, Any]) -> dict[str, Any]:
    assert response["headers"]["Content-Type"] == "application/json"
    return json.loads(response["body"])


# ---------------------------------------------------------------- Slack


def test_signed_slack_team_join_is_queued_once_with_its_idempotency_key(stack: Stack) -> None:
    body, headers = sample("slack_team_join")

    response = stack.invoke("slack", body, slack_signed(body, headers), request_id="req-join")

    assert response["statusCode"] == 200
    assert answer_body(response) == {
        "status": "queued",
        "idempotency_key": "slack:T0001ABCDE:Ev06TEAMJOIN1",
        "correlation_id": "req-join",
    }
    [message] = stack.messages()
    attributes = {name: value["StringValue"] for name, value in message["MessageAttributes"].items()}
    assert attributes == {
        "idempotency_key": "slack:T0001ABCDE:Ev06TEAMJOIN1",
        "correlation_id": "req-join",
        "event_type": "member_joined",
    }
    queued = json.loads(message["Body"])
    assert queued["event"]["email"] == "jane.doe@example.com"
    assert queued["event"]["identity"] == {
        "platform": "slack",
        "workspace": "T0001ABCDE",
        "user_id": "U06JANEDOE",
    }


def test_slack_retry_carries_the_same_idempotency_key(stack: Stack) -> None:
    body, headers = sample("slack_team_join")
    first = stack.invoke("slack", body, slack_signed(body, headers))
    retry_headers = {
        **slack_signed(body, headers),
        "X-Slack-Retry-Num": "1",
        "X-Slack-Retry-Reason": "http_timeout",
    }

    retry = stack.invoke("slack", body, retry_headers, request_id="req-retry")

    assert answer_body(retry)["idempotency_key"] == answer_body(first)["idempotency_key"]
    keys = {m["MessageAttributes"]["idempotency_key"]["StringValue"] for m in stack.messages()}
    assert keys == {"slack:T0001ABCDE:Ev06TEAMJOIN1"}


def test_a_slack_retry_of_a_queued_delivery_writes_no_second_queue_message(stack: Stack) -> None:
    body, headers = sample("slack_team_join")
    first = stack.invoke("slack", body, slack_signed(body, headers), request_id="req-first")
    retries = [
        stack.invoke(
            "slack",
            body,
            {**slack_signed(body, headers), "X-Slack-Retry-Num": str(n), "X-Slack-Retry-Reason": "http_timeout"},
            request_id=f"req-retry-{n}",
        )
        for n in (1, 2)
    ]

    assert answer_body(first)["status"] == "queued"
    for retry in retries:
        assert retry["statusCode"] == 200
        assert answer_body(retry) == {
            "status": "already_queued",
            "idempotency_key": "slack:T0001ABCDE:Ev06TEAMJOIN1",
            "correlation_id": "req-first",
        }
    assert len(stack.messages()) == 1


def test_a_refused_slack_delivery_tells_slack_not_to_retry(stack: Stack) -> None:
    body = b'{"type": "event_callback", '

    response = stack.invoke("slack", body, slack_signed(body, {"Content-Type": "application/json"}))

    assert response["statusCode"] == 400
    assert response["headers"]["X-Slack-No-Retry"] == "1"


def test_forged_slack_signature_is_a_401_json_and_nothing_is_queued(stack: Stack) -> None:
    body, headers = sample("slack_team_join")
    forged = {**slack_signed(body, headers), "X-Slack-Signature": "v0=" + "ab" * 32}

    response = stack.invoke("slack", body, forged)

    assert response["statusCode"] == 401
    assert answer_body(response)["error"] == "invalid_signature"
    assert stack.messages() == []
    today = time.strftime("%Y-%m-%d", time.gmtime())
    [rejection] = stack.trace(rejections_subject(today))
    assert rejection["detail"].startswith("401 invalid_signature")


def test_stale_slack_request_is_a_401(stack: Stack) -> None:
    body, headers = sample("slack_team_join")

    response = stack.invoke("slack", body, slack_signed(body, headers, ts=int(time.time()) - 301))

    assert (response["statusCode"], answer_body(response)["error"]) == (401, "stale_timestamp")
    assert stack.messages() == []


def test_malformed_json_is_a_400(stack: Stack) -> None:
    body = b'{"type": "event_callback", '

    response = stack.invoke("slack", body, slack_signed(body, {"Content-Type": "application/json"}))

    assert (response["statusCode"], answer_body(response)["error"]) == (400, "invalid_json")


def test_missing_field_is_a_400_naming_it(stack: Stack) -> None:
    body, headers = sample("slack_team_join")
    payload = json.loads(body)
    del payload["event"]["user"]["id"]
    body = json.dumps(payload).encode()

    response = stack.invoke("slack", body, slack_signed(body, headers))

    assert response["statusCode"] == 400
    assert answer_body(response)["problems"] == [{"field": "event.user.id", "problem": "Field required"}]
    assert stack.messages() == []


def test_unknown_source_is_a_404(stack: Stack) -> None:
    response = stack.invoke("myspace", b"{}", {"Content-Type": "application/json"})

    assert (response["statusCode"], answer_body(response)["error"]) == (404, "unknown_source")


def test_oversize_body_is_a_413(stack: Stack) -> None:
    body = json.dumps({"padding": "x" * 262_144}).encode()

    response = stack.invoke("slack", body, slack_signed(body, {"Content-Type": "application/json"}))

    assert (response["statusCode"], answer_body(response)["error"]) == (413, "payload_too_large")


def test_url_verification_answers_the_challenge(stack: Stack) -> None:
    body, headers = sample("slack_url_verification")

    response = stack.invoke("slack", body, slack_signed(body, headers))

    assert response["statusCode"] == 200
    assert answer_body(response) == {"challenge": json.loads(body)["challenge"]}
    assert stack.messages() == []


def test_base64_encoded_body_is_verified_over_the_decoded_bytes(stack: Stack) -> None:
    body, headers = sample("slack_message")

    response = stack.invoke("slack", body, slack_signed(body, headers), encode=True)

    assert answer_body(response)["status"] == "queued"
    assert len(stack.messages()) == 1


def test_logs_never_contain_a_plain_email(stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    body, headers = sample("slack_team_join")
    caplog.set_level(logging.INFO, logger="memberflow")

    stack.invoke("slack", body, slack_signed(body, headers))
    stack.invoke("slack", body, {**slack_signed(body, headers), "X-Slack-Signature": "v0=00"})

    assert {record.getMessage() for record in caplog.records} >= {"member event queued", "webhook rejected"}
    # Every attribute of every record, i.e. everything a formatter could print.
    assert all("jane.doe@example.com" not in str(vars(record)) for record in caplog.records)
    assert any(getattr(record, "member_email", None) == "j***@e***.com" for record in caplog.records)


def test_accepted_and_rejected_deliveries_are_counted_per_source(
    capsys: pytest.CaptureFixture[str], stack: Stack
) -> None:
    body, headers = sample("slack_team_join")
    stack.invoke("slack", body, slack_signed(body, headers))
    stack.invoke("slack", body, {**slack_signed(body, headers), "X-Slack-Signature": "v0=00"})

    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    counted = [(m["source"], name) for m in metrics for name in ("WebhookAccepted", "WebhookRejected") if name in m]
    assert counted == [("slack", "WebhookAccepted"), ("slack", "WebhookRejected")]


# ---------------------------------------------------------------- Discord relay


def test_discord_relay_signed_with_our_key_is_queued(stack: Stack) -> None:
    body, headers = sample("discord_member_add")
    signed = {**headers, **signatures.sign_discord_relay(RELAY_SEED, body, int(time.time()))}

    response = stack.invoke("discord", body, signed)

    assert answer_body(response)["idempotency_key"] == "discord:1098765432109876543:ec854ac9014628c502d0401e2004ba7a"
    assert len(stack.messages()) == 1


def test_discord_relay_signed_with_another_key_is_a_401(stack: Stack) -> None:
    body, headers = sample("discord_member_add")
    other_seed = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
    signed = {**headers, **signatures.sign_discord_relay(other_seed, body, int(time.time()))}

    response = stack.invoke("discord", body, signed)

    assert (response["statusCode"], answer_body(response)["error"]) == (401, "invalid_signature")
    assert stack.messages() == []


# ---------------------------------------------------------------- Discourse


def test_discourse_signed_user_created_is_queued(stack: Stack) -> None:
    body, headers = sample("discourse_user_created")
    signed = {**headers, **signatures.sign_discourse(SECRETS["discourse_secret"], body)}

    response = stack.invoke("discourse", body, signed)

    assert answer_body(response)["idempotency_key"] == "discourse:https://forum.example.com:user_created:17"
    assert len(stack.messages()) == 1


def test_discourse_with_a_wrong_signature_is_a_401(stack: Stack) -> None:
    body, headers = sample("discourse_user_created")
    signed = {**headers, **signatures.sign_discourse("not-our-secret", body)}

    response = stack.invoke("discourse", body, signed)

    assert (response["statusCode"], answer_body(response)["error"]) == (401, "invalid_signature")
    assert stack.messages() == []


# ---------------------------------------------------------------- never a bare 500


def generic_signed(body: bytes) -> dict[str, str]:
    return signatures.sign_generic(SECRETS["generic_hmac_secret"], body, int(time.time()))


def test_a_lone_surrogate_in_a_signed_delivery_is_a_json_400_not_a_500(stack: Stack) -> None:
    delivery = json.loads((SAMPLES / "generic_member_joined.json").read_text())["body"]
    delivery["member"]["name"] = "\udc00"
    body = json.dumps(delivery).encode()  # the escape "\udc00": valid JSON syntax, yet no text

    response = stack.invoke("generic", body, generic_signed(body))

    assert response["statusCode"] == 400
    assert answer_body(response)["problems"][0]["field"] == "member.name"
    assert stack.messages() == []


def test_an_unexpected_error_is_a_json_503_logged_with_the_correlation_id(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def defect(*args: Any, **kwargs: Any) -> Any:
        raise AttributeError("a defect")

    monkeypatch.setattr(stack.app, "accept_webhook", defect)
    body, headers = sample("slack_team_join")
    caplog.set_level(logging.ERROR)

    response = stack.invoke("slack", body, slack_signed(body, headers), request_id="req-defect")

    assert response["statusCode"] == 503
    assert answer_body(response) == {
        "error": "internal_error",
        "detail": "the delivery could not be handled; please deliver it again (correlation id req-defect)",
    }
    [logged] = [record for record in caplog.records if record.getMessage() == "webhook not handled: unexpected error"]
    assert (logged.correlation_id, logged.error_type) == ("req-defect", "AttributeError")


def test_a_body_api_gateway_could_not_have_encoded_is_a_json_503(stack: Stack) -> None:
    event = http_api_event("slack", b"{}", {}, base64_body=True)
    event["body"] = "not base64!"

    response = stack.app.handler(event, LambdaContext(function_name="memberflow-WebhookIntake"))

    assert (response["statusCode"], answer_body(response)["error"]) == (503, "internal_error")


@pytest.mark.parametrize("source", ["slack", "discourse", "discord", "generic"])
def test_before_the_secrets_are_put_every_source_is_answered_503_so_the_platform_retries(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    # As the template creates it: a secret without a value until the one-time setup after the first deploy.
    empty = boto3.client("secretsmanager", region_name=REGION).create_secret(Name="not-set-up-yet")["ARN"]
    monkeypatch.setenv("WEBHOOK_SECRETS_ARN", empty)
    clear_cached_clients_and_settings()
    body = b'{"type": "member_joined"}'

    response = stack.invoke(source, body, {"Content-Type": "application/json"})

    assert response["statusCode"] == 503
    assert answer_body(response)["error"] == "intake_misconfigured"
    assert stack.messages() == []
