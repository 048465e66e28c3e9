"""Bare reference for OnboardingFunction: only the external calls onboarding must make for one consenting member.

Per SQS record: the idempotency record (a PutItem conditional on attribute_not_exists, later an UpdateItem that
completes it), one member-table UpdateItem, Mailchimp's three calls for a consenting member (PUT member, POST tags,
POST the welcome journey's trigger) through one requests.Session, and the trace PutItems of those three steps. The
Mailchimp key is read from Secrets Manager once. Plain boto3, requests and the standard library.
"""

import hashlib
import json
import os
import time
import uuid
from datetime import UTC, datetime

import boto3
import requests

IDEMPOTENCY_SECONDS = 7 * 24 * 3600
TRACE_RETENTION_SECONDS = 180 * 24 * 3600

_dynamodb = None
_mailchimp = None
_base_url = ""


def handler(event, context):
    global _dynamodb, _mailchimp, _base_url
    if _mailchimp is None:
        secret = boto3.client("secretsmanager").get_secret_value(SecretId=os.environ["MAILCHIMP_SECRET_ARN"])
        api_key = json.loads(secret["SecretString"])["api_key"]
        _base_url = os.environ.get("MAILCHIMP_API_URL") or f"https://{api_key.rpartition('-')[2]}.api.mailchimp.com/3.0"
        _mailchimp = requests.Session()
        _mailchimp.auth = ("memberflow", api_key)
        _dynamodb = boto3.client("dynamodb")
    for record in event["Records"]:
        _onboard(json.loads(record["body"]))
    return {"batchItemFailures": []}


def _onboard(queued):
    member = queued["event"]
    email = member["email"]
    now = int(time.time())
    key = "memberflow.onboarding#" + hashlib.md5(queued["idempotency_key"].encode()).hexdigest()
    idempotency_table = os.environ["IDEMPOTENCY_TABLE_NAME"]
    _dynamodb.put_item(
        TableName=idempotency_table,
        Item={"id": {"S": key}, "status": {"S": "INPROGRESS"}, "expiration": {"N": str(now + IDEMPOTENCY_SECONDS)}},
        ConditionExpression="attribute_not_exists(id)",
    )
    member_id = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
    _dynamodb.update_item(
        TableName=os.environ["MEMBERS_TABLE_NAME"],
        Key={"pk": {"S": f"MEMBER#{member_id}"}, "sk": {"S": "PROFILE"}},
        UpdateExpression="SET email = :email, joined_at = if_not_exists(joined_at, :joined), mailchimp_status = :s",
        ExpressionAttributeValues={
            ":email": {"S": email},
            ":joined": {"S": member["joined_at"]},
            ":s": {"S": "subscribed"},
        },
    )
    list_id = os.environ["MAILCHIMP_LIST_ID"]
    subscriber = hashlib.md5(email.strip().lower().encode()).hexdigest()
    _call("PUT", f"/lists/{list_id}/members/{subscriber}", {"email_address": email, "status_if_new": "subscribed"})
    _trace(email, queued, "mailchimp_upsert")
    _call("POST", f"/lists/{list_id}/members/{subscriber}/tags", {"tags": [{"name": "joined", "status": "active"}]})
    _trace(email, queued, "tagged")
    journey = os.environ["MAILCHIMP_WELCOME_JOURNEY_ID"]
    step = os.environ["MAILCHIMP_WELCOME_JOURNEY_STEP_ID"]
    _call("POST", f"/customer-journeys/journeys/{journey}/steps/{step}/actions/trigger", {"email_address": email})
    _trace(email, queued, "journey_started")
    _dynamodb.update_item(
        TableName=idempotency_table,
        Key={"id": {"S": key}},
        UpdateExpression="SET #status = :done, #data = :data",
        ExpressionAttributeNames={"#status": "status", "#data": "data"},
        ExpressionAttributeValues={":done": {"S": "COMPLETED"}, ":data": {"S": '{"result": "onboarded"}'}},
    )


def _call(method, path, body):
    response = _mailchimp.request(method, _base_url + path, json=body, timeout=5)
    response.raise_for_status()


def _trace(email, queued, step):
    at = datetime.now(UTC)
    _dynamodb.put_item(
        TableName=os.environ["TRACE_TABLE_NAME"],
        Item={
            "pk": {"S": "email#" + hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]},
            "sk": {"S": f"{at.isoformat()}#{uuid.uuid4().hex[:8]}"},
            "step": {"S": step},
            "outcome": {"S": "ok"},
            "correlation_id": {"S": queued.get("correlation_id", "")},
            "expires_at": {"N": str(int(at.timestamp()) + TRACE_RETENTION_SECONDS)},
        },
    )
