"""`make demo`: start the local stack, replay `events/demo/scenario.json` over HTTP, run the drip, and print a
summary that is checked against the sandbox's own state (read through the official Mailchimp client).

The screen tells the scenario as a story, scene by scene (a step with a `scene` title starts the next one), with a
progress bar while requests are replayed and while the queues drain. Everything the functions, Powertools, boto3
and the local stack write meanwhile (JSON logs, metrics, warnings) goes to a log file instead
(:class:`memberflow_local.capture.LogCapture`); the first and the last lines on screen name it."""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from memberflow import signatures
from memberflow.adapters.member_profiles import DynamoMemberRepository, record_from_item
from memberflow.adapters.trace_store import DynamoTraceStore
from memberflow.members import MemberRecord
from memberflow.trace_report import collect
from memberflow_local.capture import LogCapture
from memberflow_local.scenes import LAST_SCENES, SCENES, SceneContext
from memberflow_local.scenes.winback import SEEDED
from memberflow_local.settings import REPO_ROOT, LocalSettings
from memberflow_local.stack import LocalStack
from memberflow_local.story import ProgressBar, Story

SCENARIO = REPO_ROOT / "events" / "demo" / "scenario.json"
LOG_DIR = Path(tempfile.gettempdir()) / "memberflow"
"""Where each run's log file goes: ``<system temp dir>/memberflow/demo-<UTC timestamp>.log``."""
DRAIN_TIMEOUT = 120
ITEMISED_DELIVERIES = 6
"""A scene with at most this many requests lists each one and its answer; a longer one shows a progress bar."""


@dataclass
class DemoResults:
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    answers: Counter = field(default_factory=Counter)
    rejected: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    drip: Counter = field(default_factory=Counter)
    checks: list[tuple[bool, str]] = field(default_factory=list)
    retries_told: bool = False
    """Whether the screen said that failed events are retried while the story goes on (said once)."""


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


def default_log_path() -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    path, n = LOG_DIR / f"demo-{stamp}.log", 1
    while path.exists():
        n += 1
        path = LOG_DIR / f"demo-{stamp}-{n}.log"
    return path


