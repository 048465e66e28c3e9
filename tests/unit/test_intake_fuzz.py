"""Fuzzing every source with correctly signed deliveries: bodies built around the real samples (events/webhooks),
with fuzzed strings (surrogates, controls, bidirectional overrides, huge ids), dates, numbers, nesting and
encodings. Whatever arrives, intake never answers a 5xx, and whatever it accepts a consumer can take: the queued
JSON fits SQS and parses back through the catalog, the onboarding domain (on the in-memory fakes) raises nothing
but memberflow errors, and every key and item it writes fits DynamoDB.

Deterministic: a fixed seed (MEMBERFLOW_FUZZ_SEED, printed with a failing example; set it to explore others), no
example database, and a bounded number of examples (MEMBERFLOW_FUZZ_EXAMPLES per source)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, event, given, note, seed, settings
from hypothesis import strategies as st

from memberflow.adapters.due_work import member_pk
from memberflow.adapters.member_profiles import identity_pk
from memberflow.errors import MemberflowError
from memberflow.events import CATALOG
from memberflow.intake.service import accept_webhook
from memberflow.models import (
    DYNAMODB_ITEM_BYTES,
    DYNAMODB_PARTITION_KEY_BYTES,
    DYNAMODB_SORT_KEY_BYTES,
    SQS_MESSAGE_BYTES,
)
from memberflow.onboarding import consumer as onboarding
from memberflow.onboarding.drip import DripDeps, send_due_drip_steps
from memberflow.onboarding.join import OnboardingDeps
from memberflow.onboarding.rules import OnboardingRules, WelcomeJourney
from memberflow.pipeline.envelope import QueuedEvent
from support.fakes import FakeMailingList, MemoryDueWork, MemoryLedger, MemoryMembers, MemorySuppressions, MemoryTrace
from support.intake import NOW, SAMPLES, Intake, signed

FUZZ_SEED = int(os.environ.get("MEMBERFLOW_FUZZ_SEED", "20241114"))
EXAMPLES_PER_SOURCE = int(os.environ.get("MEMBERFLOW_FUZZ_EXAMPLES", "300"))
"""About five seconds for the four sources; raise it locally to search longer."""
SOURCES = ("slack", "discourse", "discord", "generic")
DELIVERIES: dict[str, list[dict[str, Any]]] = {source: [] for source in SOURCES}
for path in sorted(SAMPLES.glob("*.json")):
    delivery = json.loads(path.read_text())
    if delivery.get("source") in DELIVERIES:
        DELIVERIES[delivery["source"]].append(delivery)

SQS_CHARACTERS = re.compile("[\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*")
"""What SQS accepts in a message body and in attribute values (XML 1.0 characters)."""

# ---------------------------------------------------------------- what deliveries are made of

SPECIAL_TEXT = [
    "",
    " ",
    "\udc00",
    "\ud800",
    "a\udfffb",
    "\x00",
    "a\x00",
    "\x1b[31m",
    "\u202e",
    "\u200b",
    "\ufeff",
    "\uffff",
    "\ufffe",
    "\u2028",
    "\U0001f600",
    "é",
    "null",
    "true",
    "0",
    "-1",
    "<script>",
    "../../etc",
    "%00",
    "\\udc00",
]
LENGTHS = [1, 63, 64, 65, 253, 254, 255, 256, 257, 512, 513, 1024, 2049, 100_000]
OFFSETS = [timezone(timedelta(minutes=minutes)) for minutes in (-1439, -720, -1, 0, 1, 330, 1439)]
SPECIAL_DATES = [
    "9999-12-31T23:59:59-23:59",
    "0001-01-01T00:00:00+23:59",
    "9999-12-31T23:59:59Z",
    "0001-01-01T00:00:00Z",
    "1970-01-01T00:00:00Z",
    "1969-12-31T23:59:59Z",
    "2024-02-30T00:00:00Z",
    "2024-11-14T22:13:20",
    "2024-11-14",
    "2024-11-14T22:13:20.123456789Z",
    "not a date",
]
SPECIAL_EMAILS = [
    "a@example.org\x00",
    "jane\u202e@example.org",
    "<script>@example.org",
    "a" * 300 + "@example.org",
    "a" * 64 + "@example.org",
    "jane\udc00@example.org",
    '"jane doe"@example.org',
    "jane@[127.0.0.1]",
    "jöhn@bücher.example",
    "@",
    "jane@",
    "@example.org",
]
SPECIAL_NUMBERS = [0, -1, 1, 2**31, 2**63, -(2**63), 10**30, 253402300799, 253402300800, 1.5, float("nan")]
KNOWN_TYPES = [
    # Slack, Discourse, Discord relay and generic names, current and announced: a source must answer all of them.
    "event_callback",
    "url_verification",
    "app_rate_limited",
    "team_join",
    "message",
    "reaction_added",
    "user_change",
    "member_joined",
    "member_active",
    "member_erased",
    "GUILD_MEMBER_ADD",
    "GUILD_MEMBER_UPDATE",
    "MESSAGE_CREATE",
    "MESSAGE_REACTION_ADD",
    "NEWSLETTER_SIGNUP",
    "PING",
]
SLACK_SUBTYPES = [None, "me_message", "thread_broadcast", "file_share", "bot_message", "message_changed", "bot_add"]
DISCOURSE_EVENTS = [
    "user_created",
    "user_confirmed_email",
    "user_approved",
    "user_updated",
    "user_destroyed",
    "post_created",
    "post_edited",
    "ping",
]
CONTENT_TYPES = [None, "application/json", "application/json", "application/json; charset=utf-8", "text/plain"]

REPEATED = ["x", "é", "\U0001f600", "\udc00", "\x00"]
ANY_CHARACTER = st.characters(codec=None, categories=["L", "M", "N", "P", "S", "Z", "Cc", "Cf", "Cs", "Co"])
fuzzed_text = st.one_of(
    st.text(ANY_CHARACTER, max_size=24),
    # Text every store takes, in any script, with marks, emoji and spaces: what should be accepted.
    st.text(st.characters(categories=["L", "M", "N", "P", "S", "Zs"]), min_size=1, max_size=24),
    st.sampled_from(SPECIAL_TEXT),
    st.builds(lambda char, n: char * n, st.sampled_from(REPEATED), st.sampled_from(LENGTHS)),
)
fuzzed_number = st.one_of(st.integers(), st.floats(), st.sampled_from(SPECIAL_NUMBERS))
fuzzed_date = st.one_of(
    st.sampled_from(SPECIAL_DATES),
    st.builds(
        lambda moment, offset: moment.replace(tzinfo=offset).isoformat(),
        st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)),
        st.sampled_from(OFFSETS),
    ),
    st.datetimes(min_value=datetime(1960, 1, 1), max_value=datetime(2100, 1, 1)).map(lambda moment: moment.isoformat()),
)
fuzzed_email = st.one_of(
    st.emails(),
    st.sampled_from(SPECIAL_EMAILS),
    st.builds(lambda local, domain: f"{local}@{domain}", fuzzed_text, st.one_of(fuzzed_text, st.just("example.org"))),
)
scalar = st.one_of(fuzzed_text, fuzzed_number, st.booleans(), st.none(), fuzzed_date, fuzzed_email)
json_value = st.recursive(
    scalar,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(fuzzed_text, children, max_size=3),
    max_leaves=6,
)


def value_for(key: str) -> st.SearchStrategy[Any]:
    """A value shaped like what the key holds in the real deliveries, or anything at all."""
    if key == "email":
        shaped: st.SearchStrategy[Any] = fuzzed_email
    elif key in ("created_at", "joined_at", "timestamp", "occurred_at"):
        shaped = fuzzed_date
    elif key == "event_time":
        shaped = st.one_of(fuzzed_number, st.integers(min_value=0, max_value=253402300799))
    elif key == "type":
        shaped = st.sampled_from(KNOWN_TYPES)
    elif key == "subtype":
        shaped = st.sampled_from(SLACK_SUBTYPES)
    elif key in ("marketing_consent", "bot", "is_bot", "staged", "active"):
        shaped = st.one_of(st.booleans(), st.none(), st.sampled_from(["true", 1, "yes"]))
    elif key == "id" or key.endswith("_id"):
        shaped = st.one_of(fuzzed_text, st.integers(), st.sampled_from(SPECIAL_NUMBERS))
    else:
        shaped = scalar
    return st.one_of(shaped, shaped, json_value)


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found: list[tuple[Any, ...]] = []
    if isinstance(node, dict):
        for key, child in node.items():
            found.append((*prefix, key))
            found.extend(paths(child, (*prefix, key)))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found.append((*prefix, index))
            found.extend(paths(child, (*prefix, index)))
    return found


def mutated_body(draw: Callable[..., Any], body: Any) -> Any:
    """The sample's body with up to four of its fields replaced, removed or joined by new ones; now and then a
    body of another shape altogether."""
    if draw(st.integers(0, 19)) == 0:
        return draw(json_value)
    body = json.loads(json.dumps(body))
    for _ in range(draw(st.integers(0, 4))):
        candidates = paths(body)
        if not candidates:
            break
        path = draw(st.sampled_from(candidates))
        parent = body
        for step in path[:-1]:
            parent = parent[step]
        leaf = path[-1]
        action = draw(st.sampled_from(["replace", "replace", "replace", "delete", "add"]))
        if action == "delete":
            del parent[leaf]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(fuzzed_text)] = draw(json_value)
        else:
            parent[leaf] = draw(value_for(str(leaf)))
    return body


def encoded(draw: Callable[..., Any], body: Any, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    """The body as bytes on the wire: JSON with escapes (a lone surrogate stays "\\udc00"), raw UTF-8 (a lone
    surrogate becomes bytes that are not UTF-8), or a form field; and the Content-Type saying so, or not."""
    encoding = draw(st.sampled_from(["escaped"] * 5 + ["raw", "raw", "form"]))
    text = json.dumps(body, ensure_ascii=encoding != "raw")
    raw = text.encode("utf-8", "surrogatepass")
    headers = {name: value for name, value in headers.items() if name.lower() != "content-type"}
    content_type = draw(st.sampled_from(CONTENT_TYPES))
    if encoding == "form":
        raw = urlencode({"payload": text.encode("utf-8", "surrogatepass")}).encode()
        content_type = "application/x-www-form-urlencoded"
    if content_type:
        headers["Content-Type"] = content_type
    return raw, headers


def fuzzed_headers(draw: Callable[..., Any], source: str, headers: dict[str, str]) -> dict[str, str]:
    headers = dict(headers)
    if source == "discourse":
        if draw(st.booleans()):
            headers["X-Discourse-Event"] = draw(st.one_of(st.sampled_from(DISCOURSE_EVENTS), fuzzed_text))
        if draw(st.integers(0, 3)) == 0:
            headers["X-Discourse-Instance"] = draw(fuzzed_text)
    return headers


# ---------------------------------------------------------------- what a consumer can take


def sqs_message(queued: QueuedEvent) -> tuple[str, dict[str, str]]:
    """What the SQS router sends (adapters/sqs.py): the envelope's JSON and its string attributes."""
    attributes = {
        "idempotency_key": queued.idempotency_key,
        "correlation_id": queued.correlation_id,
        "event_type": queued.event.type,
    }
    return queued.model_dump_json(), attributes


