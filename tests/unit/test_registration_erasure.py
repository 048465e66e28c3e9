"""Erasure reaches event registrations: the onboarding erasure hands the member ids the person's registrations are
stored under on to the registrations queue, and the event sync consumer deletes every registration stored under
them (a repeat deletes nothing more); nobody else's registration is touched, and no address travels. What
Eventbrite still lists from before the erasure does not bring the registration back; a registration made after it
is a new one."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from test_erasure import erasure
from test_event_sync import NOW, World
from test_onboarding_domain import ADA
from test_onboarding_domain import World as OnboardingWorld

from memberflow.events import CATALOG, RegistrantErased
from memberflow.onboarding.erasure import erase_member
from memberflow.pipeline.envelope import QueuedEvent
from memberflow.privacy import email_key
from memberflow.registrations.consumer import handlers
from memberflow.registrations.erasure import MEMBER_IDS_PER_EVENT, erasure_events, registrant_ids
from memberflow.registrations.model import Registration, Status
from memberflow.registrations.reconcile import reconcile_all
from memberflow.runtime.event_sync import RegistrationsErasure
from memberflow.trace import Step, email_subject
from support.fakes import MemoryLedger
from support.queue import joined

BOB = "bob@example.org"


class MemoryRouter:
    """The registrations queue: what was sent, as the consumer would receive it (through JSON)."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, queued: QueuedEvent) -> str:
        assert CATALOG.get(queued.event.type).destination == "registrations"
        self.sent.append(queued.model_dump_json())
        return f"m-{len(self.sent)}"

    def deliver(self, world: World) -> list[dict]:
        consumer = handlers(lambda: world.deps)
        answers = []
        for body in self.sent:
            queued = QueuedEvent.model_validate_json(body)
            answers.append(consumer[queued.event.type](queued))
        return answers


def registered(world: World, email: str, slug: str = "webinar-dec") -> None:
    world.registrations.put(
        Registration(event_slug=slug, member_id=email_key(email), email=email, status=Status.REGISTERED)
    )


def held(world: World) -> set[tuple[str, str]]:
    return set(world.registrations.items)


def test_the_event_sync_consumer_deletes_every_registration_of_the_member_and_a_repeat_deletes_nothing():
    world = World()
    world.place(ADA)
    world.place(BOB)
    registered(world, ADA, slug="meetup-jan")
    [queued] = erasure_events([ADA], [], "discourse:erase:1", "corr-erase")
    consumer = handlers(lambda: world.deps)

    assert consumer["registrant_erased"](queued) == {"result": "erased", "registrations": 2}
    assert held(world) == {("webinar-dec", email_key(BOB))}
    assert consumer["registrant_erased"](queued) == {"result": "erased", "registrations": 0}
    assert held(world) == {("webinar-dec", email_key(BOB))}


def test_the_member_ids_cover_every_address_and_the_event_identities_of_an_address_changed_later():
    identities = [f"eventbrite:77:{email_key('old@example.org')}", "zoom:9876543210:abc123", "slack:T1:U1"]
    assert registrant_ids(["Ada@Example.org "], identities) == sorted(
        {email_key(ADA), email_key("old@example.org"), "abc123"}
    )
    assert registrant_ids([], ["slack:T1:U1", "discourse:w1:7"]) == []


def test_the_hand_on_carries_member_ids_only_in_events_keyed_by_the_erasure():
    many = [f"eventbrite:{n}:{n:032x}" for n in range(MEMBER_IDS_PER_EVENT + 20)]
    events = erasure_events([ADA], many, "k:1", "c")
    assert [e.idempotency_key for e in events] == ["k:1:registrations", "k:1:registrations:1"]
    assert sum(len(e.event.member_ids) for e in events) == MEMBER_IDS_PER_EVENT + 21
    assert all(isinstance(e.event, RegistrantErased) and e.correlation_id == "c" for e in events)
    assert ADA not in "".join(e.model_dump_json() for e in events)
    assert erasure_events([], ["slack:T1:U1"], "k:2", "c") == []
    [long] = erasure_events([ADA], [], "k" * 600, "c")  # a platform's long key: cut, the suffix kept
    assert len(long.idempotency_key) == 500 and long.idempotency_key.endswith("k:registrations")


