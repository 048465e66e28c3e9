"""What intake makes of escalations: rule matches on Slack messages and reactions and on Discourse posts and flags
(besides the delivery's own event), explicit requests on POST /escalations (API key), and Zendesk's signed
status-change webhook (a forged one is a 401)."""

import json
from datetime import timedelta

import pytest

from memberflow import signatures
from memberflow.errors import QueueUnavailable
from memberflow.escalation.rules import load_rules
from memberflow.escalation.watch import EscalationWatcher
from memberflow.events import EscalationRequested, MemberActive, TicketStatusChanged
from memberflow.intake.registry import build_registry
from memberflow.intake.service import accept_webhook
from support.fakes import MemoryDeliveryLog
from support.intake import NOW, SECRETS, Intake, MemoryQueue, sample

RULES = load_rules()
CATEGORIES = {"billing": "billing", "safety": "safety"}
ESCALATION_SECRETS = {**SECRETS, "zendesk_webhook_secret": "zendesk-secret", "escalations_api_key": "api-key-1"}


def intake(**deps):
    return Intake(
        secrets=lambda: ESCALATION_SECRETS,
        registry=build_registry(escalation_categories=CATEGORIES),
        watchers=(EscalationWatcher(RULES),),
        **deps,
    )


def sent_types(desk):
    return [queued.event.type for queued in desk.queue.sent]


def test_a_slack_message_matching_a_rule_is_activity_and_an_escalation_of_its_thread():
    desk = intake()
    answer = desk.deliver_sample("slack_message_billing_question")
    assert answer.status == 200 and answer.body["status"] == "queued"
    assert sent_types(desk) == ["member_active", "escalation_requested"]
    escalation = desk.queue.sent[1]
    assert isinstance(escalation.event, EscalationRequested)
    assert escalation.event.rule == "billing" and escalation.event.via == "keyword"
    assert escalation.event.thread == "slack:T0001ABCDE:C0INTRODUCE:1700000050.000100"
    assert escalation.event.reply_to.thread_ts == "1700000050.000100"
    assert escalation.idempotency_key == "escalation:slack:T0001ABCDE:Ev06BILLING1"
    assert "charged twice" in escalation.event.text


def test_an_ordinary_message_is_only_activity():
    desk = intake()
    desk.deliver_sample("slack_message")
    assert sent_types(desk) == ["member_active"]


def test_a_ticket_reaction_escalates_the_reacted_message_and_its_author():
    desk = intake()
    delivery = sample("slack_reaction_added")
    delivery["body"]["event"]["reaction"] = "ticket"
    desk.deliver("slack", delivery["body"], delivery["headers"])
    assert sent_types(desk) == ["member_active", "escalation_requested"]
    event = desk.queue.sent[1].event
    assert event.via == "reaction" and event.author.user_id == "U05ADMIN01"
    assert event.thread == "slack:T0001ABCDE:C0INTRODUCE:1700000050.000100"


class FailingAfter(MemoryQueue):
    """Accepts `accepted` sends, then fails (the queue stopped answering half-way through a delivery)."""

    def __init__(self, accepted: int) -> None:
        super().__init__()
        self.accepted = accepted

    def send(self, event):
        if len(self.sent) >= self.accepted:
            raise QueueUnavailable("throttled")
        return super().send(event)


def slack_retry(delivery: dict, attempt: int) -> dict:
    return {**delivery["headers"], "X-Slack-Retry-Num": str(attempt), "X-Slack-Retry-Reason": "http_error"}


def test_a_slack_retry_queues_the_escalation_an_unanswered_first_attempt_did_not():
    # Slack retries only what was not answered 2xx: here the activity was queued, the escalation was not (503).
    desk = intake(queue=FailingAfter(accepted=1), deliveries=MemoryDeliveryLog())
    delivery = sample("slack_message_billing_question")
    assert desk.deliver("slack", delivery["body"], delivery["headers"]).status == 503
    assert sent_types(desk) == ["member_active"]

    desk.queue.accepted = 10
    retry = desk.deliver("slack", delivery["body"], slack_retry(delivery, 1))

    assert retry.status == 200 and retry.body["status"] == "queued"
    # The activity again (its key makes the consumer skip it) and, now, the escalation.
    assert sent_types(desk) == ["member_active", "member_active", "escalation_requested"]
    assert desk.queue.sent[2].idempotency_key == "escalation:slack:T0001ABCDE:Ev06BILLING1"


