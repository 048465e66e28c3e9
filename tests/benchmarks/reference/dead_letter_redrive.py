"""Bare reference for DeadLetterRedriveFunction: only the external calls a redrive run with nothing parked makes.

Read the Mailchimp key (Secrets Manager), ask Mailchimp's health check (GET /ping) whether it answers, receive
from each dead-letter queue (empty), return a summary. Plain boto3, requests and the standard library.
"""

import json
import os

import boto3
import requests

_api_key = None


def handler(event, context):
    global _api_key
    if _api_key is None:
        secret = boto3.client("secretsmanager").get_secret_value(SecretId=os.environ["MAILCHIMP_SECRET_ARN"])
        _api_key = json.loads(secret["SecretString"])["api_key"]
    base = os.environ["MAILCHIMP_API_URL"].rstrip("/")
    available = requests.get(f"{base}/ping", auth=("memberflow", _api_key), timeout=5).ok
    sqs = boto3.client("sqs")
    redriven = 0
    for dead_letter_queue in json.loads(os.environ["REDRIVES"]):
        answer = sqs.receive_message(QueueUrl=dead_letter_queue, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        redriven += len(answer.get("Messages", []))
    return {"service_available": available, "redriven": redriven, "kept": 0}
