"""The Eventbrite adapter against the Eventbrite sandbox's hourly rate limit: a 429 HIT_RATE_LIMIT without
Retry-After is raised at once (one call, no retry a moment later), every request is charged to a run's budget, and
a reconciliation run the limit stops midway leaves the other events, which the next run starts with."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from memberflow.adapters.eventbrite import EventbriteClient
from memberflow.config import SyncedEvent
from memberflow.errors import RateLimited
from memberflow.registrations.reconcile import CallBudget, raise_if_incomplete, reconcile_all
from memberflow_sandboxes.eventbrite import EventbriteSandbox

EVENT_CALL = "GET /events/{event_id}/"
PAGE_CALL = "GET /events/{event_id}/attendees/"


@pytest.fixture
def sandbox():
    with EventbriteSandbox() as running:
        yield running


def an_event(sandbox: EventbriteSandbox, event_id: str, attendees: int) -> None:
    sandbox.create_event(event_id=event_id, starts_in_minutes=24 * 60)
    people = [
        {"email": f"p{i}.{event_id}@example.org", "first_name": "P", "last_name": str(i)} for i in range(attendees)
    ]
    sandbox.place_order(event_id, people)


def test_a_429_without_retry_after_is_one_call_and_each_request_is_charged_to_the_runs_budget(sandbox) -> None:
    an_event(sandbox, "77", 120)  # three pages
    sandbox.set_rate_limit(calls_per_hour=4, retry_after=None)
    client = EventbriteClient(lambda fresh: sandbox.token, sandbox.url)
    budget = CallBudget(10)
    metered = client.metered(budget)

    metered.event("77")
    assert len(list(metered.attendees("77"))) == 120
    started = time.monotonic()
    with pytest.raises(RateLimited) as throttled:
        metered.event("77")

    assert throttled.value.retry_after is None and "HIT_RATE_LIMIT" in str(throttled.value)
    assert time.monotonic() - started < 0.5  # no backoff: the hour's calls are spent
    assert sandbox.calls_this_hour == budget.spent == 5
    assert (sandbox.state.calls[EVENT_CALL], sandbox.state.calls[PAGE_CALL]) == (2, 3)
    assert sandbox.state.request_counts[429] == 1


def test_a_run_the_hourly_limit_stops_leaves_the_other_events_and_the_next_run_starts_with_them(sandbox) -> None:
    from memberflow.registrations.sync import SyncDeps
    from support.fakes import FakeBulkMailingList, MemoryLedger, MemoryMembers, MemorySuppressions, MemoryTrace
    from support.registrations import MemoryRegistrations

    for event_id, attendees in (("66", 60), ("77", 60), ("88", 1)):
        an_event(sandbox, event_id, attendees)
    mailchimp, members, registrations = FakeBulkMailingList(), MemoryMembers(), MemoryRegistrations()
    deps = SyncDeps(
        eventbrite=EventbriteClient(lambda fresh: sandbox.token, sandbox.url),
        mailing_list=mailchimp,
        bulk=mailchimp,
        members=members,
        suppressions=MemorySuppressions(),
        registrations=registrations,
        trace=MemoryTrace(),
        list_id="list123",
        events=[SyncedEvent(slug=f"meetup-{n}", eventbrite_event_id=n) for n in ("66", "77", "88")],
        clock=lambda: datetime.now(UTC),
        ledger=MemoryLedger(members),
    )
    sandbox.set_rate_limit(calls_per_hour=4, retry_after=None)  # the hour ends at meetup-77's first page

    reports = reconcile_all(deps, recent_days=7, correlation_id="run-1", budget=CallBudget(250))

    assert [(r.event_slug, r.left.split(",")[0]) for r in reports] == [
        ("meetup-66", ""),
        ("meetup-77", "RateLimited: Eventbrite 429 HIT_RATE_LIMIT"),
        ("meetup-88", "RateLimited: not started"),
    ]
    assert sandbox.calls_this_hour == 5 and sandbox.state.request_counts[429] == 1  # none after the 429
    raise_if_incomplete(reports)  # no alarm
    assert len(registrations.for_event("meetup-66")) == 60 and registrations.left == ["meetup-77", "meetup-88"]

    sandbox.set_rate_limit(calls_per_hour=None)  # a new hour
    budget = CallBudget(250)
    reports = reconcile_all(deps, recent_days=7, correlation_id="run-2", budget=budget)

    assert [(r.event_slug, r.left) for r in reports] == [("meetup-77", ""), ("meetup-88", ""), ("meetup-66", "")]
    assert budget.spent == sandbox.calls_this_hour == 3 + 2 + 3
    assert len(registrations.for_event("meetup-77")) == 60 and registrations.left == []
