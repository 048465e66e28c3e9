"""Bare reference for EventSyncFunction: only the external calls event sync must make for one Zoom registration of
someone new.

Per SQS record: the idempotency record (a conditional PutItem, later an UpdateItem that completes it), the
registration GetItem, the member GetItem and UpdateItem, Mailchimp's two calls for a new registrant (PUT member, POST
the tag's static segment) through one requests.Session, the registration PutItem and one trace PutItem. The
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
        _register(json.loads(record["body"]))
    return {"batchItemFailures": []}


def _register(queued):
    email = queued["event"]["email"]
    member_id = hashlib.sha256(email.lower().encode()).hexdigest()
    key = {"id": {"S": f"reference.event_sync#{queued['idempotency_key']}"}}
    _dynamodb.put_item(
        TableName=os.environ["IDEMPOTENCY_TABLE_NAME"],
        Item={**key, "status": {"S": "INPROGRESS"}, "expiration": {"N": str(int(time.time()) + 3600)}},
        ConditionExpression="attribute_not_exists(id)",
    )
    pk = {"pk": {"S": "EVENT#webinar-dec"}, "sk": {"S": f"MEMBER#{member_id}"}}
    _dynamodb.get_item(TableName=os.environ["REGISTRATIONS_TABLE_NAME"], Key=pk)
    member = {"pk": {"S": f"MEMBER#{member_id}"}, "sk": {"S": "PROFILE"}}
    _dynamodb.get_item(TableName=os.environ["MEMBERS_TABLE_NAME"], Key=member)
    _dynamodb.update_item(
        TableName=os.environ["MEMBERS_TABLE_NAME"],
        Key=member,
        UpdateExpression="SET email = :email",
        ExpressionAttributeValues={":email": {"S": email}},
    )
    list_id = os.environ["MAILCHIMP_LIST_ID"]
    subscriber = hashlib.md5(email.lower().encode()).hexdigest()  # noqa: S324 - Mailchimp's subscriber hash
    _mailchimp.put(
        f"{_base_url}/lists/{list_id}/members/{subscriber}",
        json={"email_address": email, "status_if_new": "transactional"},
        timeout=5,
    ).raise_for_status()
    _mailchimp.post(
        f"{_base_url}/lists/{list_id}/members/{subscriber}/tags",
        json={"tags": [{"name": "event:webinar-dec:registered", "status": "active"}]},
        timeout=5,
    ).raise_for_status()
    _dynamodb.put_item(
        TableName=os.environ["REGISTRATIONS_TABLE_NAME"],
        Item={
            **pk,
            "event_slug": {"S": "webinar-dec"},
            "member_id": {"S": member_id},
            "email": {"S": email},
            "status": {"S": "registered"},
            "tags": {"SS": ["event:webinar-dec:registered"]},
            "in_mailchimp": {"BOOL": True},
        },
    )
    _dynamodb.put_item(
        TableName=os.environ["TRACE_TABLE_NAME"],
        Item={
            "pk": {"S": f"email#{member_id[:32]}"},
            "sk": {"S": f"{datetime.now(UTC).isoformat()}#{uuid.uuid4().hex[:8]}"},
            "detail": {"S": "registration for webinar-dec: registered"},
        },
    )
    _dynamodb.update_item(
        TableName=os.environ["IDEMPOTENCY_TABLE_NAME"],
        Key=key,
        UpdateExpression="SET #s = :done",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":done": {"S": "COMPLETED"}},
    )
