"""End to end: the win-back preview over the local stack's HTTP API, as an internal tool calls it: IAM-signed
(SigV4) requests only, the answer in JSON, nobody contacted."""

from __future__ import annotations

from datetime import date

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from memberflow_local.scenes.winback import community, seed, seed_audience

pytestmark = pytest.mark.e2e
TODAY = date(2026, 11, 30)


@pytest.fixture(scope="module")
def running_stack():
    from memberflow_local.settings import LocalSettings
    from memberflow_local.stack import LocalStack

    with LocalStack(LocalSettings.from_env(api_port=0, aws_port=0, mailchimp_port=0), pollers=False) as stack:
        members = community(800, TODAY)
        seed(stack.client("dynamodb"), stack.table_name("MembersTable"), members)
        seed_audience(stack.mailchimp.state, stack.settings.mailchimp_list_id, members)
        yield stack


def url(stack, query: str) -> str:
    return stack.endpoints()["api_url"].rstrip("/") + f"/winback/preview?{query}"


def signed_get(address: str, secret: str = "testing") -> requests.Response:
    request = AWSRequest(method="GET", url=address)
    SigV4Auth(Credentials("testing", secret), "execute-api", "us-east-1").add_auth(request)
    return requests.get(address, headers=dict(request.headers), timeout=30)


def test_the_preview_answers_a_signed_caller_with_who_and_why_and_contacts_nobody(running_stack):
    answer = signed_get(url(running_stack, f"campaign=winback&day={TODAY.isoformat()}&limit=5"))
    assert answer.status_code == 200, answer.text
    shown = answer.json()
    assert shown["counts"]["contacted"] > 0 and shown["counts"]["held_out"] > 0 and shown["counts"]["excluded"] > 0
    assert len(shown["members"]) == 5 and shown["contacts_nobody"] is True
    assert not running_stack.mailchimp.state.audience(running_stack.settings.mailchimp_list_id).tag_events


def test_unsigned_or_wrongly_signed_callers_are_refused(running_stack):
    address = url(running_stack, "campaign=winback")
    assert requests.get(address, timeout=30).status_code == 403
    assert signed_get(address, secret="not-the-key").status_code == 403


def test_a_bad_field_is_named(running_stack):
    answer = signed_get(url(running_stack, "campaign=winback&limit=lots"))
    assert answer.status_code == 400 and answer.json()["problems"] == [
        {"field": "limit", "problem": "must be a whole number from 0 to 10000"}
    ]
