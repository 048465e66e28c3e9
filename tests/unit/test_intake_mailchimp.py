"""Mailchimp's audience webhooks at intake: form-encoded, unsigned, the secret at the end of the URL; Mailchimp's
URL check (a GET) is answered; each audience change becomes a member event."""

from __future__ import annotations

import pytest

from memberflow.events import (
    MailchimpCleaned,
    MailchimpEmailChanged,
    MailchimpProfileUpdated,
    MailchimpSubscribed,
    MailchimpUnsubscribed,
)
from memberflow.intake.service import answer_url_check, parse_nested_form
from support.intake import Intake, sample


@pytest.mark.parametrize(
    ("name", "event_type"),
    [
        ("mailchimp_subscribe", MailchimpSubscribed),
        ("mailchimp_unsubscribe", MailchimpUnsubscribed),
        ("mailchimp_cleaned", MailchimpCleaned),
        ("mailchimp_profile", MailchimpProfileUpdated),
        ("mailchimp_upemail", MailchimpEmailChanged),
    ],
)
def test_each_sample_delivery_is_queued_as_its_member_event(name, event_type):
    intake = Intake()
    answer = intake.deliver_sample(name)

    assert answer.status == 200 and answer.body["status"] == "queued", answer.body
    event = intake.queued_event()
    assert isinstance(event, event_type)
    assert event.list_id == "a6b5da1054" and event.email == "jane.doe@example.com"
    assert "jane" not in answer.body["idempotency_key"]  # the address is hashed in the key


def test_the_unsubscribe_carries_its_action_and_reason_and_upemail_the_new_address():
    intake = Intake()
    intake.deliver_sample("mailchimp_unsubscribe")
    intake.deliver_sample("mailchimp_upemail")
    unsubscribed, changed = (queued.event for queued in intake.queue.sent)
    assert (unsubscribed.action, unsubscribed.reason) == ("unsub", "manual")
    assert changed.new_email == "jane.new@example.com"


def test_a_redelivery_has_the_same_idempotency_key():
    intake = Intake()
    first = intake.deliver_sample("mailchimp_unsubscribe").body["idempotency_key"]
    again = intake.deliver_sample("mailchimp_unsubscribe").body["idempotency_key"]
    assert first == again


@pytest.mark.parametrize(
    ("path", "code"),
    [("/webhooks/mailchimp/wrong-secret", "invalid_secret"), ("/webhooks/mailchimp", "missing_secret")],
)
def test_a_wrong_or_missing_secret_is_refused_clearly(path, code):
    delivery = sample("mailchimp_unsubscribe")
    intake = Intake()
    answer = intake.deliver("mailchimp", delivery["body"], delivery["headers"], path=path)

    assert answer.status == 401 and answer.body["error"] == code
    assert intake.queue.sent == []


def test_a_missing_field_is_a_400_naming_it():
    delivery = sample("mailchimp_unsubscribe")
    body = "&".join(part for part in delivery["body"].split("&") if not part.startswith("data%5Bemail%5D"))
    answer = Intake().deliver("mailchimp", body, delivery["headers"])

    assert answer.status == 400
    assert {"field": "data[email]"}.items() <= answer.body["problems"][0].items()


def test_a_body_not_form_encoded_is_refused():
    delivery = sample("mailchimp_unsubscribe")
    answer = Intake().deliver("mailchimp", delivery["body"], {"Content-Type": "application/json"})
    assert answer.status == 415


def test_campaign_notices_are_ignored():
    body = "type=campaign&fired_at=2026-11-03+10%3A00%3A00&data%5Bid%5D=5aa2102003&data%5Blist_id%5D=a6b5da1054"
    answer = Intake().deliver("mailchimp", body, {"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status == 200 and answer.body["status"] == "ignored"


def test_mailchimps_url_check_is_answered_only_with_the_right_secret():
    deps = Intake().deps
    assert answer_url_check("mailchimp", {}, deps, path="/webhooks/mailchimp/mailchimp-secret").status == 200
    assert answer_url_check("mailchimp", {}, deps, path="/webhooks/mailchimp/nope").status == 401
    assert answer_url_check("slack", {}, deps, path="/webhooks/slack/x").status == 405
    assert answer_url_check("nothing", {}, deps, path="/webhooks/nothing/x").status == 404


def test_bracketed_form_names_become_nested_objects():
    assert parse_nested_form(b"type=profile&data%5Bmerges%5D%5BFNAME%5D=Ada&data%5Bemail%5D=a%40b.c") == {
        "type": "profile",
        "data": {"merges": {"FNAME": "Ada"}, "email": "a@b.c"},
    }


def test_the_api_access_log_never_records_the_path_which_carries_mailchimps_secret():
    from pathlib import Path

    from memberflow_local.template import load_yaml

    template = load_yaml(Path(__file__).resolve().parents[2] / "template.yaml")
    access_log = template["Resources"]["WebhookApi"]["Properties"]["AccessLogSettings"]["Format"]
    assert "$context.path" not in access_log and "$context.routeKey" in access_log
