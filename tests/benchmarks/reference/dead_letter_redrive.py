"""Bare reference for DeadLetterRedriveFunction: only the external calls a redrive run with nothing parked makes.

Read the credentials of each service REDRIVE_WAITS_ON names (Secrets Manager) and ask each once whether it answers:
Mailchimp's health check (GET /ping), Zendesk's API user (GET /api/v2/users/me.json), Eventbrite's token user
(GET /v3/users/me/); receive from each dead-letter queue (empty), return a summary. Plain boto3, requests and the
standard library.
"""

import json
import os

import boto3
import requests

_credentials: dict = {}


def _secret(variable):
    if variable not in _credentials:
        secret = boto3.client("secretsmanager").get_secret_value(SecretId=os.environ[variable])
        _credentials[variable] = json.loads(secret["SecretString"])
    return _credentials[variable]


def _mailchimp():
    base = os.environ["MAILCHIMP_API_URL"].rstrip("/")
    return requests.get(f"{base}/ping", auth=("memberflow", _secret("MAILCHIMP_SECRET_ARN")["api_key"]), timeout=5).ok


def _zendesk():
    secret = _secret("ZENDESK_SECRET_ARN")
    base = os.environ.get("ZENDESK_API_URL") or f"https://{os.environ['ZENDESK_SUBDOMAIN']}.zendesk.com"
    auth = (f"{secret['email']}/token", secret["api_token"])
    return requests.get(f"{base.rstrip('/')}/api/v2/users/me.json", auth=auth, timeout=5).ok


def _eventbrite():
    token = _secret("EVENTBRITE_SECRET_ARN")["oauth_token"]
    base = os.environ["EVENTBRITE_API_URL"].rstrip("/")
    return requests.get(f"{base}/users/me/", headers={"Authorization": f"Bearer {token}"}, timeout=5).ok


PROBES = {"mailchimp": _mailchimp, "zendesk": _zendesk, "eventbrite": _eventbrite}


def handler(event, context):
    redrives = json.loads(os.environ["REDRIVES"])
    waits_on = json.loads(os.environ.get("REDRIVE_WAITS_ON") or "{}")
    services = {service for queue in redrives for service in waits_on.get(queue, ["mailchimp"])}
    available = all([PROBES[service]() for service in sorted(services)])
    sqs = boto3.client("sqs")
    redriven = 0
    for dead_letter_queue in redrives:
        answer = sqs.receive_message(QueueUrl=dead_letter_queue, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        redriven += len(answer.get("Messages", []))
    return {"service_available": available, "redriven": redriven, "kept": 0}
