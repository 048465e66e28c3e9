"""Bare reference for WinbackFunction: only the external calls a day's run with nobody to select must make.

Read the campaign's checkpoint (GetItem), Query the members table's ``active-day`` index for each tier's crossing
day in each bucket, save the checkpoint (PutItem), read the campaign's records (``winback-records``) and write the
results file (two S3 PutObject), return a summary. Plain boto3 and the standard library.
"""

import json
import os
from datetime import UTC, date, datetime, timedelta

import boto3

TIERS = (30, 60, 90)
BUCKETS = 4


def handler(event, context):
    at = event.get("time")
    today = (datetime.fromisoformat(at) if at else datetime.now(UTC)).date()
    table = os.environ["MEMBERS_TABLE_NAME"]
    dynamodb = boto3.client("dynamodb")
    key = {"pk": {"S": "WINBACK#winback"}, "sk": {"S": "STATE"}}
    dynamodb.get_item(TableName=table, Key=key, ConsistentRead=True)
    found = 0
    for days in TIERS:
        for bucket in range(BUCKETS):
            answer = dynamodb.query(
                TableName=table,
                IndexName="active-day",
                KeyConditionExpression="active_day = :day",
                ExpressionAttributeValues={":day": {"S": f"{(today - timedelta(days=days)).isoformat()}#{bucket}"}},
                Limit=500,
            )
            found += answer["Count"]
    dynamodb.put_item(TableName=table, Item={**key, "done_through": {"S": today.isoformat()}})
    records = dynamodb.query(
        TableName=table,
        IndexName="winback-records",
        KeyConditionExpression="winback_campaign = :c",
        ExpressionAttributeValues={":c": {"S": "winback"}},
    )
    body = json.dumps({"campaign": "winback", "as_of": today.isoformat(), "records": records["Count"]}).encode()
    s3 = boto3.client("s3")
    for name in ("winback/winback/results.json", f"history/winback/winback/{date.isoformat(today)}.json"):
        s3.put_object(Bucket=os.environ["WINBACK_RESULTS_BUCKET"], Key=name, Body=body)
    return {"runs": [{"completed": True, "candidates": found}]}
