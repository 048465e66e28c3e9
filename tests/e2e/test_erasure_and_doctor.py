"""End to end on the local stack: a real-shape Discourse `user_destroyed` delivery erases the member from the sandbox
Mailchimp (read back with the official client) and from our tables, a re-join after it needs a fresh opt-in, and the
operator's commands `memberflow forget` and `memberflow doctor` work against the running stack."""

from __future__ import annotations

import json

import pytest
from mailchimp_marketing.api_client import ApiClientError
from test_local_stack_http import post, sample

from memberflow.privacy import email_key, subscriber_hash
from memberflow_cli.main import main as memberflow_cli
from support.mailchimp import official_client

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def running_stack():
    from memberflow_local.settings import LocalSettings
    from memberflow_local.stack import LocalStack

    with LocalStack(LocalSettings.from_env(api_port=0, aws_port=0, mailchimp_port=0)) as stack:
        yield stack


@pytest.fixture
def mailchimp(running_stack):
    return official_client(running_stack.mailchimp.url, running_stack.settings.mailchimp_api_key)


@pytest.fixture
def cli(running_stack, monkeypatch, capsys):
    """`memberflow ...` against the running local stack; returns the exit code and what it printed."""
    endpoints = running_stack.endpoints()
    monkeypatch.setenv("MEMBERFLOW_LOCAL_AWS_PORT", endpoints["aws_endpoint"].rsplit(":", 1)[1])
    monkeypatch.setenv("MEMBERFLOW_LOCAL_MAILCHIMP_PORT", endpoints["mailchimp_url"].rsplit(":", 1)[1].split("/")[0])

    def run(*argv: str) -> tuple[int, str]:
        capsys.readouterr()
        code = memberflow_cli(list(argv))
        return code, capsys.readouterr().out

    return run


def in_audience(mailchimp, stack, email: str) -> bool:
    try:
        mailchimp.lists.get_list_member(stack.settings.mailchimp_list_id, email)
    except ApiClientError as error:
        assert error.status_code == 404
        return False
    return True


def stored_anywhere(stack, email: str) -> list[str]:
    """Tables in which the address, or an unsalted hash of it, still appears."""
    dynamodb, found = stack.client("dynamodb"), []
    for table in ("MembersTable", "TraceTable", "IdempotencyTable"):
        items = json.dumps(dynamodb.scan(TableName=stack.table_name(table))["Items"])
        if any(trace in items for trace in (email.lower(), email_key(email), subscriber_hash(email))):
            found.append(table)
    return found


def test_a_discourse_user_destroyed_erases_the_member_and_a_re_join_needs_a_fresh_opt_in(running_stack, mailchimp, cli):
    created, destroyed = sample("discourse_user_created"), sample("discourse_user_destroyed")
    email = destroyed["body"]["user"]["email"]
    assert post(running_stack, "discourse", created["body"], created["headers"]).json()["status"] == "queued"
    assert running_stack.drain(timeout=60)
    assert in_audience(mailchimp, running_stack, email) and stored_anywhere(running_stack, email)

    answer = post(running_stack, "discourse", destroyed["body"], destroyed["headers"])
    assert answer.status_code == 200 and answer.json()["status"] == "queued"
    assert running_stack.drain(timeout=60)

    assert not in_audience(mailchimp, running_stack, email)
    assert stored_anywhere(running_stack, email) == []
    code, printed = cli("trace", email)
    assert code == 0 and "welcome email: NO: erased on" in printed and email not in printed

    # The person signs up on the forum again: a new account, the same address.
    rejoin = json.loads(json.dumps(created["body"]))
    rejoin["user"]["id"] = 18
    assert post(running_stack, "discourse", rejoin, created["headers"]).json()["status"] == "queued"
    assert running_stack.drain(timeout=60)

    assert not in_audience(mailchimp, running_stack, email)  # Mailchimp refuses a forgotten address by API
    assert running_stack.dead_letters("MemberEventsDeadLetterQueue") == []  # recorded, not retried
    code, printed = cli("trace", email)
    assert "Forgotten Email Not Subscribed" in printed and "fresh opt-in" in printed and "erased on" in printed


