"""`make demo`: start the local stack, replay `events/demo/scenario.json` over HTTP, run the drip, and print a
summary that is checked against the sandbox's own state (read through the official Mailchimp client)."""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from memberflow import signatures
from memberflow.adapters.member_profiles import DynamoMemberRepository, record_from_item
from memberflow.members import MemberRecord
from memberflow.adapters.trace_store import DynamoTraceStore
from memberflow.trace_report import collect
from memberflow_local.settings import REPO_ROOT, LocalSettings
from memberflow_local.stack import LocalStack

SCENARIO = REPO_ROOT / "events" / "demo" / "scenario.json"


@dataclass
class DemoResults:
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    answers: Counter = field(default_factory=Counter)
    rejected: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    drip: Counter = field(default_factory=Counter)
    checks: list[tuple[bool, str]] = field(default_factory=list)


def signed_request(step: dict[str, Any], settings: LocalSettings, now: int) -> tuple[bytes, dict[str, str]]:
    """The body and headers a platform would send for `step`, signed now with the local secrets."""
    body = step["raw_body"].encode() if "raw_body" in step else json.dumps(step["body"]).encode()
    headers = dict(step.get("headers", {}))
    timestamp = now - int(step.get("signed_seconds_ago", 0))
    source = step["source"]
    if source == "slack":
        headers.update(signatures.sign_slack(settings.slack_signing_secret, body, timestamp))
    elif source == "discourse":
        headers.update(signatures.sign_discourse(settings.discourse_secret, body))
    elif source == "discord":
        headers.update(signatures.sign_discord_relay(settings.discord_relay_private_key, body, timestamp))
    else:
        headers.update(signatures.sign_generic(settings.generic_hmac_secret, body, timestamp))
    if step.get("forge"):
        # A forger without the secret: right headers, wrong signature.
        for name in headers:
            if "signature" in name.lower() and "timestamp" not in name.lower():
                value = headers[name]
                headers[name] = value[:-4] + ("0000" if not value.endswith("0000") else "1111")
    return body, headers


def run_demo(scenario_path: Path = SCENARIO, settings: LocalSettings | None = None) -> int:
    started = time.monotonic()
    scenario = json.loads(scenario_path.read_text())
    # The summary is the demo's output: keep the functions' own logs and metrics to warnings and errors.
    settings = settings or LocalSettings.from_env(log_level=os.environ.get("MEMBERFLOW_LOCAL_LOG_LEVEL", "ERROR"))
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    results = DemoResults()
    with LocalStack(settings) as stack:
        stack.print_endpoints()
        api = stack.endpoints()["api_url"].rstrip("/")
        for number, step in enumerate(scenario["steps"], 1):
            _play(step, stack, settings, api, results)
            if number % 10 == 0:
                print(f"  ... {number}/{len(scenario['steps'])} steps replayed", flush=True)
        stack.drain(timeout=120)
        _summarise(stack, scenario, results, settings)
    elapsed = time.monotonic() - started
    failed = [text for ok, text in results.checks if not ok] + results.unexpected
    print(f"\ndemo finished in {elapsed:.1f}s: {'OK' if not failed else 'FAILED'}")
    for text in failed:
        print(f"  FAILED: {text}")
    return 0 if not failed else 1


def _play(step: dict[str, Any], stack: LocalStack, settings: LocalSettings, api: str, results: DemoResults) -> None:
    kind = step["kind"]
    if kind == "seed_mailchimp":
        stack.mailchimp.seed_member(settings.mailchimp_list_id, step["email"], step["status"])
        print(f"- sandbox: {step['note']}")
    elif kind == "sandbox_faults":
        stack.mailchimp.set_faults(fail_emails=step["fail_emails"])
        print(f"- sandbox: {step['note']}")
    elif kind == "drain":
        stack.drain(timeout=120)
    elif kind == "confirm_opt_in":
        stack.drain(timeout=120)
        stack.mailchimp.confirm_opt_in(settings.mailchimp_list_id, step["email"])
        print(f"- sandbox: {step['note']}")
    elif kind == "schedule":
        stack.drain(timeout=120)
        at = results.started_at + timedelta(days=step["after_days"])
        report = stack.fire_schedule(step["name"], at)
        results.drip.update(report.get("tags", {}))
        print(
            f"- {step['name']} fired as of +{step['after_days']} days: {report.get('sent', 0)} drip steps sent, "
            f"{report.get('stopped_active', 0)} stopped (member active), "
            f"{report.get('opt_ins_confirmed', 0)} double opt-in(s) confirmed and welcomed"
        )
    elif kind == "deliver":
        body, headers = signed_request(step, settings, int(time.time()))
        answer = requests.post(f"{api}/webhooks/{step['source']}", data=body, headers=headers, timeout=10)
        results.answers[answer.status_code] += 1
        if answer.status_code >= 400:
            error = answer.json().get("error", "?")
            results.rejected.append(f"{answer.status_code} {error}: {step.get('label', '')}")
        if answer.status_code != step.get("expect", 200):
            results.unexpected.append(
                f"{step.get('label')}: expected {step.get('expect', 200)}, got {answer.status_code} {answer.text[:200]}"
            )
    else:
        raise ValueError(f"unknown scenario step kind {kind!r}")