def scenes(steps: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """The scenario's steps grouped into scenes: a step with a `scene` title starts one, later steps belong to it."""
    grouped: list[tuple[str, list[dict[str, Any]]]] = []
    for step in steps:
        if "scene" in step or not grouped:
            grouped.append((step.get("scene", "The scenario"), []))
        grouped[-1][1].append(step)
    return grouped


def run_demo(
    scenario_path: Path = SCENARIO, settings: LocalSettings | None = None, *, log_path: Path | None = None
) -> int:
    started = time.monotonic()
    scenario = json.loads(scenario_path.read_text())
    # The functions log at INFO: into the log file, not onto the screen.
    settings = settings or LocalSettings.from_env(log_level=os.environ.get("MEMBERFLOW_LOCAL_LOG_LEVEL", "INFO"))
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    log_path = Path(log_path) if log_path is not None else default_log_path()
    story = Story(sys.stdout)
    story.paragraph(f"memberflow demo. {scenario['description']}")
    story.line(f"The functions' logs go to {log_path}")
    results = DemoResults()
    log_scene = logging.getLogger("memberflow_local.demo")
    with LogCapture(log_path) as log:
        story.line("Starting the local stack: AWS on moto, a sandbox Mailchimp, the HTTP API ...")
        with LocalStack(settings) as stack:
            stack.print_endpoints(file=log.stream)
            api = stack.endpoints()["api_url"].rstrip("/")
            story.line(
                f"webhooks at {api}/webhooks/{{source}}, sandbox Mailchimp at {stack.mailchimp.url}", indent=True
            )
            grouped = scenes(scenario["steps"])
            coded = [*SCENES, *LAST_SCENES]
            total = len(grouped) + len(coded)
            for number, (title, steps) in enumerate(grouped, 1):
                story.scene(number, total, title)
                log_scene.info("scene %d/%d: %s", number, total, title)
                _play_scene(steps, stack, settings, api, results, story)
            # The scenario's retried member is seen through by the coded scenes' drains, which wait for retries.
            _drain(stack, story, retries=False, results=results)
            context = SceneContext(stack, settings, api, story, results.started_at, drain=lambda: _drain(stack, story))
            for number, (title, play) in enumerate(coded, len(grouped) + 1):
                story.scene(number, total, title)
                log_scene.info("scene %d/%d: %s", number, total, title)
                play(context)
                _drain(stack, story)
            results.checks.extend(context.checks)
            _summarise(stack, scenario, results, settings, story)
    elapsed = time.monotonic() - started
    failed = [text for ok, text in results.checks if not ok] + results.unexpected
    story.line()
    story.line(f"demo finished in {elapsed:.1f}s: {'OK' if not failed else 'FAILED'}")
    for text in failed:
        story.line(f"  FAILED: {text}")
    story.line(f"function logs: {log_path}")
    return 0 if not failed else 1


class _Requests:
    """A scene's requests on screen: one line each in a short scene, a progress bar and a tally in a long one (one
    bar per run of requests that nothing else interrupts, counted against that run's requests)."""

    def __init__(self, steps: list[dict[str, Any]], story: Story) -> None:
        self.story = story
        self.itemised = sum(1 for step in steps if step["kind"] == "deliver") <= ITEMISED_DELIVERIES
        self.bar: ProgressBar | None = None
        self.run = 0
        self.sent = 0
        self.answers: Counter[str] = Counter()

    def begin(self, requests: int) -> None:
        """A run of `requests` deliveries starts."""
        self.close()
        self.run = requests

    def answered(self, step: dict[str, Any], status: int, word: str) -> None:
        if self.itemised:
            expected = step.get("expect", 200)
            surprise = "" if status == expected else f"  (expected {expected})"
            who = _email_in(step.get("body"))
            label = step.get("label", step["source"]) + (f" ({who})" if who else "")
            self.story.line(f"{label}  ->  {status} {word}{surprise}", indent=True)
            return
        if self.bar is None:
            self.bar = self.story.progress("requests replayed", self.run)
            self.sent = 0
        self.sent += 1
        self.answers[f"{status} {word}"] += 1
        self.bar.update(self.sent)

    def close(self) -> None:
        """Before anything else is told: finish the bar, tally the answers."""
        if self.bar is None:
            return
        self.bar.finish()
        tally = ", ".join(f"{count} x {answer}" for answer, count in sorted(self.answers.items()))
        self.story.line(f"answers: {tally}", indent=True)
        self.bar = None
        self.answers.clear()


def _email_in(body: Any) -> str | None:
    """The first email address in a delivery's body, to say on screen who a request is about."""
    if isinstance(body, dict):
        if isinstance(body.get("email"), str):
            return body["email"]
        values: Any = body.values()
    elif isinstance(body, list):
        values = body
    else:
        return None
    for value in values:
        found = _email_in(value)
        if found:
            return found
    return None


def _play_scene(
    steps: list[dict[str, Any]],
    stack: LocalStack,
    settings: LocalSettings,
    api: str,
    results: DemoResults,
    story: Story,
) -> None:
    replay = _Requests(steps, story)
    for index, step in enumerate(steps):
        if step["kind"] == "deliver":
            if index == 0 or steps[index - 1]["kind"] != "deliver":
                replay.begin(_run_length(steps, index))
            status, word = _deliver(step, settings, api, results)
            replay.answered(step, status, word)
        else:
            replay.close()
            _play(step, stack, settings, results, story)
    replay.close()


def _run_length(steps: list[dict[str, Any]], start: int) -> int:
    """How many deliveries follow one another from `start`."""
    length = 0
    while start + length < len(steps) and steps[start + length]["kind"] == "deliver":
        length += 1
    return length


def _deliver(step: dict[str, Any], settings: LocalSettings, api: str, results: DemoResults) -> tuple[int, str]:
    """POST the step's request; its status code and what the answer says (`queued`, `invalid_signature`, ...)."""
    body, headers = signed_request(step, settings, int(time.time()))
    answer = requests.post(f"{api}/webhooks/{step['source']}", data=body, headers=headers, timeout=10)
    results.answers[answer.status_code] += 1
    try:
        said = answer.json()
    except ValueError:
        said = {}
    said = said if isinstance(said, dict) else {}
    word = str(said.get("error") or said.get("status") or "")
    if answer.status_code >= 400:
        results.rejected.append(f"{answer.status_code} {said.get('error', '?')}: {step.get('label', '')}")
    if answer.status_code != step.get("expect", 200):
        results.unexpected.append(
            f"{step.get('label')}: expected {step.get('expect', 200)}, got {answer.status_code} {answer.text[:200]}"
        )
    return answer.status_code, word


def _play(step: dict[str, Any], stack: LocalStack, settings: LocalSettings, results: DemoResults, story: Story) -> None:
    kind = step["kind"]
    if kind == "seed_mailchimp":
        stack.mailchimp.seed_member(settings.mailchimp_list_id, step["email"], step["status"])
        story.line(f"sandbox: {step['note']}", indent=True)
    elif kind == "sandbox_faults":
        stack.mailchimp.set_faults(fail_emails=step["fail_emails"])
        story.line(f"sandbox: {step['note']}", indent=True)
    elif kind == "drain":
        _drain(stack, story, retries=False, results=results)
        _so_far(stack, settings, story)
    elif kind == "confirm_opt_in":
        # The member clicks a link Mailchimp sent them: wait for the queues only until they are pending there. The
        # previous member's click, still queued, holds no one up (each drain gathers for a batching window).
        if not _pending(stack, settings, step["email"]):
            _drain(stack, story, retries=False, results=results)
        stack.mailchimp.confirm_opt_in(settings.mailchimp_list_id, step["email"])
        story.line(f"sandbox: {step['note']}", indent=True)
    elif kind == "schedule":
        _drain(stack, story, retries=False, results=results)
        at = results.started_at + timedelta(days=step["after_days"])
        report = stack.fire_schedule(step["name"], at)
        results.drip.update(report.get("tags", {}))
        story.line(
            f"{step['name']} fired as of +{step['after_days']} days: {report.get('sent', 0)} drip steps sent, "
            f"{report.get('stopped_active', 0)} stopped (member active), "
            f"{report.get('opt_ins_confirmed', 0)} double opt-in(s) confirmed and welcomed",
            indent=True,
        )
    else:
        raise ValueError(f"unknown scenario step kind {kind!r}")


def _drain(
    stack: LocalStack,
    story: Story,
    timeout: float = DRAIN_TIMEOUT,
    *,
    retries: bool = True,
    results: DemoResults | None = None,
) -> bool:
    """Wait until the SQS event sources' queues are empty, with a progress bar while there is anything to wait for.

    The bar counts the messages that left the queues (processed, or parked in a dead-letter queue) against those
    that were there plus those that arrived meanwhile. With ``retries=False`` the wait ends once every event has
    been handled: one still in flight then waits out the delay before its retry (its member's calls failed), and
    the story goes on while it does (said once per `results`); a later drain that waits for retries sees it
    through."""
    deadline = time.monotonic() + timeout
    pollers = stack.event_sources.pollers

    def waiting() -> tuple[int, int]:
        """Messages in the queues, and how many of them only wait for a retry's delay."""
        total = delayed_retries = 0
        for poller in pollers:
            counts = poller.queue_counts()
            total += sum(counts.values())
            if not counts["ApproximateNumberOfMessages"] and not counts["ApproximateNumberOfMessagesDelayed"]:
                delayed_retries += max(0, counts["ApproximateNumberOfMessagesNotVisible"] - poller.held)
        return total, (0 if retries else delayed_retries)

    left, retrying = waiting()
    bar = story.progress("queued events processed", left - retrying) if left > retrying else None
    done = settled = 0
    while bar is not None and left and time.monotonic() < deadline:
        time.sleep(0.2)
        now, retrying = waiting()
        done += max(0, left - now)
        left = now
        bar.update(done, done + left - retrying)
        # Twice in a row: a message just received is in flight for a moment before its poller holds it.
        settled = settled + 1 if left == retrying else 0
        if settled == 2:
            bar.finish()
            if results is not None and not results.retries_told:
                results.retries_told = True
                story.line(
                    f"{retrying} event(s) failed and wait to be retried; the story goes on meanwhile", indent=True
                )
            return True
    if left and left == retrying:
        return True  # nothing new since the last drain: only retries that are still waiting
    drained = stack.drain(timeout=max(0.0, deadline - time.monotonic()))
    if bar is not None:
        bar.finish()
    if not drained:
        story.line(f"the queues were not empty after {timeout:.0f} s: the log file tells why", indent=True)
    return drained


def _pending(stack: LocalStack, settings: LocalSettings, email: str) -> bool:
    member = stack.mailchimp.state.get_member(settings.mailchimp_list_id, email)
    return member is not None and member.status == "pending"


def _so_far(stack: LocalStack, settings: LocalSettings, story: Story) -> None:
    """memberflow's records and the sandbox's state, in two lines."""
    members = _stored_members(stack)
    with_email = [m for m in members if m.email]
    journeys = sum(1 for m in with_email if m.journey_started_at)
    active = sum(1 for m in members if m.activated_at)
    story.line(
        f"memberflow: {len(members)} members stored ({len(with_email)} with an email), "
        f"{journeys} welcome journeys started, {active} members active",
        indent=True,
    )
    state = stack.mailchimp.state
    with state.lock:
        statuses = Counter(m.status for m in state.audience(settings.mailchimp_list_id).members.values())
    described = ", ".join(f"{count} {status}" for status, count in statuses.most_common())
    story.line(f"sandbox Mailchimp: {sum(statuses.values())} members ({described})", indent=True)


def _summarise(
    stack: LocalStack, scenario: dict[str, Any], results: DemoResults, settings: LocalSettings, story: Story
) -> None:
    import mailchimp_marketing

    say = story.line

    # The sandbox's own state, read the way a marketer's tools would: through the official client.
    client = mailchimp_marketing.Client()
    client.set_config({"api_key": settings.mailchimp_api_key})
    client.api_client.host = stack.mailchimp.url
    in_mailchimp: dict[str, Any] = {}
    while True:  # page by page: a scene may have seeded thousands of members
        page = client.lists.get_list_members_info(settings.mailchimp_list_id, count=1000, offset=len(in_mailchimp))
        in_mailchimp.update((m["email_address"].lower(), m) for m in page["members"])
        if not page["members"] or len(in_mailchimp) >= page["total_items"]:
            break
    status_of = {email: m["status"] for email, m in in_mailchimp.items()}
    triggers = Counter(t["email_address"].lower() for t in stack.mailchimp.state.journey_triggers)
    # memberflow's own records.
    # The scenario's members; a scene's seeded community (no event brought it) is the scene's to check.
    stored = _stored_members(stack)  # one scan: the seeded scenes leave tens of thousands of items
    ours = [m for m in stored if m.email and m.last_correlation_id != SEEDED]
    dlq = stack.dead_letters("MemberEventsDeadLetterQueue")

    say("\n=== memberflow demo summary ===")
    say(f"requests sent: {sum(results.answers.values())}  answers: {dict(sorted(results.answers.items()))}")
    say(
        f"members onboarded: {len(ours)} with an email "
        f"(+{sum(1 for m in stored if not m.email)} Discord members without one, stored only)"
    )
    say(f"  Mailchimp status as memberflow recorded it: {dict(Counter(m.mailchimp_status for m in ours))}")
    say(f"welcome journeys started: {sum(1 for m in ours if m.journey_started_at)}")
    say(f"drip steps sent: {sum(m.drip_steps_sent for m in ours)}  {dict(sorted(results.drip.items()))}")
    say("requests rejected:")
    for line in results.rejected:
        say(f"  {line}")
    say(f"dead-letter queue: {len(dlq)} message(s)")
    for message in dlq:
        say(f"  {message.get('failure_reason', '?')}  [correlation {message.get('correlation_id', '?')}]")
    say(
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
    for email in expected.get("pending", []):
        check((status_of.get(email) == "pending", f"{email} waits for double opt-in (is {status_of.get(email)})"))
        check((triggers[email] == 0, f"{email} got no welcome journey before confirming (got {triggers[email]})"))
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
    say(f"checks of memberflow's records and the scenario against the sandbox: {passed}/{len(results.checks)} passed")

    say("\nwhy (not)? `memberflow trace EMAIL` for a few members:")
    traces = DynamoTraceStore(stack.table_name("TraceTable"))
    member_store = DynamoMemberRepository(stack.table_name("MembersTable"))
    for email in scenario["trace_examples"]:
        report = collect(email, traces, member_store)
        answer = {True: "YES", False: "NO", None: "UNKNOWN"}[report.verdict.welcomed]
        say(f"  {email:<34} welcome email {answer}: {report.verdict.reason}")


def _stored_members(stack: LocalStack) -> list[MemberRecord]:
    """Every member profile (a scan: fine for a demo-sized table, never done by the functions)."""
    table = stack.client("dynamodb")
    from boto3.dynamodb.types import TypeDeserializer

    deserialize = TypeDeserializer().deserialize
    members = []
    profiles = {"FilterExpression": "sk = :profile", "ExpressionAttributeValues": {":profile": {"S": "PROFILE"}}}
    for page in table.get_paginator("scan").paginate(TableName=stack.table_name("MembersTable"), **profiles):
        for raw in page["Items"]:
            members.append(record_from_item({key: deserialize(value) for key, value in raw.items()}))
    return members


if __name__ == "__main__":
    sys.exit(run_demo())
