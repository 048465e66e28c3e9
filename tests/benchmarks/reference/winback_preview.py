"""Bare reference for WinbackPreviewFunction: only the external calls a preview of a day with nobody to select makes.

Read the campaign's checkpoint (GetItem), Query the members table's ``active-day`` index for each tier's crossing
day in each bucket, answer in JSON. Plain boto3 and the standard library.
"""

import json
import os
from datetime import date, timedelta

import boto3

TIERS = (30, 60, 90)
BUCKETS = 4


def handler(event, context):
    query = event.get("queryStringParameters") or {}
    today = date.fromisoformat(query["day"])
    table = os.environ["MEMBERS_TABLE_NAME"]
    dynamodb = boto3.client("dynamodb")
    key = {"pk": {"S": f"WINBACK#{query['campaign']}"}, "sk": {"S": "STATE"}}
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
    body = {"campaign": query["campaign"], "counts": {"contacted": 0, "held_out": 0, "excluded": found}}
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}
