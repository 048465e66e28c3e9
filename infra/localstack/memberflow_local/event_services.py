"""The sandbox Eventbrite and the Zoom webhook sender as local services: the stack passes the Eventbrite sandbox's
URL, organization and synced event as template parameters and its OAuth token as the EventbriteApiSecret, then
points both senders at the HTTP API's webhook routes."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from memberflow_sandboxes.eventbrite import EventbriteSandbox
    from memberflow_sandboxes.zoom import ZoomWebhookSender

    from .settings import LocalSettings

EVENTBRITE_TOKEN = "local-eventbrite-oauth-token"
ORGANIZATION_ID = "2001"
SYNCED_EVENT = {"slug": "webinar-dec", "eventbrite_event_id": "5001", "zoom_id": "81234567890"}
"""The webinar the local stack syncs: the sandbox creates it on start (an hour from now, an hour long)."""


class EventbriteService:
    name = "eventbrite"

    def __init__(self, settings: LocalSettings) -> None:
        from memberflow_sandboxes.eventbrite import EventbriteSandbox

        self.settings = settings
        self.sandbox: EventbriteSandbox = EventbriteSandbox(
            host=settings.host, token=EVENTBRITE_TOKEN, organization_id=ORGANIZATION_ID
        )

    @property
    def url(self) -> str:
        return self.sandbox.url

    def start(self) -> None:
        self.sandbox.start()
        self.sandbox.create_event(event_id=SYNCED_EVENT["eventbrite_event_id"], name="Community webinar")

    def stop(self) -> None:
        self.sandbox.stop()

    def parameter_overrides(self) -> dict[str, str]:
        return {
            "EventbriteApiUrl": self.sandbox.url,
            "EventbriteOrganizationId": ORGANIZATION_ID,
            "SyncedEvents": json.dumps([SYNCED_EVENT]),
        }

    def secret_values(self) -> dict[str, str]:
        return {"EventbriteApiSecret": json.dumps({"oauth_token": EVENTBRITE_TOKEN})}

    def bind(self, stack: Any) -> None:
        # The secret as the URL's last path segment (`/webhooks/{source}/{secret}`), not `?token=`: a query string is
        # what proxies and access logs keep. Eventbrite still echoes the URL as registered in every delivery's
        # `config.endpoint_url`, so the body carries it either way (the intake keeps no body).
        api = stack.http.url
        self.sandbox.set_webhook(f"{api}/webhooks/eventbrite/{self.settings.eventbrite_webhook_token}")


class ZoomService:
    name = "zoom"

    def __init__(self, settings: LocalSettings) -> None:
        from memberflow_sandboxes.zoom import ZoomWebhookSender

        self.sender: ZoomWebhookSender = ZoomWebhookSender(settings.zoom_secret_token)

    @property
    def url(self) -> str:
        return self.sender.url or ""

    def start(self) -> None:
        pass

    def stop(self) -> None:
        self.sender.url = None

    def parameter_overrides(self) -> dict[str, str]:
        return {}

    def secret_values(self) -> dict[str, str]:
        return {}  # its secret token is in WebhookSigningSecrets (LocalSettings.webhook_secrets)

    def bind(self, stack: Any) -> None:
        self.sender.url = f"{stack.http.url}/webhooks/zoom"
