"""Fuzzed deliveries for what escalation adds to intake: Slack and Discourse deliveries through the escalation
rules' watcher, POST /escalations and Zendesk's webhook. Never a 5xx; a refusal names what is wrong; whatever is
queued fits a queue message and the escalation consumer can take it (on the fakes)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, note, seed, settings
from hypothesis import strategies as st
from test_intake_fuzz import FUZZ_SEED, SQS_CHARACTERS, encoded, fuzzed_headers, mutated_body, sqs_message

from memberflow import signatures
from memberflow.errors import MemberflowError
from memberflow.escalation.rules import load_rules
from memberflow.escalation.service import EscalationDeps, handlers
from memberflow.escalation.watch import EscalationWatcher
from memberflow.events import CATALOG
from memberflow.intake.registry import build_registry
from memberflow.intake.service import accept_webhook
from memberflow.models import DYNAMODB_PARTITION_KEY_BYTES, SQS_MESSAGE_BYTES
from memberflow.pipeline.envelope import QueuedEvent
from support.fakes import FakeDesk, FakeMessenger, MemoryTicketLinks, MemoryTrace
from support.intake import NOW, SAMPLES, SECRETS, Intake, signed

RULES = load_rules()
SOURCES = ("slack", "discourse", "zendesk", "escalations")
ESCALATION_SECRETS = {**SECRETS, "zendesk_webhook_secret": "zendesk-secret", "escalations_api_key": "api-key-1"}
DELIVERIES: dict[str, list[dict[str, Any]]] = {source: [] for source in SOURCES}
for path in sorted(SAMPLES.glob("*.json")):
    delivery = json.loads(path.read_text())
    if delivery.get("source") in DELIVERIES:
        DELIVERIES[delivery["source"]].append(delivery)
# Every Slack and Discourse sample also with text a rule matches, so the watcher's paths are fuzzed too.
for delivery in list(DELIVERIES["slack"]):
    if isinstance(delivery["body"].get("event"), dict) and delivery["body"]["event"].get("type") == "message":
        matching = json.loads(json.dumps(delivery))
        matching["body"]["event"]["text"] = "I was charged twice and someone is harassing me"
        DELIVERIES["slack"].append(matching)


def sign(source: str, raw: bytes, headers: dict[str, str]) -> dict[str, str]:
    if source == "zendesk":
        extra = signatures.sign_zendesk(ESCALATION_SECRETS["zendesk_webhook_secret"], raw, NOW)
    elif source == "escalations":
        extra = {"X-Api-Key": ESCALATION_SECRETS["escalations_api_key"]}
    else:
        return signed(source, raw, headers)
    return {name.lower(): value for name, value in {**headers, **extra}.items()}


def consume(queued: QueuedEvent) -> None:
    deps = EscalationDeps(
        desk=FakeDesk(), links=MemoryTicketLinks(), messenger=FakeMessenger(), rules=RULES, trace=MemoryTrace()
    )
    work = handlers(lambda: deps)
    if queued.event.type not in work:
        return  # another consumer's event (a member's activity): the intake fuzz test covers those
    try:
        work[queued.event.type](queued)
        work[queued.event.type](queued)  # a redelivery
    except MemberflowError:
        pass
    for link in deps.links.links.values():
        assert len(f"THREAD#{link.thread}".encode()) <= DYNAMODB_PARTITION_KEY_BYTES
    assert len(deps.desk.tickets) <= 1


@pytest.mark.parametrize("source", SOURCES)
@seed(FUZZ_SEED)
@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
@given(data=st.data())
def test_fuzzed_escalation_deliveries_never_get_a_5xx_and_what_is_queued_the_consumer_can_take(source, data):
    delivery = data.draw(st.sampled_from(DELIVERIES[source]), label="sample")
    body = mutated_body(data.draw, delivery["body"])
    raw, headers = encoded(data.draw, body, fuzzed_headers(data.draw, source, delivery["headers"]))
    note(f"body sent: {raw[:2000]!r}")
    intake = Intake(
        secrets=lambda: ESCALATION_SECRETS,
        registry=build_registry(escalation_categories={"billing": "billing", "safety": "safety"}),
        watchers=(EscalationWatcher(RULES),),
    )
    answer = accept_webhook(source, raw, sign(source, raw, headers), intake.deps, correlation_id="fuzz-1")
    event(f"{answer.status} {sorted(q.event.type for q in intake.queue.sent)}")
    assert answer.status < 500, answer.body
    json.dumps(answer.body)
    if answer.status == 400:
        assert answer.body["problems"] and all(problem["field"] for problem in answer.body["problems"])
    for queued in intake.queue.sent:
        message, attributes = sqs_message(queued)
        assert len(message.encode()) + sum(len(v.encode()) for v in attributes.values()) <= SQS_MESSAGE_BYTES
        assert all(SQS_CHARACTERS.fullmatch(text) for text in (message, *attributes.values()))
        assert QueuedEvent.from_json(message, CATALOG) == queued
        consume(queued)


def test_every_escalation_source_has_samples_to_fuzz_from():
    assert all(DELIVERIES[source] for source in SOURCES)
