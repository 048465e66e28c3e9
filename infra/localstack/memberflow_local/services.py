"""Sandboxes the local stack starts besides the Mailchimp one: one entry per external service an automation uses.

Each entry of `SERVICES` builds a `LocalService` from the settings. The stack starts every service before it loads
the template (a service's URL and credentials become template parameters and secret values, exactly what an operator
sets when deploying), and binds it to the running stack afterwards (a sandbox that sends webhooks, as Zendesk or
Mailchimp do, needs the HTTP API's URL). A new automation adds its sandbox module and one line here; nothing else in
the stack changes."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .settings import LocalSettings


class LocalService(Protocol):
    name: str
    """Short name (`zendesk`): the stack's `services[name]` and the `{name}_url` endpoint."""

    @property
    def url(self) -> str: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def parameter_overrides(self) -> dict[str, str]:
        """Template parameters that point the functions at this sandbox (its URL, ids)."""

    def secret_values(self) -> dict[str, str]:
        """Secret logical id -> SecretString (the template creates its secrets without a value)."""

    def bind(self, stack: Any) -> None:
        """Called once the stack runs (HTTP API up): e.g. learn where to send webhooks."""


ServiceFactory = Callable[["LocalSettings"], LocalService]


def _zendesk(settings: LocalSettings) -> LocalService:
    from .escalation_sandboxes import ZendeskService

    return ZendeskService(settings)


def _slack_api(settings: LocalSettings) -> LocalService:
    from .escalation_sandboxes import SlackWebService

    return SlackWebService(settings)


def _discourse_api(settings: LocalSettings) -> LocalService:
    from .escalation_sandboxes import DiscourseApiService

    return DiscourseApiService(settings)


def _eventbrite(settings: LocalSettings) -> LocalService:
    from .event_services import EventbriteService

    return EventbriteService(settings)


def _zoom(settings: LocalSettings) -> LocalService:
    from .event_services import ZoomService

    return ZoomService(settings)


SERVICES: list[tuple[str, ServiceFactory]] = [
    ("zendesk", _zendesk),
    ("slack_api", _slack_api),
    ("discourse_api", _discourse_api),
    ("eventbrite", _eventbrite),
    ("zoom", _zoom),
]
"""(name, factory) per sandbox, in start order. Factories import their sandbox lazily so that a stack without it
does not pay for the import."""
