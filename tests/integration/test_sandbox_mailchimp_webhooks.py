"""The sandbox's audience webhooks and consent fields as the official mailchimp-marketing client sees them: a webhook
is saved only after the URL answers Mailchimp's GET, then the member's own changes arrive form-encoded; our adapter's
`timestamp_signup` / `timestamp_opt` and marketing permissions are stored as sent, and nothing is invented."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

import pytest
from mailchimp_marketing.api_client import ApiClientError

from memberflow.adapters.mailchimp import MailchimpList
from memberflow.intake.service import parse_nested_form
from support import mailchimp as sandbox_fixtures
from support.mailchimp import official_client

LIST_ID = "list123"
API_KEY = sandbox_fixtures.SANDBOX_API_KEY


class Receiver:
    """A webhook endpoint that records what it is sent and answers `status`."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                receiver.requests.append((self.command, dict(self.headers), self.rfile.read(length)))
                self.send_response(receiver.status)
                self.end_headers()

            do_GET = do_POST = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/webhooks/mailchimp/s3cret"

    def posts(self) -> list[dict]:
        return [parse_nested_form(body) for method, _, body in self.requests if method == "POST"]


running_sandbox = sandbox_fixtures.running_sandbox
sandbox = sandbox_fixtures.sandbox


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.server.shutdown()


def test_a_webhook_is_checked_with_a_get_then_hears_the_members_own_changes(sandbox, receiver):
    client = official_client(sandbox.url, API_KEY)
    hook = client.lists.create_list_webhook(
        LIST_ID, {"url": receiver.url, "events": {"subscribe": True, "unsubscribe": True, "cleaned": True}}
    )
    assert hook["sources"] == {"user": True, "admin": True, "api": False}
    assert receiver.requests[0][0] == "GET"

    client.lists.set_list_member(
        LIST_ID, "ada@example.com", {"email_address": "ada@example.com", "status_if_new": "pending"}
    )
    sandbox.confirm_opt_in(LIST_ID, "ada@example.com")
    sandbox.unsubscribe(LIST_ID, "ada@example.com")

    subscribe, unsubscribe = receiver.posts()  # the API's own upsert sent nothing (source api is off)
    assert subscribe["type"] == "subscribe" and subscribe["data"]["email"] == "ada@example.com"
    assert unsubscribe["type"] == "unsubscribe" and unsubscribe["data"]["action"] == "unsub"
    assert unsubscribe["data"]["list_id"] == LIST_ID and len(unsubscribe["fired_at"]) == 19
    headers = receiver.requests[-1][1]
    assert headers["Content-Type"] == "application/x-www-form-urlencoded" and headers["User-Agent"] == "MailChimp"
    assert dict(parse_qsl(receiver.requests[-1][2].decode()))["data[merges][EMAIL]"] == "ada@example.com"


def test_a_url_that_does_not_answer_the_check_is_refused(sandbox, receiver):
    receiver.status = 404
    with pytest.raises(ApiClientError) as refused:
        official_client(sandbox.url, API_KEY).lists.create_list_webhook(LIST_ID, {"url": receiver.url})
    assert refused.value.status_code == 400


def test_answering_410_disables_the_webhook(sandbox, receiver):
    sandbox.add_webhook(LIST_ID, receiver.url)
    sandbox.seed_member(LIST_ID, "bob@example.com", "subscribed")
    receiver.status = 410
    sandbox.unsubscribe(LIST_ID, "bob@example.com")
    sandbox.state.clean(LIST_ID, "bob@example.com")
    assert len(receiver.posts()) == 1


def test_consent_fields_are_stored_as_sent_and_never_invented(sandbox):
    adapter = MailchimpList(lambda fresh: API_KEY, sandbox.url)
    client = official_client(sandbox.url, API_KEY)
    adapter.upsert_member(
        LIST_ID,
        "ada@example.com",
        status_if_new="subscribed",
        merge_fields={},
        consent_fields={
            "timestamp_signup": "2026-11-02T09:30:00+00:00",
            "timestamp_opt": "2026-11-02T09:30:00+00:00",
            "marketing_permissions": [{"marketing_permission_id": "abc123", "enabled": True}],
        },
    )
    adapter.upsert_member(LIST_ID, "bob@example.com", status_if_new="transactional", merge_fields={})

    ada = client.lists.get_list_member(LIST_ID, "ada@example.com")
    assert ada["timestamp_opt"] == ada["timestamp_signup"] == "2026-11-02T09:30:00+00:00"
    assert ada["marketing_permissions"] == [{"marketing_permission_id": "abc123", "text": "", "enabled": True}]
    bob = client.lists.get_list_member(LIST_ID, "bob@example.com")
    assert bob["timestamp_opt"] == bob["timestamp_signup"] == "" and bob["marketing_permissions"] == []
