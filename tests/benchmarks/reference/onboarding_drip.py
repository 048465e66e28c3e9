"""Bare reference for OnboardingDripFunction: only the external calls a drip run with nothing due must make.

Read the Mailchimp key (Secrets Manager), Query the members table's ``drip-due`` index for the opt-in waits and the
drip steps due at the schedule's time, return a summary. Plain boto3 and the standard library.
"""

import json
import os
from datetime import UTC, datetime

import boto3

DRIP_INDEX = "drip-due"

_api_key = None


def handler(event, context):
    global _api_key
    if _api_key is None:
        secret = boto3.client("secretsmanager").get_secret_value(SecretId=os.environ["MAILCHIMP_SECRET_ARN"])
        _api_key = json.loads(secret["SecretString"])["api_key"]
    at = event.get("time")
    now = (datetime.fromisoformat(at) if at else datetime.now(UTC)).isoformat()
    dynamodb = boto3.client("dynamodb")
    due = {}
    for queue in ("opt-in", "pending"):
        answer = dynamodb.query(
            TableName=os.environ["MEMBERS_TABLE_NAME"],
            IndexName=DRIP_INDEX,
            KeyConditionExpression="drip_queue = :queue AND drip_due_at <= :now",
            ExpressionAttributeValues={":queue": {"S": queue}, ":now": {"S": now}},
        )
        due[queue] = answer["Count"]
    return {"opt_ins_due": due["opt-in"], "drip_steps_due": due["pending"]}
