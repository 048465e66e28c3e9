"""Event figures from the registration table: registrations, cancellations, attendance rate, first-time and
returning members (the reconciliation run reports them per event; the weekly health report computes its own event
figures from the activity log). Walk-ins (joined on Zoom without registering) are counted apart, in none of the
registration figures."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from memberflow.registrations.model import Registration, Status


@dataclass(frozen=True)
class EventFigures:
    event_slug: str
    registrations: int
    """Everyone who registered, cancelled or not."""
    cancellations: int
    attended: int
    no_shows: int
    attendance_rate: float
    """Attended out of the places held (registrations minus cancellations); 0 when none are held."""
    first_time: int
    """Registrants for whom this is their first event registration."""
    returning: int
    walk_ins: int = 0
    """Joined on Zoom without a registration (hosts, panelists, forwarded links): not in the figures above."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def figures(event_slug: str, registrations: Iterable[Registration]) -> EventFigures:
    everyone = list(registrations)
    items = [r for r in everyone if not r.walk_in]
    cancelled = sum(1 for r in items if r.status is Status.CANCELLED)
    attended = sum(1 for r in items if r.status is Status.ATTENDED)
    held = len(items) - cancelled
    first = sum(1 for r in items if r.first_time)
    return EventFigures(
        event_slug=event_slug,
        registrations=len(items),
        cancellations=cancelled,
        attended=attended,
        no_shows=sum(1 for r in items if r.status is Status.NO_SHOW),
        attendance_rate=round(attended / held, 4) if held else 0.0,
        first_time=first,
        returning=len(items) - first,
        walk_ins=len(everyone) - len(items),
    )
