"""Bare reference for EventReconcileFunction: only the external calls a run over a synced event must make when
nothing needs repairing.

Read the Eventbrite token (Secrets Manager), GET the event and its attendee list (following continuation tokens)
from Eventbrite, Query the event's registrations. Plain boto3, requests and the standard library.
"""

import json
import os

import boto3
import requests

_eventbrite = None


def handler(event, context):
    global _eventbrite
    if _eventbrite is None:
        secret = boto3.client("secretsmanager").get_secret_value(SecretId=os.environ["EVENTBRITE_SECRET_ARN"])
        _eventbrite = requests.Session()
        _eventbrite.headers["Authorization"] = f"Bearer {json.loads(secret['SecretString'])['oauth_token']}"
    base = os.environ["EVENTBRITE_API_URL"].rstrip("/")
    dynamodb = boto3.client("dynamodb")
    events = []
    for synced in json.loads(os.environ["SYNCED_EVENTS"]):
        event_id = synced["eventbrite_event_id"]
        _eventbrite.get(f"{base}/events/{event_id}/", timeout=5).raise_for_status()
        params, attendees = {}, 0
        while True:
            page = _eventbrite.get(f"{base}/events/{event_id}/attendees/", params=params, timeout=5).json()
            attendees += len(page.get("attendees", []))
            if not page.get("pagination", {}).get("has_more_items"):
                break
            params = {"continuation": page["pagination"]["continuation"]}
        answer = dynamodb.query(
            TableName=os.environ["REGISTRATIONS_TABLE_NAME"],
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"EVENT#{synced['slug']}"}},
        )
        events.append({"slug": synced["slug"], "attendees": attendees, "registrations": answer["Count"]})
    return {"events": events}
