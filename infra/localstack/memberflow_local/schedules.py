"""Scheduled functions, fired on demand (there is no timer locally).

``ScheduleRunner.fire(name, at)`` invokes the function with the event EventBridge would deliver:
for a ``ScheduleV2`` event with an ``Input`` in the template, that Input with Scheduler's context
attributes (``<aws.scheduler.scheduled-time>``, ``<aws.scheduler.schedule-arn>``,
``<aws.scheduler.execution-id>``, ``<aws.scheduler.attempt-number>``) filled in; otherwise the classic
"Scheduled Event" shape (``source`` ``aws.scheduler`` for ScheduleV2, ``aws.events`` for Schedule).
Names: the function's logical id or the event name, case-insensitive.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from .runtime import FunctionRuntime
from .settings import LOCAL_ACCOUNT_ID, LOCAL_REGION
from .template import FunctionSpec, ScheduleSource


class UnknownScheduleError(KeyError):
    """No schedule of that name; the message lists the valid names."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown schedule"


def _iso(at: datetime) -> str:
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def schedule_arn(
    function: FunctionSpec,
    source: ScheduleSource,
    region: str = LOCAL_REGION,
    account_id: str = LOCAL_ACCOUNT_ID,
) -> str:
    name = f"{function.logical_id}{source.name}"
    if source.type == "ScheduleV2":
        return f"arn:aws:scheduler:{region}:{account_id}:schedule/default/{name}"
    return f"arn:aws:events:{region}:{account_id}:rule/{name}"


def build_scheduled_event(
    function: FunctionSpec,
    source: ScheduleSource,
    at: datetime | None = None,
    *,
    region: str = LOCAL_REGION,
    account_id: str = LOCAL_ACCOUNT_ID,
) -> Any:
    at = at or datetime.now(UTC)
    arn = schedule_arn(function, source, region, account_id)
    execution_id = str(uuid.uuid4())
    if source.input:
        text = (
            source.input.replace("<aws.scheduler.scheduled-time>", _iso(at))
            .replace("<aws.scheduler.schedule-arn>", arn)
            .replace("<aws.scheduler.execution-id>", execution_id)
            .replace("<aws.scheduler.attempt-number>", "0")
        )
        try:
            return json.loads(text)
        except ValueError:
            return text
    return {
        "version": "0",
        "id": execution_id,
        "detail-type": "Scheduled Event",
        "source": "aws.scheduler" if source.type == "ScheduleV2" else "aws.events",
        "account": account_id,
        "time": _iso(at),
        "region": region,
        "resources": [arn],
        "detail": {},
    }


class ScheduleRunner:
    def __init__(
        self,
        schedules: list[tuple[FunctionSpec, ScheduleSource]],
        runtimes: Mapping[str, FunctionRuntime],
        *,
        region: str = LOCAL_REGION,
        account_id: str = LOCAL_ACCOUNT_ID,
    ) -> None:
        self.schedules = schedules
        self.runtimes = runtimes
        self.region = region
        self.account_id = account_id

    def names(self) -> list[str]:
        names: list[str] = []
        for function, source in self.schedules:
            names += [function.logical_id, source.name]
        return sorted(set(names))

    def resolve(self, name: str) -> tuple[FunctionSpec, ScheduleSource]:
        wanted = name.strip().lower()
        matches = [
            (f, s)
            for f, s in self.schedules
            if wanted in (f.logical_id.lower(), s.name.lower(), f"{f.logical_id}.{s.name}".lower())
        ]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise UnknownScheduleError(f"unknown schedule {name!r}; valid names: {', '.join(self.names()) or '(none)'}")
        options = ", ".join(f"{f.logical_id}.{s.name}" for f, s in matches)
        raise UnknownScheduleError(f"schedule name {name!r} is ambiguous; use one of: {options}")

    def event(self, name: str, at: datetime | None = None) -> Any:
        function, source = self.resolve(name)
        return build_scheduled_event(function, source, at, region=self.region, account_id=self.account_id)

    def fire(self, name: str, at: datetime | None = None) -> Any:
        """Invoke the scheduled function now (as if the schedule fired at ``at``) and return its result."""
        return self.fire_detailed(name, at)[2]

    def fire_detailed(self, name: str, at: datetime | None = None) -> tuple[str, str, Any]:
        """Like :meth:`fire`; returns ``(event name, function logical id, result)``."""
        function, source = self.resolve(name)
        event = build_scheduled_event(function, source, at, region=self.region, account_id=self.account_id)
        result = self.runtimes[function.logical_id].invoke(event)
        return source.name, function.logical_id, result
