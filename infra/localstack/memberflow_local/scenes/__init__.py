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


SCENES: list[Scene] = [("A webinar on Eventbrite and Zoom, synced and reconciled", _events)]
"""(title, play) per scene, in the order they run."""
