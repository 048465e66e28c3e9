"""The escalation's sandboxes in the local stack: Zendesk (which sends its signed status-change webhooks to the
stack's `/webhooks/zendesk` once bound), the Slack Web API (moderator alerts, thread replies) and the Discourse API
(topic replies). Each gives the template the URL an operator would leave empty, and the secrets' values.

Local keys (not secret), overridable with the environment variables named below."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .settings import LocalSettings

ZENDESK_EMAIL = os.environ.get("MEMBERFLOW_LOCAL_ZENDESK_EMAIL", "agent@example.com")
ZENDESK_API_TOKEN = os.environ.get("MEMBERFLOW_LOCAL_ZENDESK_API_TOKEN", "local-zendesk-token")
ZENDESK_WEBHOOK_SECRET = os.environ.get("MEMBERFLOW_LOCAL_ZENDESK_WEBHOOK_SECRET", "local-zendesk-webhook-secret")
ESCALATIONS_API_KEY = os.environ.get("MEMBERFLOW_LOCAL_ESCALATIONS_API_KEY", "local-escalations-api-key")
SLACK_BOT_TOKEN = os.environ.get("MEMBERFLOW_LOCAL_SLACK_BOT_TOKEN", "xoxb-local-bot-token")
MODERATORS_CHANNEL = os.environ.get("MEMBERFLOW_LOCAL_MODERATORS_CHANNEL", "C0MODERATORS")
DISCOURSE_API_KEY = os.environ.get("MEMBERFLOW_LOCAL_DISCOURSE_API_KEY", "local-discourse-api-key")


class _Sandboxed:
    """A sandbox server as a local service: started, stopped and addressed as the server is."""

    sandbox: Any

    @property
    def url(self) -> str:
        return str(self.sandbox.url)

    def start(self) -> None:
        self.sandbox.start()

    def stop(self) -> None:
        self.sandbox.stop()

    def bind(self, stack: Any) -> None:
        pass


class ZendeskService(_Sandboxed):
    name = "zendesk"

    def __init__(self, settings: LocalSettings) -> None:
        from memberflow_sandboxes.zendesk import ZendeskSandbox

        self.sandbox = ZendeskSandbox(host=settings.host, email=ZENDESK_EMAIL, api_token=ZENDESK_API_TOKEN)

    @property
    def url(self) -> str:
        return str(self.sandbox.base_url)

    def stop(self) -> None:
        self.sandbox.app.wait_for_webhooks(5)
        self.sandbox.stop()

    def parameter_overrides(self) -> dict[str, str]:
        return {"ZendeskApiUrl": self.sandbox.base_url, "ZendeskSubdomain": "community"}

    def secret_values(self) -> dict[str, str]:
        return {
            "ZendeskApiSecret": json.dumps({"email": ZENDESK_EMAIL, "api_token": ZENDESK_API_TOKEN}),
            # Merged into the webhook secrets the stack's settings give: Zendesk's signing secret and the key of
            # POST /escalations.
            "WebhookSigningSecrets": json.dumps(
                {"zendesk_webhook_secret": ZENDESK_WEBHOOK_SECRET, "escalations_api_key": ESCALATIONS_API_KEY}
            ),
        }

    def bind(self, stack: Any) -> None:
        self.sandbox.send_webhooks_to(f"{stack.endpoints()['webhooks_url']}/zendesk", ZENDESK_WEBHOOK_SECRET)


class SlackWebService(_Sandboxed):
    name = "slack_api"

    def __init__(self, settings: LocalSettings) -> None:
        from memberflow_sandboxes.slack import SlackSandbox

        self.sandbox = SlackSandbox(host=settings.host, token=SLACK_BOT_TOKEN)

    def parameter_overrides(self) -> dict[str, str]:
        return {"SlackApiUrl": self.sandbox.url + "/", "EscalationModeratorsChannel": MODERATORS_CHANNEL}

    def secret_values(self) -> dict[str, str]:
        return {"SlackBotSecret": json.dumps({"bot_token": SLACK_BOT_TOKEN})}


class DiscourseApiService(_Sandboxed):
    name = "discourse_api"

    def __init__(self, settings: LocalSettings) -> None:
        from memberflow_sandboxes.discourse import DiscourseSandbox

        self.sandbox = DiscourseSandbox(host=settings.host, api_key=DISCOURSE_API_KEY)

    def parameter_overrides(self) -> dict[str, str]:
        return {"DiscourseUrl": self.sandbox.url}

    def secret_values(self) -> dict[str, str]:
        return {"DiscourseApiSecret": json.dumps({"api_key": DISCOURSE_API_KEY, "api_username": "system"})}
