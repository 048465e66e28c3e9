"""A Zoom webhook sender for local runs and tests: webinar registrations and participants who joined, posted as
Zoom posts them (JSON, `x-zm-request-timestamp` in seconds and `x-zm-signature: v0=<hex HMAC-SHA256 of
"v0:{timestamp}:{body}" under the app's secret token>`), and the endpoint validation Zoom runs before it sends
anything (and every 72 hours).

Payload shapes follow the examples of Zoom's webhook reference (as copied in kss-zoom's examples, MultipleEvents.kt):
`webinar.registration_created` names the webinar by a numeric `id` (a JSON number) and its registrant carries a
`status` ("approved"); `*.participant_joined` names the meeting or webinar by its `id` as a string; a meeting's
`type` is a meeting type (2 scheduled, 8 recurring with a fixed time), a webinar's a webinar type (5, 6, 9)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass
class ZoomDelivery:
    event: str
    status: int | None
    body: dict[str, Any] = field(default_factory=dict)


class ZoomWebhookSender:
    def __init__(self, secret_token: str, account_id: str = "AAAAAABBBB", host_id: str = "x1yCzABCDEfg23HiJKl4mN"):
        self.secret_token = secret_token
        self.account_id = account_id
        self.host_id = host_id
        self.url: str | None = None
        self.deliveries: list[ZoomDelivery] = []

    def signed_headers(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        digest = hmac.new(self.secret_token.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
        return {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Zoom Marketplace/1.0a",
            "x-zm-request-timestamp": ts,
            "x-zm-signature": f"v0={digest}",
        }

    def post(self, body: dict[str, Any]) -> Any:
        import requests

        if self.url is None:
            raise RuntimeError("the Zoom sender has no endpoint yet")
        raw = json.dumps(body).encode()
        try:
            answer = requests.post(self.url, data=raw, headers=self.signed_headers(raw), timeout=10)
        except requests.RequestException:
            self.deliveries.append(ZoomDelivery(body["event"], None, body))
            raise
        self.deliveries.append(ZoomDelivery(body["event"], answer.status_code, body))
        return answer

    def validate_endpoint(self) -> bool:
        """Zoom's endpoint validation: the answer must carry the HMAC of the plain token under the secret token."""
        plain = uuid.uuid4().hex[:22]
        answer = self.post({"payload": {"plainToken": plain}, "event_ts": _ms(), "event": "endpoint.url_validation"})
        expected = hmac.new(self.secret_token.encode(), plain.encode(), hashlib.sha256).hexdigest()
        return answer.status_code == 200 and answer.json() == {"plainToken": plain, "encryptedToken": expected}

    def registration_created(self, webinar_id: str, email: str, first_name: str, last_name: str) -> Any:
        registrant = {
            "id": uuid.uuid4().hex[:22],
            "first_name": first_name,
            "last_name": last_name,
            "email": email,
            "status": "approved",
            "join_url": f"https://example.zoom.us/w/{webinar_id}?tk={uuid.uuid4().hex[:12]}",
        }
        webinar = self._webinar(webinar_id)
        webinar["id"] = int(webinar_id) if webinar_id.isdigit() else webinar_id  # a number in this event
        return self.post(
            {
                "event": "webinar.registration_created",
                "event_ts": _ms(),
                "payload": {"account_id": self.account_id, "object": {**webinar, "registrant": registrant}},
            }
        )

    def participant_joined(self, webinar_id: str, email: str, user_name: str, kind: str = "webinar") -> Any:
        participant = {
            "user_id": str(uuid.uuid4().int % 10**8),
            "user_name": user_name,
            "id": uuid.uuid4().hex[:21],
            "participant_uuid": uuid.uuid4().hex[:23],
            "join_time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "email": email,
        }
        return self.post(
            {
                "event": f"{kind}.participant_joined",
                "event_ts": _ms(),
                "payload": {
                    "account_id": self.account_id,
                    "object": {**self._webinar(webinar_id, kind), "participant": participant},
                },
            }
        )

    def _webinar(self, webinar_id: str, kind: str = "webinar") -> dict[str, Any]:
        return {
            "id": webinar_id,
            "uuid": f"{webinar_id[:6]}AAiAAAAAiAiAiiAii==",
            "host_id": self.host_id,
            "topic": "Community webinar" if kind == "webinar" else "Community meeting",
            "type": 5 if kind == "webinar" else 2,  # webinar type 5; meeting type 2 (scheduled)
            "start_time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "duration": 60,
            "timezone": "UTC",
        }


def _ms() -> int:
    return int(time.time() * 1000)
