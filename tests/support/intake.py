"""accept_webhook without AWS: signed deliveries built from the samples in events/webhooks, an in-memory queue
and trace, and a fixed clock."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from memberflow import signatures
from memberflow.errors import QueueUnavailable
from memberflow.events import MemberActive, MemberJoined
from memberflow.intake.service import IntakeDeps, IntakeResponse, accept_webhook
from memberflow.pipeline.envelope import QueuedEvent
from support.fakes import MemoryTrace

SAMPLES = Path(__file__).resolve().parents[2] / "events" / "webhooks"
NOW = datetime(2024, 11, 14, 22, 31, tzinfo=UTC)
RELAY_SEED = "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"
SECRETS = {
    "slack_signing_secret": "slack-secret",
    "discourse_secret": "discourse-secret",
    "discord_relay_public_key": signatures.discord_public_key(RELAY_SEED),
    "generic_hmac_secret": "generic-secret",
    "mailchimp_webhook_secret": "mailchimp-secret",
    "eventbrite_webhook_token": "eventbrite-url-secret",
    "zoom_secret_token": "zoom-secret-token",
}


class MemoryQueue:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[QueuedEvent] = []
        self.fail = fail

    def send(self, event: QueuedEvent) -> str:
        if self.fail:
            raise QueueUnavailable("throttled")
        self.sent.append(event)
        return "message-id"


def sample(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / f"{name}.json").read_text())


def signed(source: str, body: bytes, headers: dict[str, str], ts: int | None = None) -> dict[str, str]:
    """`headers` plus the signature headers `source` needs, lower-cased as intake sees them."""
    ts = int(NOW.timestamp()) if ts is None else ts
    signature = {
        "slack": lambda: signatures.sign_slack(SECRETS["slack_signing_secret"], body, ts),
        "discourse": lambda: signatures.sign_discourse(SECRETS["discourse_secret"], body),
        "discord": lambda: signatures.sign_discord_relay(RELAY_SEED, body, ts),
        "generic": lambda: signatures.sign_generic(SECRETS["generic_hmac_secret"], body, ts),
        "mailchimp": lambda: {},  # unsigned: the secret is in the URL (`path_for`)
        "zoom": lambda: signatures.sign_zoom(SECRETS["zoom_secret_token"], body, ts),
        "eventbrite": lambda: {},  # unsigned: its secret is in the URL
    }[source]()
    return {name.lower(): value for name, value in {**headers, **signature}.items()}


def path_for(source: str) -> str:
    """The request path: Mailchimp's carries the secret."""
    secret = f"/{SECRETS['mailchimp_webhook_secret']}" if source == "mailchimp" else ""
    return f"/webhooks/{source}{secret}"


class Intake:
    """accept_webhook with in-memory dependencies and a fixed clock."""

    def __init__(self, queue: MemoryQueue | None = None, trace: Any = None, **deps: Any) -> None:
        self.queue = queue or MemoryQueue()
        self.trace = trace if trace is not None else MemoryTrace()
        deps.setdefault("secrets", lambda: SECRETS)
        self.deps = IntakeDeps(queue=self.queue, trace=self.trace, clock=lambda: NOW, **deps)

    def deliver(
        self, source: str, body: Any, headers: dict[str, str] | None = None, path: str | None = None
    ) -> IntakeResponse:
        raw = body if isinstance(body, bytes) else body.encode() if isinstance(body, str) else json.dumps(body).encode()
        return accept_webhook(
            source,
            raw,
            signed(source, raw, headers or {}),
            self.deps,
            correlation_id="req-1",
            path=path_for(source) if path is None else path,
        )

    def deliver_sample(self, name: str, **changes: Any) -> IntakeResponse:
        delivery = sample(name)
        return self.deliver(delivery["source"], changes.get("body", delivery["body"]), delivery["headers"])

    def queued_event(self) -> MemberJoined | MemberActive:
        assert len(self.queue.sent) == 1
        return self.queue.sent[0].event
