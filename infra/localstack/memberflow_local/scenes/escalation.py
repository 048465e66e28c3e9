"""Escalation scene: a billing question and a safety report in Slack, the billing thread escalated again by a
moderator's :ticket: reaction, an agent solving the billing ticket, the member told in their thread; then everything
read back through zenpy from the sandbox Zendesk."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import requests

from memberflow import signatures
from memberflow.escalation.service import external_id

from ..escalation_sandboxes import MODERATORS_CHANNEL

if TYPE_CHECKING:
    from . import SceneContext

TEAM = "T0001ABCDE"
CHANNEL = "C0HELPDESK"
BILLING_TS = "1764500000.000100"
SAFETY_TS = "1764500060.000200"


def _slack(scene: SceneContext, event: dict[str, Any], event_id: str) -> requests.Response:
    now = int(time.time())
    body = json.dumps(
        {
            "type": "event_callback",
            "team_id": TEAM,
            "api_app_id": "A0123ABCDEF",
            "event_id": event_id,
            "event_time": now,
            "authorizations": [{"team_id": TEAM, "user_id": "U0APPBOT01", "is_bot": True}],
            "event": event,
        }
    ).encode()
    headers = {
        "Content-Type": "application/json",
        **signatures.sign_slack(scene.settings.slack_signing_secret, body, now),
    }
    return requests.post(f"{scene.api}/webhooks/slack", data=body, headers=headers, timeout=10)


def _message(user: str, text: str, ts: str, thread_ts: str | None = None) -> dict[str, Any]:
    event = {"type": "message", "user": user, "text": text, "channel": CHANNEL, "ts": ts, "team": TEAM}
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def play(scene: SceneContext) -> None:
    stack = scene.stack
    if "zendesk" not in stack.services or "slack_api" not in stack.services:
        scene.check(False, "the sandbox Zendesk and Slack Web API run in the local stack")
        return
    zendesk = stack.services["zendesk"].sandbox
    slack = stack.services["slack_api"].sandbox

    scene.say("Ana asks in #helpdesk: 'I was charged twice for the meetup pass'.")
    _slack(scene, _message("U0DEMOANA", "Hi, I was charged twice for the meetup pass", BILLING_TS), "EvDEMOESC1")
    scene.say("Ravi reports harassment in another thread.")
    _slack(scene, _message("U0DEMORAVI", "Someone keeps harassing me in DMs", SAFETY_TS), "EvDEMOESC2")
    scene.drain()
    alerts = slack.messages(MODERATORS_CHANNEL)
    scene.check(
        len(alerts) == 1 and "Safety report" in alerts[0]["text"],
        "the safety report reached the moderators' channel at once",
    )

    scene.say("A moderator reacts :ticket: on Ana's question: the same thread, escalated again.")
    reaction = {
        "type": "reaction_added",
        "user": "U0DEMOMOD",
        "reaction": "ticket",
        "item": {"type": "message", "channel": CHANNEL, "ts": BILLING_TS},
        "item_user": "U0DEMOANA",
        "event_ts": f"{time.time():.6f}",
    }
    _slack(scene, reaction, "EvDEMOESC3")
    scene.drain()

    client = zendesk.zenpy()
    billing = list(client.tickets(external_id=external_id(f"slack:{TEAM}:{CHANNEL}:{BILLING_TS}")))
    safety = list(client.tickets(external_id=external_id(f"slack:{TEAM}:{CHANNEL}:{SAFETY_TS}")))
    scene.check(len(billing) == 1 and len(safety) == 1, "one Zendesk ticket per thread (2 threads, 3 escalations)")
    if len(billing) != 1 or len(safety) != 1:
        return
    ticket, report = billing[0], safety[0]
    requester = client.users(id=ticket.requester_id)
    scene.check(
        requester.external_id == f"slack:{TEAM}:U0DEMOANA"
        and ticket.priority == "normal"
        and {"community", "slack", "billing"} <= set(ticket.tags),
        f"ticket #{ticket.id}: Ana as requester, normal priority, tags community/slack/billing",
    )
    scene.check(
        report.priority == "urgent" and "safety" in report.tags,
        f"ticket #{report.id}: the safety report is urgent",
    )
    comments = list(client.tickets.comments(ticket=ticket.id))
    scene.check(
        len(comments) == 2 and "reaction" in comments[1].body,
        "the second escalation of Ana's thread is a comment on her ticket",
    )

    scene.say(f"An agent solves ticket #{ticket.id} in Zendesk; Zendesk's webhook tells memberflow.")
    zendesk.set_status(ticket.id, "solved")
    zendesk.app.wait_for_webhooks()
    scene.drain()
    told = [m for m in slack.messages(CHANNEL) if m.get("thread_ts") == BILLING_TS]
    scene.check(len(told) == 1 and f"#{ticket.id}" in told[0]["text"], "Ana was told once, in her thread")
    for message in told:
        scene.say(f"memberflow in Ana's thread: {message['text']}")