def item_bytes(item: dict[str, Any]) -> int:
    """DynamoDB's item size: attribute names plus values (strings in UTF-8, numbers up to 21 bytes)."""
    total = 0
    for name, value in item.items():
        total += len(name.encode())
        if isinstance(value, str):
            total += len(value.encode())
        elif isinstance(value, datetime):
            total += len(value.isoformat())
        elif isinstance(value, list | set | tuple):
            total += sum(len(str(element).encode()) for element in value)
        else:
            total += 21
    return total


class Consumers:
    """The consumers of every destination, on the in-memory fakes."""

    def __init__(self) -> None:
        self.members = MemoryMembers()
        self.due_work = MemoryDueWork(self.members)
        self.trace = MemoryTrace()
        self.mailing_list = FakeMailingList()
        rules = OnboardingRules(list_id="list1", welcome_journey=WelcomeJourney("j1", "s1"))
        ledger = MemoryLedger(self.members)
        deps = OnboardingDeps(
            mailing_list=self.mailing_list,
            members=self.members,
            due_work=self.due_work,
            trace=self.trace,
            rules=rules,
            suppressions=MemorySuppressions(),
            ledger=ledger,
            clock=lambda: NOW,
        )
        self.drip = DripDeps(
            self.mailing_list,
            self.members,
            self.due_work,
            self.trace,
            rules.list_id,
            rules.drip_step_days,
            rules.welcome_journey,
            ledger,
        )
        self.handlers = {"onboarding": onboarding.handlers(lambda: deps)}

    def consume(self, body: str) -> None:
        queued = QueuedEvent.from_json(body, CATALOG)
        consumer = CATALOG.get(queued.event.type).consumer
        assert consumer in self.handlers, f"the fuzz test has no fake consumer {consumer!r}: add it to Consumers"
        try:
            self.handlers[consumer][queued.event.type](queued)
            for days in (1, 3, 7, 31):
                send_due_drip_steps(NOW + timedelta(days=days), f"run-{days}", self.drip)
        except MemberflowError:
            pass  # a refusal or a failure the worker knows how to handle

    def assert_fits_the_stores(self) -> None:
        for member_id, record in self.members.profiles.items():
            assert len(member_pk(member_id).encode()) <= DYNAMODB_PARTITION_KEY_BYTES
            assert item_bytes(dataclasses.asdict(record)) <= DYNAMODB_ITEM_BYTES
        for identity_key in self.members.links:
            assert len(identity_pk(identity_key).encode()) <= DYNAMODB_SORT_KEY_BYTES
        for record in self.trace.records:
            assert len(record.subject.encode()) <= DYNAMODB_PARTITION_KEY_BYTES
            assert item_bytes({**dataclasses.asdict(record), "sk": f"{record.at.isoformat()}#12345678"}) <= (
                DYNAMODB_ITEM_BYTES
            )


