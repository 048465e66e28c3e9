"""Event registration sync on in-memory fakes: webhooks sync one registration to what Eventbrite says now,
duplicates change nothing, refunds untag, reconciliation heals what webhooks missed in bulk, and no-shows are
exactly registered minus attended."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from memberflow.config import SyncedEvent
from memberflow.events import CATALOG
from memberflow.events.registrations import EventbriteChanged, ZoomAttended, ZoomRegistered
from memberflow.pipeline.envelope import QueuedEvent
from memberflow.privacy import email_key
from memberflow.registrations.consumer import CONSUMER, handlers
from memberflow.registrations.figures import figures
from memberflow.registrations.model import Status
from memberflow.registrations.reconcile import reconcile_all, reconcile_event
from memberflow.registrations.sync import SyncDeps, sync_eventbrite, sync_zoom
from support.fakes import FakeBulkMailingList, MemoryLedger, MemoryMembers, MemorySuppressions, MemoryTrace
from support.registrations import FakeEventbrite, MemoryRegistrations

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
EVENT = SyncedEvent(slug="webinar-dec", eventbrite_event_id="77", zoom_id="9876543210")
REGISTERED, ATTENDED, NO_SHOW = (f"event:webinar-dec:{what}" for what in ("registered", "attended", "no_show"))


class World:
    def __init__(self, *, ends_in: timedelta = timedelta(days=2)) -> None:
        self.now = NOW
        self.eventbrite = FakeEventbrite()
        self.eventbrite.add_event("77", ends_in=ends_in, now=NOW)
        self.mailchimp = FakeBulkMailingList()
        self.members = MemoryMembers()
        self.registrations = MemoryRegistrations()
        self.trace = MemoryTrace()
        self.deps = SyncDeps(
            eventbrite=self.eventbrite,
            mailing_list=self.mailchimp,
            bulk=self.mailchimp,
            members=self.members,
            suppressions=MemorySuppressions(),
            registrations=self.registrations,
            trace=self.trace,
            list_id="list123",
            events=[EVENT],
            organization_id="555",
            clock=lambda: self.now,
            ledger=MemoryLedger(self.members),
        )

    def webhook(self, action: str, api_url: str) -> dict:
        event = EventbriteChanged(action=action, api_url=api_url)  # type: ignore[arg-type]
        queued = QueuedEvent(
            idempotency_key=f"eb:{action}:{api_url}", correlation_id="c-1", source="eventbrite", event=event
        )
        return sync_eventbrite(queued, self.deps)

    def zoom(self, event: ZoomRegistered | ZoomAttended) -> dict:
        return sync_zoom(QueuedEvent(idempotency_key="z", correlation_id="c-2", source="zoom", event=event), self.deps)

    def status(self, email: str) -> Status | None:
        registration = self.registrations.get("webinar-dec", email_key(email))
        return registration.status if registration else None

    def place(self, email: str) -> str:
        attendee_id = self.eventbrite.register("77", email)
        self.webhook("order.placed", self.eventbrite.order_url(attendee_id))
        return attendee_id


def test_the_consumer_handles_exactly_the_types_registered_for_it():
    assert sorted(handlers(lambda: None)) == CATALOG.for_consumer(CONSUMER)  # type: ignore[arg-type]


def test_an_order_registers_the_attendee_creates_the_member_without_marketing_consent_and_tags_them():
    world = World()
    world.place("ada@example.org")

    assert world.status("ada@example.org") is Status.REGISTERED
    assert world.mailchimp.members["ada@example.org"] == "transactional"  # no consent given with a ticket
    assert world.mailchimp.tagged(REGISTERED) == {"ada@example.org"}
    member = world.members.get(email_key("ada@example.org"))
    assert member is not None and "eventbrite" in member.platforms
    # The consent ledger says why Mailchimp holds them without marketing permission.
    [entry] = world.deps.ledger.entries(email_key("ada@example.org"))
    assert (entry.change.value, entry.status, entry.platform) == ("not_given", "transactional", "eventbrite")


def test_duplicates_change_nothing():
    world = World()
    attendee_id = world.place("ada@example.org")
    calls, writes = list(world.mailchimp.calls), world.registrations.writes

    for _ in range(3):
        answer = world.webhook("order.placed", world.eventbrite.order_url(attendee_id))
        assert answer["changed"] == 0
    world.zoom(ZoomRegistered(zoom_id="9876543210", email="ada@example.org", at=NOW))

    assert world.mailchimp.calls == calls  # no second upsert, no second tag
    assert world.registrations.writes == writes
    assert world.mailchimp.tags["ada@example.org"] == [REGISTERED]


def test_a_refund_removes_the_registered_tag():
    world = World()
    attendee_id = world.place("ada@example.org")

    world.eventbrite.refund(attendee_id)
    world.webhook("order.refunded", world.eventbrite.order_url(attendee_id))

    assert world.status("ada@example.org") is Status.CANCELLED
    assert world.mailchimp.tagged(REGISTERED) == set()


def test_a_check_in_and_a_zoom_join_tag_attended_once():
    world = World()
    ada = world.place("ada@example.org")
    world.place("bob@example.org")

    world.eventbrite.check_in(ada)
    world.webhook("attendee.checked_in", world.eventbrite.attendee_url(ada))
    world.zoom(ZoomAttended(zoom_id="9876543210", email="bob@example.org", at=NOW))
    world.zoom(ZoomAttended(zoom_id="9876543210", email="bob@example.org", at=NOW))

    assert world.mailchimp.tagged(ATTENDED) == {"ada@example.org", "bob@example.org"}
    assert world.mailchimp.tags["bob@example.org"].count(ATTENDED) == 1


@pytest.mark.parametrize(
    "api_url",
    [
        "https://evil.example.org/v3/orders/1/",
        "http://www.eventbriteapi.com/v3/orders/1/",
        "https://www.eventbriteapi.com.evil.example.org/v3/orders/1/",
    ],
)
def test_an_api_url_off_the_eventbrite_host_is_never_fetched(api_url):
    from memberflow.errors import PermanentRefusal

    world = World()
    with pytest.raises(PermanentRefusal):
        world.webhook("order.placed", api_url)
    assert world.eventbrite.calls == []


def test_an_order_of_an_event_nobody_configured_or_of_another_organization_is_ignored():
    world = World()
    world.eventbrite.add_event("88", now=NOW)
    other = world.eventbrite.register("88", "eve@example.org")
    assert world.webhook("order.placed", world.eventbrite.order_url(other)) == {"result": "not_a_synced_event"}

    world.eventbrite.events["77"]["organization_id"] = "999"
    mine = world.eventbrite.register("77", "ada@example.org")
    assert world.webhook("order.placed", world.eventbrite.order_url(mine)) == {"result": "not_a_synced_event"}
    assert world.registrations.items == {} and world.mailchimp.calls == []


def test_reconciliation_heals_dropped_webhooks_in_bulk_and_reports_it():
    world = World()
    delivered = [world.place(f"m{i}@example.org") for i in range(5)]
    dropped = [world.eventbrite.register("77", f"d{i}@example.org") for i in range(600)]  # no webhook arrived
    world.eventbrite.refund(delivered[0])  # its webhook was dropped too
    world.mailchimp.calls.clear()

    [report] = reconcile_all(world.deps, recent_days=7, correlation_id="run-1")

    assert (report.created, report.changed, report.contacts_added) == (600, 1, 600)
    assert world.mailchimp.tagged(REGISTERED) == {f"m{i}@example.org" for i in range(1, 5)} | {
        f"d{i}@example.org" for i in range(600)
    }
    # 600 new contacts: two subscribe calls, two tag calls, one untag call; never one call per attendee.
    assert sorted(world.mailchimp.calls) == ["subscribe_many"] * 2 + ["tag_many"] * 2 + ["untag_many"]
    assert len(dropped) == 600

    world.mailchimp.calls.clear()
    [again] = reconcile_all(world.deps, recent_days=7, correlation_id="run-2")
    assert (again.created, again.changed, world.mailchimp.calls) == (0, 0, [])


def test_no_shows_are_exactly_registered_minus_attended_after_the_event():
    world = World()
    people = {f"p{i}@example.org": world.place(f"p{i}@example.org") for i in range(10)}
    attended = {email for i, email in enumerate(people) if i % 3 == 0}
    for email in attended:
        world.eventbrite.check_in(people[email])  # some check-in webhooks were dropped: none sent here
    world.eventbrite.refund(people["p1@example.org"])
    world.webhook("order.refunded", world.eventbrite.order_url(people["p1@example.org"]))

    world.now = NOW + timedelta(days=3)  # the event has ended
    [report] = reconcile_all(world.deps, recent_days=7, correlation_id="run")

    registered = set(people) - {"p1@example.org"}
    assert world.mailchimp.tagged(NO_SHOW) == registered - attended
    assert world.mailchimp.tagged(ATTENDED) == attended
    assert report.no_shows == len(registered - attended)
    # A late check-in after the run moves a no-show to attended.
    late = sorted(registered - attended)[0]
    world.eventbrite.check_in(people[late])
    world.webhook("attendee.checked_in", world.eventbrite.attendee_url(people[late]))
    assert world.status(late) is Status.ATTENDED
    assert late not in world.mailchimp.tagged(NO_SHOW)


def test_figures_per_event():
    world = World()
    returning = "old@example.org"
    world.eventbrite.add_event("66", now=NOW)
    earlier = SyncedEvent(slug="meetup-nov", eventbrite_event_id="66")
    world.deps.events = [EVENT, earlier]
    world.webhook("order.placed", world.eventbrite.order_url(world.eventbrite.register("66", returning)))
    ids = [world.place(email) for email in ("a@example.org", "b@example.org", "c@example.org", returning)]
    world.eventbrite.check_in(ids[0])
    world.webhook("attendee.checked_in", world.eventbrite.attendee_url(ids[0]))
    world.eventbrite.refund(ids[1])
    world.webhook("order.refunded", world.eventbrite.order_url(ids[1]))

    result = figures("webinar-dec", world.registrations.for_event("webinar-dec"))

    assert (result.registrations, result.cancellations, result.attended) == (4, 1, 1)
    assert result.attendance_rate == round(1 / 3, 4)
    assert (result.first_time, result.returning) == (3, 1)


def test_a_zoom_registration_of_a_cancelled_place_changes_nothing():
    world = World()
    attendee_id = world.place("ada@example.org")
    world.eventbrite.refund(attendee_id)
    world.webhook("order.refunded", world.eventbrite.order_url(attendee_id))

    world.zoom(ZoomRegistered(zoom_id="9876543210", email="ada@example.org", at=NOW))

    assert world.status("ada@example.org") is Status.CANCELLED
    assert world.mailchimp.tagged(REGISTERED) == set()


def test_reconcile_event_directly_marks_everyone_registered_before_the_end():
    world = World()
    for i in range(3):
        world.eventbrite.register("77", f"x{i}@example.org")
    report = reconcile_event(EVENT, world.deps, ended=False, correlation_id="r")
    assert report.created == 3 and report.no_shows == 0
    assert {world.status(f"x{i}@example.org") for i in range(3)} == {Status.REGISTERED}


def test_registering_on_zoom_and_eventbrite_for_one_event_is_still_a_first_time_member():
    world = World()
    world.zoom(ZoomRegistered(zoom_id="9876543210", email="ada@example.org", at=NOW))
    world.place("ada@example.org")

    result = figures("webinar-dec", world.registrations.for_event("webinar-dec"))

    assert (result.registrations, result.first_time, result.returning) == (1, 1, 0)


def test_registrations_attendance_and_no_shows_reach_the_activity_log_once_each(tmp_path):
    from memberflow import activity
    from memberflow.health import figures as health_figures
    from memberflow.health.queries import Period
    from memberflow_local.health import DuckDBEngine
    from support.fakes import MemoryActivityLog
    from support.health_seed import write_log

    world = World()
    log = MemoryActivityLog()
    world.deps = replace(world.deps, activity=log)
    people = {f"p{i}@example.org": world.place(f"p{i}@example.org") for i in range(6)}
    for i, email in enumerate(people):
        if i % 2 == 0:
            world.eventbrite.check_in(people[email])
    world.now = NOW + timedelta(days=3)  # the event has ended
    reconcile_all(world.deps, recent_days=7, correlation_id="run")
    reconcile_all(world.deps, recent_days=7, correlation_id="run-again")  # a second run adds nothing new

    kinds = {(record.kind, record.member) for record in log.buffered}
    members = {email_key(email) for email in people}
    assert {m for kind, m in kinds if kind == activity.REGISTRATION} == members
    assert len({m for kind, m in kinds if kind == activity.ATTENDED}) == 3
    assert len({m for kind, m in kinds if kind == activity.NO_SHOW}) == 3
    assert {record.event for record in log.buffered} == {EVENT.slug}

    # Registered the week Eventbrite says they signed up (2026-W47), attended or not the week of the event.
    engine = DuckDBEngine(write_log(tmp_path, log.buffered))
    try:
        signup = health_figures.compute(engine, Period.parse("2026-W47"))
        held = health_figures.compute(engine, Period.parse(f"{NOW:%G-W%V}"))
    finally:
        engine.close()
    [event] = signup["events"]
    assert (event["event"], event["registrations"]) == (EVENT.slug, 6)
    [event] = held["events"]
    assert (event["attended"], event["no_shows"]) == (3, 3)


def _counted(world: World) -> list[str]:
    """Counts the member and suppression reads the world's sync makes from now on."""
    from support.fakes import CountingReads

    reads: list[str] = []
    world.deps.members = CountingReads(world.members, reads)  # type: ignore[assignment]
    world.deps.suppressions = CountingReads(world.deps.suppressions, reads)  # type: ignore[assignment]
    return reads


def test_a_new_registrant_costs_one_member_read_and_one_erasure_read():
    world = World()
    reads = _counted(world)
    world.zoom(ZoomRegistered(zoom_id="9876543210", email="ada@example.org", at=NOW))
    assert sorted(reads) == ["find", "get"]  # the join's record answers the consent rules and the ledger
    assert world.mailchimp.members["ada@example.org"] == "transactional"
    [entry] = world.deps.ledger.entries(email_key("ada@example.org"))  # type: ignore[union-attr]
    assert (entry.change.value, entry.status) == ("not_given", "transactional")


def test_reconciliation_reads_members_and_erasures_in_batches():
    world = World()
    for i in range(250):
        world.eventbrite.register("77", f"d{i}@example.org")  # no webhook arrived
    reads = _counted(world)

    [report] = reconcile_all(world.deps, recent_days=7, correlation_id="run-1")

    assert report.created == 250 and report.contacts_added == 250
    assert sorted(reads) == ["find_many", "get_many"]  # not one read per attendee
    assert {world.mailchimp.members[f"d{i}@example.org"] for i in range(250)} == {"transactional"}
    ledger = world.deps.ledger
    assert ledger is not None and [e.change.value for e in ledger.entries(email_key("d8@example.org"))] == ["not_given"]
