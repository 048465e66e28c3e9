"""Bare reference for MemberImportFunction: only the external calls importing one chunk must make.

Per SQS record (a chunk of members): the idempotency record (a conditional PutItem, later an UpdateItem that
completes it); per member the member-table UpdateItem and a trace PutItem; Mailchimp's batch subscribe
(POST /lists/{id}) and one static-segment call per tag, through one requests.Session; the chunk's `imported`
activity records, one gzip JSON-lines object in S3 under a keyed hash of each member (the health report must not
count imported members as new). The Mailchimp key and the activity key are read from Secrets Manager once. Plain
boto3, requests and the standard library.
"""

import gzip
import hashlib
import hmac
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
_s3 = None
_activity_key = b""


def handler(event, context):
    global _dynamodb, _mailchimp, _base_url, _s3, _activity_key
    if _mailchimp is None:
        secrets = boto3.client("secretsmanager")
        secret = secrets.get_secret_value(SecretId=os.environ["MAILCHIMP_SECRET_ARN"])
        api_key = json.loads(secret["SecretString"])["api_key"]
        _base_url = os.environ.get("MAILCHIMP_API_URL") or f"https://{api_key.rpartition('-')[2]}.api.mailchimp.com/3.0"
        _mailchimp = requests.Session()
        _mailchimp.auth = ("memberflow", api_key)
        _dynamodb = boto3.client("dynamodb")
        activity = secrets.get_secret_value(SecretId=os.environ["ACTIVITY_KEY_SECRET_ARN"])
        _activity_key = json.loads(activity["SecretString"])["activity_key"].encode()
        _s3 = boto3.client("s3")
    for record in event["Records"]:
        _import(json.loads(record["body"]))
    return {"batchItemFailures": []}


def _import(queued):
    members = queued["event"]["members"]
    now = int(time.time())
    key = "memberflow.member-import#" + hashlib.md5(queued["idempotency_key"].encode()).hexdigest()
    idempotency_table = os.environ["IDEMPOTENCY_TABLE_NAME"]
    _dynamodb.put_item(
        TableName=idempotency_table,
        Item={"id": {"S": key}, "status": {"S": "INPROGRESS"}, "expiration": {"N": str(now + IDEMPOTENCY_SECONDS)}},
        ConditionExpression="attribute_not_exists(id)",
    )
    list_id = os.environ["MAILCHIMP_LIST_ID"]
    for member in members:
        email = member["email"]
        member_id = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
        _dynamodb.update_item(
            TableName=os.environ["MEMBERS_TABLE_NAME"],
            Key={"pk": {"S": f"MEMBER#{member_id}"}, "sk": {"S": "PROFILE"}},
            UpdateExpression="SET email = :email, mailchimp_status = :s",
            ExpressionAttributeValues={":email": {"S": email}, ":s": {"S": "transactional"}},
        )
    answer = _mailchimp.post(
        f"{_base_url}/lists/{list_id}",
        json={
            "members": [{"email_address": m["email"], "status": "transactional"} for m in members],
            "update_existing": False,
        },
        timeout=5,
    )
    answer.raise_for_status()
    segments = _mailchimp.get(f"{_base_url}/lists/{list_id}/segments", params={"type": "static"}, timeout=5).json()
    segment = next((s["id"] for s in segments.get("segments", []) if s["name"] == "imported"), None)
    if segment is None:
        created = _mailchimp.post(
            f"{_base_url}/lists/{list_id}/segments", json={"name": "imported", "static_segment": []}, timeout=5
        )
        segment = created.json()["id"]
    tagged = _mailchimp.post(
        f"{_base_url}/lists/{list_id}/segments/{segment}",
        json={"members_to_add": [m["email"] for m in members]},
        timeout=5,
    )
    tagged.raise_for_status()
    for member in members:
        _trace(member["email"], queued)
    _record_imported(members)
    _dynamodb.update_item(
        TableName=idempotency_table,
        Key={"id": {"S": key}},
        UpdateExpression="SET #status = :done, #data = :data",
        ExpressionAttributeNames={"#status": "status", "#data": "data"},
        ExpressionAttributeValues={":done": {"S": "COMPLETED"}, ":data": {"S": '{"result": "imported"}'}},
    )


def _trace(email, queued):
    at = datetime.now(UTC)
    _dynamodb.put_item(
        TableName=os.environ["TRACE_TABLE_NAME"],
        Item={
            "pk": {"S": "email#" + hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]},
            "sk": {"S": f"{at.isoformat()}#{uuid.uuid4().hex[:8]}"},
            "step": {"S": "mailchimp_upsert"},
            "outcome": {"S": "ok"},
            "correlation_id": {"S": queued.get("correlation_id", "")},
            "expires_at": {"N": str(int(at.timestamp()) + TRACE_RETENTION_SECONDS)},
        },
    )


def _record_imported(members):
    at = datetime.now(UTC)
    lines = []
    for member in members:
        member_id = hashlib.sha256(member["email"].strip().lower().encode()).hexdigest()[:32]
        hashed = hmac.new(_activity_key, ("activity:" + member_id).encode(), hashlib.sha256).hexdigest()
        lines.append(json.dumps({"member": hashed, "kind": "imported", "ts": at.isoformat()}))
    _s3.put_object(
        Bucket=os.environ["ACTIVITY_BUCKET_NAME"],
        Key=f"activity/dt={at:%Y-%m-%d}/{at:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:12]}.jsonl.gz",
        Body=gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0),
        ContentType="application/gzip",
    )
