"""Event registration sync on in-memory fakes: webhooks sync one registration to what Eventbrite says now,
duplicates change nothing, refunds untag, reconciliation heals what webhooks missed in bulk, and no-shows are
exactly registered minus attended."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from memberflow.config import SyncedEvent
from memberflow.errors import RateLimited
from memberflow.events import CATALOG
from memberflow.events.registrations import EventbriteChanged, ZoomAttended, ZoomRegistered
from memberflow.pipeline.envelope import QueuedEvent
from memberflow.privacy import email_key
from memberflow.registrations.consumer import CONSUMER, handlers
from memberflow.registrations.figures import figures
from memberflow.registrations.model import Attendee, Status, Ticket, tickets_by_person
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


# ---------------------------------------------------------------- a person's tickets, refunds, deleted orders


def _tag_calls(world: World) -> list[str]:
    return [call for call in world.mailchimp.calls if call in ("tag_many", "untag_many")]


def test_a_persons_tickets_are_grouped_by_address_in_any_case_and_sorted_for_webhooks_and_reconcile_alike():
    def ticket(email: str, ticket_id: str, **state: bool) -> Attendee:
        return Attendee(event_id="77", email=email, ticket_id=ticket_id, order_id="o1", **state)

    zoom = Attendee(event_id="77", email="bob@example.org", source="zoom")  # no Eventbrite ticket
    grouped = tickets_by_person(
        [ticket("ada@example.org", "9", cancelled=True), zoom, ticket("Ada@Example.org", "3", checked_in=True)]
    )
    assert grouped == {
        "ada@example.org": (Ticket("3", "o1", checked_in=True), Ticket("9", "o1", cancelled=True)),
    }


def test_refunding_one_of_two_orders_keeps_the_place_and_the_next_reconcile_changes_nothing():
    world = World()
    first = world.place("ada@example.org")
    world.place("ada@example.org")  # a second order: bought the wrong ticket type first

    world.eventbrite.refund(first)
    world.webhook("order.refunded", world.eventbrite.order_url(first))

    assert world.status("ada@example.org") is Status.REGISTERED
    assert world.mailchimp.tagged(REGISTERED) == {"ada@example.org"}
    world.mailchimp.calls.clear()
    [report] = reconcile_all(world.deps, recent_days=7, correlation_id="run")
    assert (report.created, report.changed, _tag_calls(world)) == (0, 0, [])  # no tag re-added, no journey again


def test_one_refunded_ticket_of_a_three_ticket_order_cancels_only_its_holder():
    world = World()
    ids = [world.eventbrite.register("77", f"c{i}@example.org", order_id="5000") for i in range(3)]
    world.webhook("order.placed", world.eventbrite.order_url(ids[0]))

    world.eventbrite.refund(ids[0])
    world.webhook("order.refunded", world.eventbrite.order_url(ids[0]))

    assert [world.status(f"c{i}@example.org") for i in range(3)] == [
        Status.CANCELLED,
        Status.REGISTERED,
        Status.REGISTERED,
    ]
    assert world.mailchimp.tagged(REGISTERED) == {"c1@example.org", "c2@example.org"}
    world.mailchimp.calls.clear()
    reconcile_all(world.deps, recent_days=7, correlation_id="run")
    assert _tag_calls(world) == []


def test_the_webhooks_action_name_cancels_nothing_eventbrite_does_not_say():
    """The body is unsigned: an `order.refunded` delivery for an order Eventbrite says is attending changes
    nothing."""
    world = World()
    attendee_id = world.place("ada@example.org")

    world.webhook("order.refunded", world.eventbrite.order_url(attendee_id))

    assert world.status("ada@example.org") is Status.REGISTERED
    assert world.mailchimp.tagged(REGISTERED) == {"ada@example.org"}


def test_a_person_keeps_the_place_when_one_of_their_two_tickets_is_refunded_by_its_attendee_url():
    world = World()
    first = world.eventbrite.register("77", "ada@example.org", order_id="6000")
    world.eventbrite.register("77", "ada@example.org", order_id="6000")
    world.webhook("order.placed", world.eventbrite.order_url(first))

    world.eventbrite.refund(first)
    world.webhook("attendee.updated", world.eventbrite.attendee_url(first))

    assert world.status("ada@example.org") is Status.REGISTERED


def test_a_deleted_order_cancels_the_registrations_it_gave_and_finishes_the_message():
    world = World()
    ids = [world.eventbrite.register("77", f"t{i}@example.org", order_id="7000") for i in range(2)]
    order_url = world.eventbrite.order_url(ids[0])
    world.webhook("order.placed", order_url)
    kept = world.place("keep@example.org")

    world.eventbrite.delete_order("7000")
    answer = world.webhook("order.updated", order_url)  # no exception: neither a retry nor an outage

    assert answer == {"result": "gone", "registrations": 2}
    assert {world.status(f"t{i}@example.org") for i in range(2)} == {Status.CANCELLED}
    assert world.mailchimp.tagged(REGISTERED) == {"keep@example.org"}
    assert world.status("keep@example.org") is Status.REGISTERED and kept
    [traced] = world.trace.query("registrations")
    assert "no longer has order 7000" in traced.detail
    # Redelivered: nothing more to change.
    writes = world.registrations.writes
    assert world.webhook("order.updated", order_url) == {"result": "gone", "registrations": 2}
    assert world.registrations.writes == writes


def test_a_deleted_attendee_keeps_a_person_who_holds_another_ticket_and_an_unknown_one_is_only_traced():
    world = World()
    first = world.place("ada@example.org")
    world.place("ada@example.org")
    url = world.eventbrite.attendee_url(first)
    world.eventbrite.people.pop(first)  # the ticket was deleted

    assert world.webhook("attendee.updated", url) == {"result": "gone", "registrations": 1}
    assert world.status("ada@example.org") is Status.REGISTERED

    unknown = "https://www.eventbriteapi.com/v3/orders/424242/"
    assert world.webhook("order.updated", unknown) == {"result": "gone", "registrations": 0}
    assert "no registration came from it" in world.trace.query("registrations")[-1].detail


def test_three_deleted_orders_are_neither_retried_nor_parked_and_do_not_trip_the_breaker():
    from memberflow.pipeline.health import ServiceHealth
    from memberflow.pipeline.policy import RetryPolicy
    from memberflow.pipeline.worker import QueuedMessage, Worker
    from support.fakes import FakeWorkQueue

    world = World()
    urls = []
    for i in range(3):
        attendee_id = world.place(f"gone{i}@example.org")
        urls.append(world.eventbrite.order_url(attendee_id))
        world.eventbrite.delete_order(world.eventbrite.people[attendee_id]["order_id"])
    queue, health = FakeWorkQueue(), ServiceHealth()
    worker = Worker(CATALOG, handlers(lambda: world.deps), queue, world.trace, RetryPolicy(), health)

    for i, url in enumerate(urls):
        event = EventbriteChanged(action="order.updated", api_url=url)
        queued = QueuedEvent(idempotency_key=f"eb:{i}", correlation_id="c", source="eventbrite", event=event)
        assert worker.process(QueuedMessage(f"m{i}", "rh", queued.model_dump_json(), 1))["result"] == "gone"

    assert (queue.parked, queue.visibility, health.failing) == ([], [], False)
    assert {world.status(f"gone{i}@example.org") for i in range(3)} == {Status.CANCELLED}


def test_a_403_on_one_resource_is_still_an_account_problem_and_cancels_nothing():
    from memberflow.errors import AccountProblem

    world = World()
    attendee_id = world.place("ada@example.org")

    def refused(api_url: str) -> dict:
        raise AccountProblem("Eventbrite 403 NOT_AUTHORIZED", 403)

    world.deps.eventbrite.fetch = refused  # type: ignore[method-assign]
    with pytest.raises(AccountProblem):
        world.webhook("order.updated", world.eventbrite.order_url(attendee_id))
    assert world.status("ada@example.org") is Status.REGISTERED


# ---------------------------------------------------------------- reconcile against Eventbrite's list


def test_after_the_event_a_registration_eventbrite_no_longer_lists_is_cancelled_not_a_no_show():
    world = World()
    ticket = world.place("old@example.org")
    world.eventbrite.change_email(ticket, "new@example.org")
    world.webhook("attendee.updated", world.eventbrite.attendee_url(ticket))

    world.now = NOW + timedelta(days=3)  # the event has ended
    [report] = reconcile_all(world.deps, recent_days=7, correlation_id="run")

    assert world.status("old@example.org") is Status.CANCELLED
    assert world.status("new@example.org") is Status.NO_SHOW
    assert world.mailchimp.tagged(REGISTERED) == {"new@example.org"}
    assert world.mailchimp.tagged(NO_SHOW) == {"new@example.org"}
    assert (report.no_shows, report.cancelled) == (1, 1)
    result = figures("webinar-dec", world.registrations.for_event("webinar-dec"))
    assert (result.no_shows, result.cancellations) == (1, 1)


def test_before_the_event_a_deleted_ticket_is_cancelled_so_reminders_stop():
    world = World()
    attendee_id = world.place("ada@example.org")
    world.eventbrite.people.pop(attendee_id)  # deleted, and its webhook never came

    [report] = reconcile_all(world.deps, recent_days=7, correlation_id="run")

    assert world.status("ada@example.org") is Status.CANCELLED
    assert world.mailchimp.tagged(REGISTERED) == set()
    assert report.cancelled == 1


def test_a_registrant_only_on_zoom_still_becomes_a_no_show_after_the_event():
    world = World()
    world.zoom(ZoomRegistered(zoom_id="9876543210", email="zed@example.org", at=NOW))
    world.place("ada@example.org")

    world.now = NOW + timedelta(days=3)
    [report] = reconcile_all(world.deps, recent_days=7, correlation_id="run")

    assert world.status("zed@example.org") is Status.NO_SHOW
    assert world.mailchimp.tagged(NO_SHOW) == {"zed@example.org", "ada@example.org"}
    assert report.no_shows == 2


# ---------------------------------------------------------------- attendance is sticky


def test_a_refund_after_attending_keeps_the_attendance_and_removes_only_registered():
    world = World()
    attendee_id = world.place("ada@example.org")
    world.eventbrite.check_in(attendee_id)
    world.webhook("attendee.checked_in", world.eventbrite.attendee_url(attendee_id))

    world.eventbrite.refund(attendee_id)
    world.webhook("order.refunded", world.eventbrite.order_url(attendee_id))

    assert world.status("ada@example.org") is Status.ATTENDED
    assert world.mailchimp.tags["ada@example.org"] == [ATTENDED]
    result = figures("webinar-dec", world.registrations.for_event("webinar-dec"))
    assert (result.attended, result.cancellations) == (1, 0)

    world.now = NOW + timedelta(days=3)
    world.mailchimp.calls.clear()
    reconcile_all(world.deps, recent_days=7, correlation_id="run")
    assert world.status("ada@example.org") is Status.ATTENDED and _tag_calls(world) == []


def test_a_zoom_join_of_a_cancelled_place_records_attendance_without_registered():
    world = World()
    attendee_id = world.place("ada@example.org")
    world.eventbrite.refund(attendee_id)
    world.webhook("order.refunded", world.eventbrite.order_url(attendee_id))

    world.zoom(ZoomAttended(zoom_id="9876543210", email="ada@example.org", at=NOW))

    assert world.status("ada@example.org") is Status.ATTENDED
    assert world.mailchimp.tags["ada@example.org"] == [ATTENDED]
    world.mailchimp.calls.clear()
    reconcile_all(world.deps, recent_days=7, correlation_id="run")
    assert _tag_calls(world) == []


def test_a_join_without_a_registration_records_attendance_but_makes_no_registrant():
    from support.fakes import MemoryActivityLog

    world = World()
    log = MemoryActivityLog()
    world.deps = replace(world.deps, activity=log)
    world.place("ada@example.org")
    world.mailchimp.calls.clear()

    answer = world.zoom(ZoomAttended(zoom_id="9876543210", email="host@example.org", at=NOW))

    assert answer == {"result": "walk_in"}
    assert world.status("host@example.org") is Status.ATTENDED
    assert world.mailchimp.calls == [] and "host@example.org" not in world.mailchimp.members
    assert world.members.get(email_key("host@example.org")) is None
    assert email_key("host@example.org") not in {record.member for record in log.buffered}
    result = figures("webinar-dec", world.registrations.for_event("webinar-dec"))
    assert (result.registrations, result.attended, result.walk_ins) == (1, 0, 1)
    # Joining again changes nothing; after the event the walk-in is neither a no-show nor cancelled.
    assert world.zoom(ZoomAttended(zoom_id="9876543210", email="host@example.org", at=NOW)) == {"result": "unchanged"}
    world.now = NOW + timedelta(days=3)
    reconcile_all(world.deps, recent_days=7, correlation_id="run")
    assert world.status("host@example.org") is Status.ATTENDED
    assert "host@example.org" not in world.mailchimp.members


def test_a_walk_in_whose_registration_arrives_later_becomes_a_registrant_who_attended():
    world = World()
    world.zoom(ZoomAttended(zoom_id="9876543210", email="late@example.org", at=NOW))  # before order.placed came
    world.zoom(ZoomAttended(zoom_id="9876543210", email="zoe@example.org", at=NOW))
    world.eventbrite.register("77", "dropped@example.org")  # its webhook was lost: the reconcile finds it
    world.zoom(ZoomAttended(zoom_id="9876543210", email="dropped@example.org", at=NOW))

    world.place("late@example.org")
    world.zoom(ZoomRegistered(zoom_id="9876543210", email="zoe@example.org", at=NOW))
    reconcile_all(world.deps, recent_days=7, correlation_id="run")

    for email in ("late@example.org", "zoe@example.org", "dropped@example.org"):
        assert world.status(email) is Status.ATTENDED
        assert sorted(world.mailchimp.tags[email]) == [ATTENDED, REGISTERED]
        assert world.members.get(email_key(email)) is not None
    result = figures("webinar-dec", world.registrations.for_event("webinar-dec"))
    assert (result.registrations, result.attended, result.walk_ins) == (3, 3, 0)


# ---------------------------------------------------------------- the run: each event on its own


def test_one_events_error_does_not_stop_the_others_and_the_run_says_which_were_left():
    from memberflow.errors import AccountProblem, Transient

    world = World()
    world.eventbrite.add_event("66", now=NOW)
    world.eventbrite.add_event("55", now=NOW)
    outage = SyncedEvent(slug="meetup-nov", eventbrite_event_id="66")
    broken = SyncedEvent(slug="meetup-oct", eventbrite_event_id="55")
    world.deps.events = [outage, EVENT, broken]
    world.eventbrite.register("77", "dropped@example.org")  # a webhook was lost
    world.eventbrite.failing["66"] = Transient("Eventbrite 503 SERVICE_UNAVAILABLE")

    reports = reconcile_all(world.deps, recent_days=7, correlation_id="run")

    assert [(r.event_slug, r.left.split(":")[0]) for r in reports] == [
        ("meetup-nov", "Transient"),
        ("webinar-dec", ""),
        ("meetup-oct", ""),
    ]
    assert world.status("dropped@example.org") is Status.REGISTERED
    from memberflow.registrations.reconcile import ReconcileIncomplete, raise_if_incomplete

    raise_if_incomplete(reports)  # an outage: the next run tries again, no alarm

    world.eventbrite.failing["55"] = AccountProblem("Eventbrite 403 NOT_AUTHORIZED", 403)
    reports = reconcile_all(world.deps, recent_days=7, correlation_id="run-2")
    assert [r.event_slug for r in reports if r.left] == ["meetup-nov", "meetup-oct"]
    with pytest.raises(ReconcileIncomplete, match="meetup-oct"):
        raise_if_incomplete(reports)


def test_an_event_our_records_say_ended_long_ago_is_skipped_without_calling_eventbrite():
    world = World(ends_in=timedelta(hours=2))
    world.place("ada@example.org")
    reconcile_all(world.deps, recent_days=7, correlation_id="run-1")  # reads the event: its end is remembered
    world.eventbrite.calls.clear()

    world.now = NOW + timedelta(days=8)
    assert reconcile_all(world.deps, recent_days=7, correlation_id="run-2") == []
    assert world.eventbrite.calls == []
    # An event we never read is asked about once, then remembered too.
    world.eventbrite.add_event("66", ends_in=-timedelta(days=30), now=NOW)
    world.deps.events = [EVENT, SyncedEvent(slug="meetup-old", eventbrite_event_id="66")]
    assert reconcile_all(world.deps, recent_days=7, correlation_id="run-3") == []
    assert world.eventbrite.calls == ["event"]
    reconcile_all(world.deps, recent_days=7, correlation_id="run-4")
    assert world.eventbrite.calls == ["event"]


# ---------------------------------------------------------------- the run's Eventbrite call budget


def three_events(world: World, attendees: dict[str, int]) -> None:
    """Events "66", "77" (EVENT) and "88", each with this many attendees (50 a page: n pages and an event read)."""
    world.eventbrite.add_event("66", now=NOW)
    world.eventbrite.add_event("88", now=NOW)
    world.deps.events = [
        SyncedEvent(slug="meetup-nov", eventbrite_event_id="66"),
        EVENT,
        SyncedEvent(slug="meetup-jan", eventbrite_event_id="88"),
    ]
    for event_id, count in attendees.items():
        for i in range(count):
            world.eventbrite.register(event_id, f"p{i}.{event_id}@example.org", attendee_id=f"{event_id}{i:04d}")


def left(reports) -> list[tuple[str, str]]:
    return [(r.event_slug, r.left.split(",")[0]) for r in reports if r.left]


def test_the_run_stops_at_its_call_budget_and_the_next_run_starts_with_the_events_it_left():
    from memberflow.registrations.reconcile import CallBudget, raise_if_incomplete

    world = World()
    three_events(world, {"66": 120, "77": 120, "88": 120})  # 4 calls each: the event and 3 pages

    budget = CallBudget(9)
    reports = reconcile_all(world.deps, recent_days=7, correlation_id="run-1", budget=budget)

    assert [r.event_slug for r in reports if not r.left] == ["meetup-nov", "webinar-dec"]
    assert left(reports) == [("meetup-jan", "CallBudgetSpent: not started")]
    assert "the run's 9 Eventbrite calls were spent" in reports[-1].left
    assert budget.spent == len(world.eventbrite.calls) == 8  # a ninth call could not have finished an event
    raise_if_incomplete(reports)  # no alarm: the next run goes on
    assert world.registrations.left == ["meetup-jan"]
    assert world.status("p0.77@example.org") is Status.REGISTERED

    world.eventbrite.calls.clear()
    reports = reconcile_all(world.deps, recent_days=7, correlation_id="run-2", budget=CallBudget(9))

    assert [r.event_slug for r in reports] == ["meetup-jan", "meetup-nov", "webinar-dec"]  # the one left, first
    assert left(reports) == [("webinar-dec", "CallBudgetSpent: not started")]
    assert world.eventbrite.calls == ["event", "attendees", "attendees", "attendees"] * 2
    assert world.registrations.left == ["webinar-dec"]
    assert len(world.registrations.for_event("meetup-jan")) == 120

    reports = reconcile_all(world.deps, recent_days=7, correlation_id="run-3", budget=CallBudget(9))
    assert [r.event_slug for r in reports][:1] == ["webinar-dec"]


def test_an_event_whose_list_needs_more_calls_than_are_left_is_not_begun_and_smaller_ones_go_on():
    from memberflow.registrations.reconcile import CallBudget, ReconcileIncomplete, raise_if_incomplete

    world = World()
    three_events(world, {"66": 10, "77": 250, "88": 10})  # 2, 6 and 2 calls

    budget = CallBudget(6)
    reports = reconcile_all(world.deps, recent_days=7, correlation_id="run-1", budget=budget)

    # webinar-dec's first page says 4 more pages: they would not fit, so they are not read.
    assert left(reports) == [("webinar-dec", "CallBudgetSpent: its attendee list needs 4 more Eventbrite calls")]
    assert [r.event_slug for r in reports if not r.left] == ["meetup-nov", "meetup-jan"]
    assert budget.spent == 6 and world.registrations.for_event("webinar-dec") == []
    raise_if_incomplete(reports)

    world.eventbrite.calls.clear()
    reports = reconcile_all(world.deps, recent_days=7, correlation_id="run-2", budget=CallBudget(6))
    assert [r.event_slug for r in reports if not r.left] == ["webinar-dec"]  # first, with the whole budget
    assert len(world.registrations.for_event("webinar-dec")) == 250
    assert world.registrations.left == ["meetup-nov", "meetup-jan"]

    # A list longer than a whole run's budget can never be reconciled: an operator must raise the budget. The run
    # stops reading it at its first page and goes on with the calls left.
    world.registrations.left = ["webinar-dec"]
    budget = CallBudget(5)
    reports = reconcile_all(world.deps, recent_days=7, correlation_id="run-3", budget=budget)
    assert [(r.event_slug, r.needs_operator) for r in reports if r.left] == [
        ("webinar-dec", True),
        ("meetup-jan", False),  # not started: 1 call was left
    ]
    assert "needs 6 Eventbrite calls, more than a run's 5" in reports[0].left
    assert [r.event_slug for r in reports if not r.left] == ["meetup-nov"] and budget.spent == 4
    with pytest.raises(ReconcileIncomplete, match="RECONCILE_EVENTBRITE_CALL_BUDGET"):
        raise_if_incomplete(reports)


def test_a_429_stops_eventbrite_calls_for_the_rest_of_the_run_and_the_next_run_starts_with_the_events_left():
    from memberflow.registrations.reconcile import CallBudget, raise_if_incomplete

    world = World()
    three_events(world, {"66": 60, "77": 60, "88": 60})  # 3 calls each
    world.eventbrite.register("77", "dropped@example.org")
    world.eventbrite.calls_per_hour = 4  # the token's hour runs out at webinar-dec's first page

    reports = reconcile_all(world.deps, recent_days=7, correlation_id="run-1", budget=CallBudget(250))

    assert [(r.event_slug, r.left) for r in reports] == [
        ("meetup-nov", ""),
        ("webinar-dec", "RateLimited: Eventbrite 429 HIT_RATE_LIMIT"),
        ("meetup-jan", "RateLimited: not started, Eventbrite throttled this run (Eventbrite 429 HIT_RATE_LIMIT)"),
    ]
    assert len(world.eventbrite.calls) == 5  # nothing asked after the 429
    raise_if_incomplete(reports)  # throttled: the next run tries again, no alarm
    assert world.registrations.left == ["webinar-dec", "meetup-jan"]

    world.eventbrite.calls_per_hour = None  # a new hour
    world.eventbrite.calls.clear()
    reports = reconcile_all(world.deps, recent_days=7, correlation_id="run-2", budget=CallBudget(250))

    assert [r.event_slug for r in reports] == ["webinar-dec", "meetup-jan", "meetup-nov"]
    assert [r.left for r in reports] == ["", "", ""] and world.registrations.left == []
    assert world.status("dropped@example.org") is Status.REGISTERED


def test_mailchimp_throttling_leaves_only_the_event_in_hand_and_the_run_goes_on_calling_eventbrite():
    from memberflow.registrations.reconcile import CallBudget

    world = World()
    three_events(world, {"66": 3, "77": 3, "88": 3})
    world.mailchimp.failures = [RateLimited("Mailchimp 429 Too Many Requests")]  # meetup-nov's first bulk call

    budget = CallBudget(250)
    reports = reconcile_all(world.deps, recent_days=7, correlation_id="run-1", budget=budget)

    assert left(reports) == [("meetup-nov", "RateLimited: Mailchimp 429 Too Many Requests")]
    assert [r.event_slug for r in reports if not r.left] == ["webinar-dec", "meetup-jan"]
    assert not budget.eventbrite_throttled
    assert len(world.registrations.for_event("meetup-jan")) == 3


def test_webhook_fetches_are_not_charged_to_a_runs_budget():
    from memberflow.registrations.reconcile import CallBudget

    world = World()
    budget = CallBudget(2)
    metered = world.eventbrite.metered(budget)
    metered.event("77")
    world.place("ada@example.org")  # the consumer's fetch: the unmetered client
    assert budget.spent == 1 and world.eventbrite.calls == ["event", "fetch"]