def test_a_slack_retry_of_a_delivery_queued_in_full_queues_nothing_again():
    desk = intake(deliveries=MemoryDeliveryLog())
    delivery = sample("slack_message_billing_question")
    desk.deliver("slack", delivery["body"], delivery["headers"])

    retry = desk.deliver("slack", delivery["body"], slack_retry(delivery, 1))

    assert retry.body["status"] == "already_queued"
    assert sent_types(desk) == ["member_active", "escalation_requested"]


def test_a_reaction_by_someone_who_is_not_a_listed_reactor_escalates_nothing(tmp_path):
    document = json.loads((load_rules.__globals__["DEFAULT_RULES_FILE"]).read_text())
    for rule in document["rules"]:
        if rule.get("reaction"):
            rule["reactors"] = ["U0MODERATOR"]
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(document))
    desk = Intake(secrets=lambda: ESCALATION_SECRETS, watchers=(EscalationWatcher(load_rules(path)),))
    delivery = sample("slack_reaction_added")
    delivery["body"]["event"]["reaction"] = "ticket"
    desk.deliver("slack", delivery["body"], delivery["headers"])
    assert sent_types(desk) == ["member_active"]


def test_a_discourse_flag_is_escalated_although_intake_has_no_member_event_for_it():
    desk = intake()
    answer = desk.deliver_sample("discourse_flag_created")
    assert answer.status == 200 and answer.body["status"] == "queued"
    [queued] = desk.queue.sent
    assert queued.event.rule == "forum-flag" and queued.event.via == "flag"
    assert queued.event.thread == "discourse:https://forum.example.com:post:1250"
    assert queued.idempotency_key == "escalation:discourse:https://forum.example.com:flag:77"
    assert "flagged as inappropriate" in queued.event.text


def test_a_discourse_post_matching_a_rule_is_answered_in_its_topic():
    desk = intake()
    delivery = sample("discourse_post_created")
    delivery["body"]["post"]["raw"] = "I am locked out of my account since the update"
    desk.deliver("discourse", delivery["body"], delivery["headers"])
    assert sent_types(desk) == ["member_active", "escalation_requested"]
    event = desk.queue.sent[1].event
    assert event.rule == "account-access"
    assert event.reply_to.topic_id == delivery["body"]["post"]["topic_id"]


def test_a_watcher_that_fails_costs_the_delivery_nothing():
    def broken(source, payload, headers):
        raise RuntimeError("bug")

    desk = Intake(secrets=lambda: ESCALATION_SECRETS, watchers=(broken,))
    assert desk.deliver_sample("slack_message_billing_question").status == 200
    assert sent_types(desk) == ["member_active"]


# ---------------------------------------------------------------- POST /escalations


def explicit(desk, body=None, key="api-key-1"):
    raw = json.dumps(body or sample("escalation_request")["body"]).encode()
    headers = {"content-type": "application/json", **({"x-api-key": key} if key else {})}
    return accept_webhook("escalations", raw, headers, desk.deps, correlation_id="req-1")


def test_an_internal_tool_asks_for_a_ticket_with_its_api_key():
    desk = intake()
    answer = explicit(desk)
    assert answer.status == 200
    [queued] = desk.queue.sent
    assert queued.event.via == "api" and queued.event.rule == "billing"
    assert queued.event.email == "jane.doe@example.com"
    assert queued.idempotency_key == "escalation:api:internal:crm-881"


@pytest.mark.parametrize(("key", "error"), [("wrong", "invalid_signature"), ("", "missing_signature")])
def test_an_explicit_request_without_the_api_key_is_refused(key, error):
    desk = intake()
    answer = explicit(desk, key=key)
    assert (answer.status, answer.body["error"]) == (401, error)
    assert desk.queue.sent == []


