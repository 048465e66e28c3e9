"""Bare reference for WebhookIntakeFunction: only the external calls intake must make for a signed Slack delivery.

Read the webhook secrets (Secrets Manager, JSON), verify Slack's HMAC over ``v0:<timestamp>:<body>``, send the body
to the member events queue, answer 200 JSON. Plain boto3 and the standard library: the floor a cold request of
the real handler is compared with.
"""

import base64
import hashlib
import hmac
import json
import os
import time

import boto3

REPLAY_WINDOW_SECONDS = 300

_secrets = None
_sqs = None


def handler(event, context):
    global _secrets, _sqs
    if _secrets is None:
        answer = boto3.client("secretsmanager").get_secret_value(SecretId=os.environ["WEBHOOK_SECRETS_ARN"])
        _secrets = json.loads(answer["SecretString"])
    body = event.get("body") or ""
    raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
    headers = {name.lower(): value for name, value in (event.get("headers") or {}).items()}
    timestamp = headers.get("x-slack-request-timestamp", "")
    signed = b"v0:" + timestamp.encode() + b":" + raw
    expected = "v0=" + hmac.new(_secrets["slack_signing_secret"].encode(), signed, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, headers.get("x-slack-signature", "")):
        return _answer(401, {"error": "invalid_signature"})
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > REPLAY_WINDOW_SECONDS:
        return _answer(401, {"error": "stale_timestamp"})
    if _sqs is None:
        _sqs = boto3.client("sqs")
    _sqs.send_message(QueueUrl=_queue_url(), MessageBody=raw.decode())
    return _answer(200, {"status": "queued", "event_id": json.loads(raw).get("event_id")})


def _queue_url():
    destinations = os.environ.get("EVENT_DESTINATIONS")
    if destinations:
        return json.loads(destinations)["member-events"]
    return os.environ["MEMBER_EVENTS_QUEUE_URL"]


def _answer(status, body):
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}
