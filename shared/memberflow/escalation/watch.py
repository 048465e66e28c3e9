"""What intake hands escalation: a verified delivery from Slack or Discourse that one of the rules matches becomes
an `escalation_requested` event, besides whatever else the delivery means (a member's message is still activity).

- Slack `message`: its text against the keyword/pattern rules; the thread is the channel plus the thread's ts.
- Slack `reaction_added`: a reaction a rule names (e.g. `ticket`), by one of its reactors; the reacted message's
  author is the member, and its thread is escalated.
- Discourse `post_created`: the post's raw text against the rules; the thread is the topic.
- Discourse `flag_created` (WebHookFlagSerializer: the flagged post as BasicPostSerializer, the flag type, who
  flagged): escalated with the flag rule; the thread is the flagged post.

The watcher is given to intake by the runtime; intake knows nothing of escalation."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from memberflow.escalation.rules import EscalationRules, Rule
from memberflow.events.base import Event
from memberflow.events.escalations import EscalationRequested

logger = logging.getLogger(__name__)


class EscalationWatcher:
    def __init__(self, rules: EscalationRules) -> None:
        self.rules = rules

    def __call__(self, source: str, payload: Any, headers: Mapping[str, str]) -> list[tuple[Event, str]]:
        if not isinstance(payload, dict):
            return []
        try:
            if source == "slack" and payload.get("type") == "event_callback":
                return self._slack(payload)
            if source == "discourse":
                return self._discourse(payload, headers)
        except (ValidationError, ValueError, TypeError, KeyError, AttributeError) as error:
            # The delivery was valid for intake; an escalation we cannot build is logged, never a refusal.
            logger.warning("escalation not built", extra={"source": source, "error": type(error).__name__})
        return []

    # ---------------------------------------------------------------- Slack

    def _slack(self, payload: dict[str, Any]) -> list[tuple[Event, str]]:
        event = payload.get("event") or {}
        team = _slack_team(payload)
        kind = event.get("type")
        if kind == "message":
            if event.get("bot_id") or event.get("subtype") not in (None, "thread_broadcast", "file_share"):
                return []
            text = str(event.get("text") or "")
            rule = self.rules.for_text(text)
            if rule is None or not event.get("user"):
                return []
            channel, thread_ts = str(event["channel"]), str(event.get("thread_ts") or event["ts"])
            return [self._slack_escalation(payload, rule, "keyword", team, event["user"], channel, thread_ts, text)]
        if kind == "reaction_added":
            item = event.get("item") or {}
            rule = self.rules.for_reaction(str(event.get("reaction", "")), str(event.get("user", "")))
            if rule is None or item.get("type") != "message" or not event.get("item_user"):
                return []
            channel, ts = str(item["channel"]), str(item["ts"])
            return [self._slack_escalation(payload, rule, "reaction", team, event["item_user"], channel, ts, "")]
        return []

    def _slack_escalation(
        self,
        payload: dict[str, Any],
        rule: Rule,
        via: str,
        team: str,
        user: str,
        channel: str,
        thread_ts: str,
        text: str,
    ) -> tuple[Event, str]:
        escalation = EscalationRequested(
            thread=f"slack:{team}:{channel}:{thread_ts}",
            platform="slack",
            via=via,  # type: ignore[arg-type]
            rule=rule.name,
            author={"platform": "slack", "workspace": team, "user_id": str(user)},  # type: ignore[arg-type]
            text=text[:20_000],
            permalink=f"https://app.slack.com/client/{team}/{channel}/thread/{channel}-{thread_ts}",
            requested_at=datetime.fromtimestamp(int(payload["event_time"]), UTC),
            reply_to={"channel": channel, "thread_ts": thread_ts},  # type: ignore[arg-type]
        )
        return escalation, f"escalation:slack:{team}:{payload['event_id']}"

    # ---------------------------------------------------------------- Discourse

    def _discourse(self, payload: dict[str, Any], headers: Mapping[str, str]) -> list[tuple[Event, str]]:
        name = headers.get("x-discourse-event", "")
        instance = headers.get("x-discourse-instance", "").rstrip("/")
        if not instance:
            return []
        if name == "post_created":
            post = payload.get("post") or {}
            rule = self.rules.for_text(str(post.get("raw") or ""))
            if rule is None or int(post.get("user_id") or 0) <= 0:
                return []
            topic, number = int(post["topic_id"]), int(post.get("post_number") or 1)
            return [
                self._discourse_escalation(
                    rule,
                    "keyword",
                    instance,
                    thread=f"discourse:{instance}:topic:{topic}",
                    user_id=str(post["user_id"]),
                    post=post,
                    permalink=f"{instance}/t/{post.get('topic_slug') or 'topic'}/{topic}/{number}",
                    reply_to={"topic_id": topic, "post_number": number},
                    key=f"escalation:discourse:{instance}:post:{post['id']}",
                )
            ]
        if name == "flag_created":
            flag = payload.get("flag") or {}
            post = flag.get("post") or {}
            rule = self.rules.for_flag()
            if rule is None or not post.get("id") or not post.get("username"):
                return []
            return [
                self._discourse_escalation(
                    rule,
                    "flag",
                    instance,
                    thread=f"discourse:{instance}:post:{post['id']}",
                    user_id=str(post["username"]),
                    post=post,
                    permalink=f"{instance}/p/{post['id']}",
                    reply_to={},
                    key=f"escalation:discourse:{instance}:flag:{flag['id']}",
                    extra=f" (flagged as {flag.get('flag_type') or 'a problem'})",
                )
            ]
        return []

    def _discourse_escalation(
        self,
        rule: Rule,
        via: str,
        instance: str,
        *,
        thread: str,
        user_id: str,
        post: Mapping[str, Any],
        permalink: str,
        reply_to: dict[str, Any],
        key: str,
        extra: str = "",
    ) -> tuple[Event, str]:
        text = str(post.get("raw") or post.get("cooked") or "")[:19_000] + extra
        created = post.get("created_at")
        escalation = EscalationRequested(
            thread=thread,
            platform="discourse",
            via=via,  # type: ignore[arg-type]
            rule=rule.name,
            author={"platform": "discourse", "workspace": instance, "user_id": user_id},  # type: ignore[arg-type]
            author_name=post.get("name") or post.get("username"),
            text=text,
            permalink=permalink,
            requested_at=datetime.fromisoformat(str(created).replace("Z", "+00:00")) if created else datetime.now(UTC),
            reply_to=reply_to,  # type: ignore[arg-type]
        )
        return escalation, key


def _slack_team(payload: Mapping[str, Any]) -> str:
    authorizations = payload.get("authorizations") or []
    if authorizations and isinstance(authorizations[0], dict) and authorizations[0].get("team_id"):
        return str(authorizations[0]["team_id"])
    return str(payload["team_id"])