def test_an_erasure_removes_the_persons_registrations_through_the_registrations_queue():
    onboarding, sync = OnboardingWorld(), World()
    # One member store: event sync matches registrants to the members onboarding keeps.
    sync.deps = replace(sync.deps, members=onboarding.members, ledger=MemoryLedger(onboarding.members))
    onboarding.join(joined(ADA, consent=True))
    sync.place("Ada@Example.org")  # the same person, registered with the address in another case
    sync.place(BOB)
    router = MemoryRouter()
    onboarding.deps = replace(onboarding.deps, erasure_participants=(RegistrationsErasure(router),))

    erase_member(erasure(ADA), onboarding.deps)
    assert held(sync) == {("webinar-dec", email_key(ADA)), ("webinar-dec", email_key(BOB))}  # queued, not yet done
    [answer] = router.deliver(sync)

    assert answer == {"result": "erased", "registrations": 1}
    assert held(sync) == {("webinar-dec", email_key(BOB))}
    assert not [body for body in router.sent if "ada" in body.lower()]
    erased = [r for r in onboarding.trace.records if r.step is Step.ERASED]
    assert erased and all("event registrations: handed on to the event sync queue" in r.detail for r in erased)
    # The erasure retried (a later step failed): the same event again, harmless.
    erase_member(erasure(ADA), onboarding.deps)
    assert [a["registrations"] for a in router.deliver(sync)] == [0, 0]
    assert held(sync) == {("webinar-dec", email_key(BOB))}


def test_what_eventbrite_still_lists_from_before_the_erasure_is_not_brought_back_and_a_later_order_is_new():
    onboarding, sync = OnboardingWorld(), World(ends_in=timedelta(hours=1))
    sync.deps = replace(
        sync.deps,
        members=onboarding.members,
        ledger=MemoryLedger(onboarding.members),
        suppressions=onboarding.suppressions,
        trace=onboarding.trace,
    )
    ada = sync.place(ADA)  # ordered 2026-11-20
    sync.place(BOB)
    router = MemoryRouter()
    onboarding.deps = replace(onboarding.deps, erasure_participants=(RegistrationsErasure(router),), clock=lambda: NOW)
    erase_member(erasure(ADA), onboarding.deps)
    router.deliver(sync)
    assert held(sync) == {("webinar-dec", email_key(BOB))}
    calls = list(sync.mailchimp.calls)

    sync.now = NOW + timedelta(minutes=30)
    sync.eventbrite.check_in(ada)  # the old ticket, still valid on Eventbrite
    assert sync.webhook("attendee.checked_in", sync.eventbrite.attendee_url(ada))["changed"] == 0
    sync.now = NOW + timedelta(hours=2)  # the event has ended: the reconcile run
    [report] = reconcile_all(sync.deps, recent_days=7, correlation_id="r")

    assert report.details == {"erased": 1} and report.created == 0
    assert held(sync) == {("webinar-dec", email_key(BOB))}
    assert onboarding.members.get(email_key(ADA)) is None  # nor the member record
    assert sync.mailchimp.calls[: len(calls)] == calls and ADA not in repr(sync.mailchimp.calls[len(calls) :])
    assert onboarding.trace.query(email_subject(ADA)) == []

    # A new order after the erasure is a new registration (kept without marketing permission, as any).
    again = sync.eventbrite.register("77", ADA)
    sync.eventbrite.people[again]["created"] = (NOW + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    sync.now = NOW + timedelta(hours=3)
    sync.webhook("order.placed", sync.eventbrite.order_url(again))
    assert ("webinar-dec", email_key(ADA)) in held(sync)
