"""The bulk import consumer: one chunk of imported members (at most 500) per message, for the generic worker."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from memberflow.events import MemberImportChunk
from memberflow.onboarding.imports import ImportDeps, import_chunk
from memberflow.pipeline.envelope import QueuedEvent

CONSUMER = "member-import"

WORST_CASE_MS_PER_CHUNK = 600_000
"""A chunk is only started with this much of the invocation left (the function's timeout is 900 s). A chunk cut
short is safe to run again: members already handed to Mailchimp are skipped, the rest are sent again."""


def import_members(queued: QueuedEvent, deps: ImportDeps) -> dict[str, Any]:
    event = queued.event
    assert isinstance(event, MemberImportChunk)
    report = import_chunk(event.members, deps, correlation_id=queued.correlation_id)
    # Counts only: the outcome is kept in the idempotency table, which holds no personal data.
    return {
        "result": "imported",
        "written": report.written,
        "unchanged": report.unchanged,
        "refused": len(report.refused),
        "journeys": report.journeys,
        **{f"status_{status}": count for status, count in report.statuses.items()},
    }


def handlers(deps_for: Callable[[], ImportDeps]) -> Mapping[str, Callable[[QueuedEvent], dict[str, Any]]]:
    return {"member_import_chunk": lambda queued: import_members(queued, deps_for())}