def test_an_unknown_category_or_a_missing_field_is_a_400_naming_it():
    desk = intake()
    body = sample("escalation_request")["body"]
    answer = explicit(desk, {**body, "category": "catering"})
    assert answer.status == 400 and answer.body["problems"][0]["field"] == "category"
    answer = explicit(desk, {key: value for key, value in body.items() if key != "thread_id"})
    assert answer.status == 400 and answer.body["problems"][0]["field"] == "thread_id"
    answer = explicit(desk, {**body, "member": {**body["member"], "email": "not an address"}})
    assert answer.status == 400 and answer.body["problems"][0]["field"] == "member.email"


# ---------------------------------------------------------------- Zendesk's webhook


def zendesk(desk, body=None, secret="zendesk-secret", at=NOW, headers=None):
    raw = json.dumps(body or sample("zendesk_ticket_status_changed")["body"]).encode()
    signed = {name.lower(): value for name, value in signatures.sign_zendesk(secret, raw, at).items()}
    return accept_webhook(
        "zendesk",
        raw,
        {"content-type": "application/json", **signed, **(headers or {})},
        desk.deps,
        correlation_id="req-1",
    )


def test_a_signed_status_change_is_queued_for_the_escalation_consumer():
    desk = intake()
    answer = zendesk(desk)
    assert answer.status == 200
    [queued] = desk.queue.sent
    assert isinstance(queued.event, TicketStatusChanged)
    assert (queued.event.ticket_id, queued.event.status) == (35436, "solved")
    assert queued.idempotency_key == "zendesk:5f1c5b1e-4d2a-4b8c-9e0f-6a7b8c9d0e1f"


def test_a_forged_zendesk_webhook_is_rejected_with_401():
    desk = intake()
    assert zendesk(desk, secret="guessed").status == 401
    assert zendesk(desk, at=NOW - timedelta(minutes=10)).body["error"] == "stale_timestamp"
    raw = json.dumps(sample("zendesk_ticket_status_changed")["body"]).encode()
    unsigned = accept_webhook("zendesk", raw, {"content-type": "application/json"}, desk.deps)
    assert (unsigned.status, unsigned.body["error"]) == (401, "missing_signature")
    assert desk.queue.sent == []


def test_the_zendesk_signature_is_base64_hmac_of_timestamp_then_body():
    import base64
    import hashlib
    import hmac

    body = b'{"type": "zen:event-type:ticket.status_changed"}'
    headers = signatures.sign_zendesk("secret", body, NOW)
    timestamp = headers["X-Zendesk-Webhook-Signature-Timestamp"]
    assert timestamp == "2024-11-14T22:31:00Z"
    expected = base64.b64encode(hmac.new(b"secret", timestamp.encode() + body, hashlib.sha256).digest()).decode()
    assert headers["X-Zendesk-Webhook-Signature"] == expected
    signatures.verify_zendesk("secret", body, headers, now=NOW.timestamp())
    body_first = base64.b64encode(hmac.new(b"secret", body + timestamp.encode(), hashlib.sha256).digest()).decode()
    with pytest.raises(signatures.SignatureError):
        signatures.verify_zendesk("secret", body, {**headers, "X-Zendesk-Webhook-Signature": body_first})


def test_other_zendesk_events_are_acknowledged_and_ignored_and_bad_statuses_named():
    desk = intake()
    body = sample("zendesk_ticket_status_changed")["body"]
    assert zendesk(desk, {**body, "type": "zen:event-type:ticket.priority_changed"}).body["status"] == "ignored"
    answer = zendesk(desk, {**body, "event": {"current": "ESCALATED"}})
    assert answer.status == 400 and answer.body["problems"][0]["field"] == "event.current"
    assert desk.queue.sent == []


def test_member_events_are_unchanged_by_the_watcher():
    desk = intake()
    desk.deliver_sample("slack_team_join")
    assert sent_types(desk) == ["member_joined"]
    assert not isinstance(desk.queue.sent[0].event, MemberActive)
