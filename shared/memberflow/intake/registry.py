"""Which sources `POST /webhooks/{source}` accepts, by the name in the path."""

from __future__ import annotations

from collections.abc import Iterable

from memberflow.intake.discord_relay import DiscordRelaySource
from memberflow.intake.discourse import DiscourseSource
from memberflow.intake.errors import IntakeError
from memberflow.intake.generic import GenericSource
from memberflow.intake.slack import SlackSource
from memberflow.intake.source import WebhookSource


class SourceRegistry:
    def __init__(self, sources: Iterable[WebhookSource]) -> None:
        self._sources = {source.name: source for source in sources}

    def get(self, name: str) -> WebhookSource:
        source = self._sources.get(name)
        if source is None:
            raise IntakeError(
                404,
                "unknown_source",
                f"no webhook source is called {name[:64]!r}; known sources: {', '.join(sorted(self._sources))}",
            )
        return source

    def __contains__(self, name: object) -> bool:
        return name in self._sources


def build_registry(discourse_consent_user_field: str | None = None) -> SourceRegistry:
    return SourceRegistry(
        [SlackSource(), DiscourseSource(discourse_consent_user_field), DiscordRelaySource(), GenericSource()]
    )