def _summarise(stack: LocalStack, scenario: dict[str, Any], results: DemoResults, settings: LocalSettings) -> None:
    import mailchimp_marketing

    # The sandbox's own state, read the way a marketer's tools would: through the official client.
    client = mailchimp_marketing.Client()
    client.set_config({"api_key": settings.mailchimp_api_key})
    client.api_client.host = stack.mailchimp.url
    in_mailchimp = {
        m["email_address"].lower(): m
        for m in client.lists.get_list_members_info(settings.mailchimp_list_id, count=1000)["members"]
    }
    status_of = {email: m["status"] for email, m in in_mailchimp.items()}
    triggers = Counter(t["email_address"].lower() for t in stack.mailchimp.state.journey_triggers)
    # memberflow's own records.
    ours = [m for m in _stored_members(stack) if m.email]
    dlq = stack.dead_letters("MemberEventsDeadLetterQueue")

    print("\n=== memberflow demo summary ===")
    print(f"requests sent: {sum(results.answers.values())}  answers: {dict(sorted(results.answers.items()))}")
    print(
        f"members onboarded: {len(ours)} with an email "
        f"(+{len(_stored_members(stack)) - len(ours)} Discord members without one, stored only)"
    )
    print(f"  Mailchimp status as memberflow recorded it: {dict(Counter(m.mailchimp_status for m in ours))}")
    print(f"welcome journeys started: {sum(1 for m in ours if m.journey_started_at)}")
    print(f"drip steps sent: {sum(m.drip_steps_sent for m in ours)}  {dict(sorted(results.drip.items()))}")
    print("requests rejected:")
    for line in results.rejected:
        print(f"  {line}")
    print(f"dead-letter queue: {len(dlq)} message(s)")
    for message in dlq:
        print(f"  {message.get('failure_reason', '?')}  [correlation {message.get('correlation_id', '?')}]")
    print(
        f"sandbox Mailchimp: {len(status_of)} members {dict(Counter(status_of.values()))}, "
        f"{sum(triggers.values())} journey triggers"
    )

    check = results.checks.append
    for member in ours:  # memberflow's account of each member agrees with Mailchimp's state
        email = member.email.lower()
        theirs = in_mailchimp.get(email)
        if member.mailchimp_status and not member.mailchimp_status.startswith("refused"):
            check(
                (
                    theirs is not None and theirs["status"] == member.mailchimp_status,
                    f"{email}: memberflow says {member.mailchimp_status}, Mailchimp {theirs and theirs['status']}",
                )
            )
        check(
            (
                triggers[email] == (1 if member.journey_started_at else 0),
                f"{email}: journey per memberflow={bool(member.journey_started_at)}, triggers={triggers[email]}",
            )
        )
        drip_tags = sum(1 for t in (theirs or {}).get("tags", []) if t["name"].startswith("onboarding-day-"))
        check(
            (
                drip_tags == member.drip_steps_sent,
                f"{email}: {member.drip_steps_sent} drip steps per memberflow, {drip_tags} drip tags in Mailchimp",
            )
        )
    expected = scenario["expected"]
    for email in expected["subscribed"]:
        check((status_of.get(email) == "subscribed", f"{email} subscribed (is {status_of.get(email)})"))
        check((triggers[email] == 1, f"{email} got exactly one welcome journey (got {triggers[email]})"))
    for email in expected["not_subscribed"]:
        check(
            (
                status_of.get(email) not in (None, "subscribed"),
                f"{email} in Mailchimp, not subscribed (is {status_of.get(email)})",
            )
        )
        check((triggers[email] == 0, f"{email} got no welcome journey (got {triggers[email]})"))
    for email in expected["still_unsubscribed"]:
        check((status_of.get(email) == "unsubscribed", f"{email} still unsubscribed (is {status_of.get(email)})"))
    for status, count in expected["rejections"].items():
        check((results.answers[int(status)] == count, f"{count} request(s) rejected with {status}"))
    check((len(dlq) == expected["dead_letters"], f"{expected['dead_letters']} message(s) in the DLQ, got {len(dlq)}"))
    sent = sum(results.drip.values())
    check((sent == expected["drip_steps"], f"{expected['drip_steps']} drip steps sent, got {sent}"))
    passed = sum(ok for ok, _ in results.checks)
    print(f"checks of memberflow's records and the scenario against the sandbox: {passed}/{len(results.checks)} passed")

    print("\nwhy (not)? `memberflow trace EMAIL` for a few members:")
    traces = DynamoTraceStore(stack.table_name("TraceTable"))
    member_store = DynamoMemberRepository(stack.table_name("MembersTable"))
    for email in scenario["trace_examples"]:
        report = collect(email, traces, member_store)
        answer = {True: "YES", False: "NO", None: "UNKNOWN"}[report.verdict.welcomed]
        print(f"  {email:<34} welcome email {answer}: {report.verdict.reason}")


def _stored_members(stack: LocalStack) -> list[MemberRecord]:
    """Every member profile (a scan: fine for a demo-sized table, never done by the functions)."""
    table = stack.client("dynamodb")
    from boto3.dynamodb.types import TypeDeserializer

    deserialize = TypeDeserializer().deserialize
    members = []
    for page in table.get_paginator("scan").paginate(TableName=stack.table_name("MembersTable")):
        for raw in page["Items"]:
            item = {key: deserialize(value) for key, value in raw.items()}
            if item.get("sk") == "PROFILE":
                members.append(record_from_item(item))
    return members


if __name__ == "__main__":
    sys.exit(run_demo())
