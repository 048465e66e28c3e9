"""Bare reference for EscalationFunction: only the external calls escalating one new thread makes.

Per SQS record: the idempotency record (a conditional PutItem, later an UpdateItem), the thread's link (GetItem,
a conditional PutItem claiming it, the member's index item, an UpdateItem noting the job), Zendesk's bulk create and
one job-status read through one requests.Session, the ticket's own item and the link completed, and one trace
PutItem. Before any of it, the suppression list (was the author erased? two GetItems, by address and by platform
identity, under the keyed hash). The Zendesk credentials and the suppression key are read from Secrets Manager once.
Plain boto3, requests and the standard library.
"""

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
_dynamodb = None
_zendesk = None
_suppression_key = None


def handler(event, context):
    global _dynamodb, _zendesk, _suppression_key
    if _zendesk is None:
        secrets = boto3.client("secretsmanager")
        secret = secrets.get_secret_value(SecretId=os.environ["ZENDESK_SECRET_ARN"])
        credentials = json.loads(secret["SecretString"])
        suppression = secrets.get_secret_value(SecretId=os.environ["SUPPRESSION_KEY_SECRET_ARN"])
        _suppression_key = json.loads(suppression["SecretString"])["suppression_key"].encode()
        _zendesk = requests.Session()
        _zendesk.auth = (credentials["email"] + "/token", credentials["api_token"])
        _dynamodb = boto3.client("dynamodb")
    for record in event["Records"]:
        _escalate(json.loads(record["body"]))
    return {"batchItemFailures": []}


def _escalate(queued):
    escalation = queued["event"]
    author = escalation["author"]
    identity = f"{author['platform']}:{author['workspace']}:{author['user_id']}"
    for name in ("email:" + escalation["email"].strip().lower(), "identity:" + identity):
        hashed = hmac.new(_suppression_key, name.encode(), hashlib.sha256).hexdigest()
        suppressed = _dynamodb.get_item(
            TableName=os.environ["MEMBERS_TABLE_NAME"],
            Key={"pk": {"S": "SUPPRESSED#" + hashed}, "sk": {"S": "SUPPRESSION"}},
            ConsistentRead=True,
        )
        if "Item" in suppressed:
            return
    now = int(time.time())
    key = "memberflow.escalation#" + hashlib.md5(queued["idempotency_key"].encode()).hexdigest()
    idempotency_table, links = os.environ["IDEMPOTENCY_TABLE_NAME"], os.environ["TICKET_LINKS_TABLE_NAME"]
    _dynamodb.put_item(
        TableName=idempotency_table,
        Item={"id": {"S": key}, "status": {"S": "INPROGRESS"}, "expiration": {"N": str(now + IDEMPOTENCY_SECONDS)}},
        ConditionExpression="attribute_not_exists(id)",
    )
    thread = {"pk": {"S": "THREAD#" + escalation["thread"]}, "sk": {"S": "LINK"}}
    _dynamodb.get_item(TableName=links, Key=thread, ConsistentRead=True)
    _dynamodb.put_item(
        TableName=links,
        Item={**thread, "claim_key": {"S": queued["idempotency_key"]}, "created_at": {"S": str(now)}},
        ConditionExpression="attribute_not_exists(pk)",
    )
    member = "email#" + hashlib.sha256(escalation["email"].lower().encode()).hexdigest()[:32]
    _dynamodb.put_item(TableName=links, Item={"pk": {"S": "MEMBER#" + member}, "sk": thread["pk"]})
    _dynamodb.update_item(
        TableName=links, Key=thread, UpdateExpression="SET job_index = :i", ExpressionAttributeValues={":i": {"N": "0"}}
    )
    base = os.environ["ZENDESK_API_URL"].rstrip("/") + "/api/v2"
    ticket = {
        "subject": escalation["text"][:80],
        "comment": {"body": escalation["text"], "public": False},
        "requester": {"name": escalation.get("author_name") or "member", "email": escalation["email"]},
        "external_id": "community-" + hashlib.sha256(escalation["thread"].encode()).hexdigest()[:32],
    }
    job = _zendesk.post(f"{base}/tickets/create_many.json", json={"tickets": [ticket]}, timeout=5)
    job.raise_for_status()
    status = _zendesk.get(f"{base}/job_statuses/{job.json()['job_status']['id']}.json", timeout=5).json()
    ticket_id = status["job_status"]["results"][0]["id"]
    _dynamodb.put_item(
        TableName=links, Item={"pk": {"S": f"TICKET#{ticket_id}"}, "sk": {"S": "LINK"}, "thread": thread["pk"]}
    )
    _dynamodb.update_item(
        TableName=links,
        Key=thread,
        UpdateExpression="SET ticket_id = :t",
        ExpressionAttributeValues={":t": {"N": str(ticket_id)}},
    )
    at = datetime.now(UTC)
    _dynamodb.put_item(
        TableName=os.environ["TRACE_TABLE_NAME"],
        Item={"pk": {"S": member}, "sk": {"S": f"{at.isoformat()}#{uuid.uuid4().hex[:8]}"}, "step": {"S": "ticket"}},
    )
    _dynamodb.update_item(
        TableName=idempotency_table,
        Key={"id": {"S": key}},
        UpdateExpression="SET #status = :done",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={":done": {"S": "COMPLETED"}},
    )
