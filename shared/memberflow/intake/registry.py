"""Which sources `POST /webhooks/{source}` accepts, by the name in the path. A source's module (its payload
models, its signature library) is imported when the first delivery for it arrives, so a Slack request's cold start
does not pay for Discourse's or Discord's models."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

from memberflow.intake.errors import IntakeError
from memberflow.intake.source import WebhookSource

SourceFactory = Callable[[], WebhookSource]


class SourceRegistry:
    def __init__(self, factories: Mapping[str, SourceFactory]) -> None:
        self._factories = dict(factories)
        self._built: dict[str, WebhookSource] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> WebhookSource:
        factory = self._factories.get(name)
        if factory is None:
            raise IntakeError(
                404,
                "unknown_source",
                f"no webhook source is called {name[:64]!r}; known sources: {', '.join(sorted(self._factories))}",
            )
        with self._lock:
            if name not in self._built:
                self._built[name] = factory()
            return self._built[name]

    def __contains__(self, name: object) -> bool:
        return name in self._factories

    def names(self) -> list[str]:
        return sorted(self._factories)


def build_registry(
    discourse_consent_user_field: str | None = None,
    discourse_require_approval: bool = False,
    escalation_categories: Mapping[str, str] | None = None,
    eventbrite_api_url: str | None = None,
) -> SourceRegistry:
    def slack() -> WebhookSource:
        from memberflow.intake.slack import SlackSource

        return SlackSource()

    def discourse() -> WebhookSource:
        from memberflow.intake.discourse import DiscourseSource

        return DiscourseSource(discourse_consent_user_field, discourse_require_approval)

    def discord() -> WebhookSource:
        from memberflow.intake.discord_relay import DiscordRelaySource

        return DiscordRelaySource()

    def generic() -> WebhookSource:
        from memberflow.intake.generic import GenericSource

        return GenericSource()

    def zendesk() -> WebhookSource:
        from memberflow.intake.zendesk import ZendeskSource

        return ZendeskSource()

    def escalations() -> WebhookSource:
        from memberflow.intake.escalations import ExplicitEscalationSource

        return ExplicitEscalationSource(escalation_categories or {})

    def mailchimp() -> WebhookSource:
        from memberflow.intake.mailchimp import MailchimpSource

        return MailchimpSource()

    def eventbrite() -> WebhookSource:
        from memberflow.intake.eventbrite import EVENTBRITE_API_URL, EventbriteSource

        return EventbriteSource(eventbrite_api_url or EVENTBRITE_API_URL)

    def zoom() -> WebhookSource:
        from memberflow.intake.zoom import ZoomSource

        return ZoomSource()

    return SourceRegistry(
        {
            "slack": slack,
            "discourse": discourse,
            "discord": discord,
            "generic": generic,
            "zendesk": zendesk,
            "escalations": escalations,
            "mailchimp": mailchimp,
            "eventbrite": eventbrite,
            "zoom": zoom,
        }
    )
