"""Audience webhooks as Mailchimp sends them: registered per audience (`POST /lists/{id}/webhooks` with `url`,
`events` and `sources`), checked with a GET when saved, then a form-encoded POST (`type=unsubscribe&fired_at=...&
data[email]=...`) whenever a member changes in a way the webhook asked for. Unsigned: the URL is the secret.

Sources follow Mailchimp's settings: `user` (the member's own action: confirming an opt-in, unsubscribing, updating
their profile), `admin` (a change in Mailchimp's web app; bounces and cleaning count as admin) and `api` (changes
made through the API, off unless asked for: an integration would hear its own writes back). Answering 410 disables
the webhook; other failures are retried a few times, then recorded."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

EVENTS = ("subscribe", "unsubscribe", "profile", "cleaned", "upemail", "campaign")
SOURCES = ("user", "admin", "api")
USER_AGENT = "MailChimp"
VALIDATOR_USER_AGENT = "MailChimp.com WebHook Validator"
ATTEMPTS = 3
TIMEOUT_SECONDS = 10


@dataclass
class Webhook:
    id: str
    list_id: str
    url: str
    events: dict[str, bool]
    sources: dict[str, bool]
    enabled: bool = True

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "events": dict(self.events),
            "sources": dict(self.sources),
            "list_id": self.list_id,
        }

    def wants(self, event_type: str, source: str) -> bool:
        return self.enabled and self.events.get(event_type, False) and self.sources.get(source, False)


@dataclass
class WebhookRegistry:
    hooks: list[Webhook] = field(default_factory=list)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.hooks.clear()
            self.deliveries.clear()

    def add(self, list_id: str, url: str, events: dict[str, Any] | None, sources: dict[str, Any] | None) -> Webhook:
        """Mailchimp checks the URL before it saves the webhook: a GET that must answer 2xx."""
        status = _get(url)
        if not 200 <= status < 300:
            raise ValueError(f"the webhook URL answered {status} to Mailchimp's check")
        wanted_events = {name: bool((events or {}).get(name, True)) for name in EVENTS}
        wanted_sources = {name: bool((sources or {}).get(name, name != "api")) for name in SOURCES}
        with self.lock:
            hook = Webhook(f"{len(self.hooks) + 1:010x}", list_id, url, wanted_events, wanted_sources)
            self.hooks.append(hook)
            return hook

    def for_list(self, list_id: str) -> list[Webhook]:
        with self.lock:
            return [hook for hook in self.hooks if hook.list_id == list_id]

    def send(self, list_id: str, event_type: str, data: dict[str, Any], source: str = "user") -> int:
        """POST the change to every webhook of the audience that asked for it; how many answered 2xx. Called
        outside the state lock (the receiver may call the API back)."""
        fired_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
        body = urlencode(flatten({"type": event_type, "fired_at": fired_at, "data": {**data, "list_id": list_id}}))
        delivered = 0
        for hook in self.for_list(list_id):
            if not hook.wants(event_type, source):
                continue
            status = 0
            for attempt in range(ATTEMPTS):
                status = _post(hook.url, body.encode())
                if 200 <= status < 300 or status == 410:
                    break
                time.sleep(0.2 * (attempt + 1))
            with self.lock:
                if status == 410:
                    hook.enabled = False  # Mailchimp disables a webhook whose URL answers 410
                self.deliveries.append({"type": event_type, "webhook_id": hook.id, "status": status})
            delivered += 200 <= status < 300
        return delivered

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "webhooks": [hook.as_json() | {"enabled": hook.enabled} for hook in self.hooks],
                "webhook_deliveries": list(self.deliveries),
            }


def flatten(value: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Nested objects as bracketed form names: {"data": {"merges": {"FNAME": "Ada"}}} -> data[merges][FNAME]=Ada."""
    pairs: list[tuple[str, str]] = []
    for key, item in value.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if isinstance(item, dict):
            pairs += flatten(item, name)
        else:
            pairs.append((name, "" if item is None else str(item)))
    return pairs


def _get(url: str) -> int:
    request = urllib.request.Request(url, method="GET", headers={"User-Agent": VALIDATOR_USER_AGENT})
    return _status(request)


def _post(url: str, body: bytes) -> int:
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded", "User-Agent": USER_AGENT},
    )
    return _status(request)


def _status(request: urllib.request.Request) -> int:
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as answer:  # noqa: S310 - the configured URL
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except (urllib.error.URLError, OSError):
        return 0