def test_memberflow_forget_erases_a_member_on_the_local_stack(running_stack, mailchimp, cli):
    delivery = sample("generic_member_joined")
    email = "forget.me@example.org"
    delivery["body"]["member"].update(email=email, id="forget-1")
    delivery["body"]["event_id"] = "forget-join-1"
    assert post(running_stack, "generic", delivery["body"], delivery["headers"]).json()["status"] == "queued"
    assert running_stack.drain(timeout=60)
    assert in_audience(mailchimp, running_stack, email)

    code, printed = cli("forget", email, "--wait", "60")

    assert code == 0, printed
    assert "erased on" in printed and "permanently deleted" in printed and email not in printed
    assert not in_audience(mailchimp, running_stack, email)
    assert stored_anywhere(running_stack, email) == []
    assert cli("forget", "not-an-address")[0] == 2


def test_memberflow_doctor_finds_what_an_operator_got_wrong(running_stack, mailchimp, cli):
    list_id = running_stack.settings.mailchimp_list_id
    code, printed = cli("doctor")
    assert code == 0, printed
    assert "no problems found" in printed and "merge field JOINED (date) is in the audience" in printed
    assert "whether they exist cannot be checked" in printed and "cannot tell" in printed

    secrets_manager = running_stack.client("secretsmanager")
    webhook_secrets = running_stack.secret_arn("WebhookSigningSecrets")
    original = secrets_manager.get_secret_value(SecretId=webhook_secrets)["SecretString"]
    [joined_field] = [f for f in mailchimp.lists.get_list_merge_fields(list_id)["merge_fields"] if f["tag"] == "JOINED"]
    sqs, dead_letter_queue = running_stack.client("sqs"), running_stack.queue_url("MemberEventsDeadLetterQueue")
    try:
        secrets_manager.put_secret_value(
            SecretId=webhook_secrets,
            SecretString=json.dumps({**json.loads(original), "generic_hmac_secret": "replace-me"}),
        )
        mailchimp.lists.delete_list_merge_field(list_id, joined_field["merge_id"])
        sqs.send_message(QueueUrl=dead_letter_queue, MessageBody="{}")

        code, printed = cli("doctor")

        assert code == 1
        assert 'PROBLEM  webhook secret generic_hmac_secret is still the placeholder "replace-me"' in printed
        assert "PROBLEM  merge field JOINED is missing" in printed
        assert "PROBLEM  1 message(s) parked in MemberEventsDeadLetterQueue" in printed
        assert printed.count("fix: ") == 3 and "3 problem(s) found" in printed
        # A community that does not use generic sources is not told to set their secret.
        assert "generic_hmac_secret" not in cli("doctor", "--sources", "slack,discourse,discord")[1]
    finally:
        secrets_manager.put_secret_value(SecretId=webhook_secrets, SecretString=original)
        mailchimp.lists.add_list_merge_field(list_id, {"name": "Joined", "type": "date", "tag": "JOINED"})
        sqs.purge_queue(QueueUrl=dead_letter_queue)


def test_memberflow_doctor_says_when_the_mailchimp_key_is_a_placeholder_or_refused(running_stack, cli):
    secrets_manager = running_stack.client("secretsmanager")
    mailchimp_secret = running_stack.secret_arn("MailchimpApiSecret")
    original = secrets_manager.get_secret_value(SecretId=mailchimp_secret)["SecretString"]
    try:
        secrets_manager.put_secret_value(SecretId=mailchimp_secret, SecretString='{"api_key": "replace-me-us1"}')
        code, printed = cli("doctor")
        assert code == 1 and "the Mailchimp API key is still the placeholder" in printed
        assert "aws secretsmanager put-secret-value" in printed

        secrets_manager.put_secret_value(SecretId=mailchimp_secret, SecretString='{"api_key": "rotated-key-us1"}')
        code, printed = cli("doctor")
        assert code == 1 and "Mailchimp refuses the API key (401 API Key Invalid)" in printed
    finally:
        secrets_manager.put_secret_value(SecretId=mailchimp_secret, SecretString=original)