def assert_consumable(queued: QueuedEvent) -> None:
    body, attributes = sqs_message(queued)
    size = len(body.encode()) + sum(len(f"{name}String{value}".encode()) for name, value in attributes.items())
    assert size <= SQS_MESSAGE_BYTES
    for text in (body, *attributes.values()):
        assert SQS_CHARACTERS.fullmatch(text), f"SQS refuses {text[:80]!r}"
    assert QueuedEvent.from_json(body, CATALOG) == queued
    consumers = Consumers()
    consumers.consume(body)
    consumers.assert_fits_the_stores()


# ---------------------------------------------------------------- the property


fuzz = settings(
    max_examples=EXAMPLES_PER_SOURCE,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


@pytest.mark.parametrize("source", SOURCES)
@seed(FUZZ_SEED)
@fuzz
@given(data=st.data())
def test_signed_fuzzed_deliveries_never_get_a_5xx_and_what_is_accepted_a_consumer_can_take(source: str, data: Any):
    note(f"MEMBERFLOW_FUZZ_SEED={FUZZ_SEED} (source {source})")
    delivery = data.draw(st.sampled_from(DELIVERIES[source]), label="sample")
    body = mutated_body(data.draw, delivery["body"])
    raw, headers = encoded(data.draw, body, fuzzed_headers(data.draw, source, delivery["headers"]))
    note(f"body sent: {raw[:2000]!r}")
    intake = Intake()

    answer = accept_webhook(source, raw, signed(source, raw, headers), intake.deps, correlation_id="fuzz-1")

    event(f"{answer.status} {answer.body.get('status') or answer.body.get('error')}")
    assert answer.status < 500, answer.body
    json.dumps(answer.body)  # the handler's answer is JSON, whatever the delivery held
    if answer.status >= 400:
        assert {"error", "detail"} <= answer.body.keys()
    for record in intake.trace.records:  # what intake itself files: the day's rejections, the member's receipt
        assert len(record.subject.encode()) <= DYNAMODB_PARTITION_KEY_BYTES
    queued = intake.queue.sent
    assert len(queued) == (1 if answer.body.get("status") == "queued" else 0)
    for accepted in queued:
        assert_consumable(accepted)


def test_every_source_has_samples_to_fuzz_from():
    assert all(DELIVERIES[source] for source in SOURCES)
