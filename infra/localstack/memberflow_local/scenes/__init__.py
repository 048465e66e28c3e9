"""Demo scenes that are code rather than webhook deliveries: an automation that needs a seeded community, a
scheduled run, a sandbox acting on its own (an agent solving a ticket) or a read-back through an official client adds
a module here with a `play(scene: SceneContext)` function and one line in `SCENES`. They run after the scenario's
webhook scenes, in this order, on the same stack, and their checks count in the demo's verdict."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..settings import LocalSettings
    from ..stack import LocalStack
    from ..story import Story


@dataclass
class SceneContext:
    stack: LocalStack
    settings: LocalSettings
    api: str
    """The HTTP API's base URL (no trailing slash)."""
    story: Story
    started_at: datetime
    """The demo's start; schedules fire relative to it."""
    drain: Callable[[], bool]
    """Wait until every queue is empty (with a progress bar)."""
    checks: list[tuple[bool, str]] = field(default_factory=list)

    def check(self, ok: bool, text: str) -> None:
        """One verdict of the demo: `text` says what should hold."""
        self.checks.append((bool(ok), text))

    def say(self, text: str, *, indent: bool = True) -> None:
        self.story.line(text, indent=indent)


Scene = tuple[str, Callable[[SceneContext], Any]]


def _events(scene: SceneContext) -> Any:
    from .events import play

    return play(scene)


def _escalation(scene: SceneContext) -> Any:
    from .escalation import play

    return play(scene)


def _consent(scene: SceneContext) -> Any:
    from .consent import play

    return play(scene)


def _winback(scene: SceneContext) -> Any:
    from .winback import play

    return play(scene)


def _import_scene(scene: SceneContext) -> Any:
    from .imports import play

    return play(scene)


SCENES: list[Scene] = [
    ("A community that existed before memberflow: its members imported in bulk", _import_scene),
    ("Escalation: member problems become Zendesk tickets once per thread, and members hear back", _escalation),
    ("Consent you can prove: the ledger, Mailchimp's unsubscribe, a person's data", _consent),
    ("Win-back: inactive members re-engaged, with a holdout that measures the lift", _winback),
    ("A webinar on Eventbrite and Zoom, synced and reconciled", _events),
]
"""(title, play) per scene, in the order they run."""


def _health(scene: SceneContext) -> Any:
    from .health import play

    return play(scene)


def _consent_audit(scene: SceneContext) -> Any:
    from .consent import audit

    return audit(scene)


def _permissions(scene: SceneContext) -> Any:
    from .permissions import play

    return play(scene)


LAST_SCENES: list[Scene] = [
    ("After every automation: each Mailchimp contact explained by its consent ledger", _consent_audit),
    ("The community health report of the last week", _health),
    ("Every function held to its role: the demo's AWS calls against template.yaml", _permissions),
]
"""Scenes that report on what every other scene recorded: they run after `SCENES`, whatever is added there."""
