"""The consent ledger on the in-memory fakes: every consent decision is appended (never overwritten, never twice for
one event), the member record's consent is derived from it, Mailchimp gets its timestamps and marketing permissions
from it, and Mailchimp's own signals (unsubscribe, clean, subscribe, address change) act at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from memberflow.events import (
    MailchimpCleaned,
    MailchimpEmailChanged,
    MailchimpSubscribed,
    MailchimpUnsubscribed,
    MemberErased,
)
from memberflow.ledger import Change, ConsentEntry, Wording, consent_from, mailchimp_time, provenance
from memberflow.members import member_id_for
from memberflow.models import Platform
from memberflow.onboarding import consumer
from memberflow.onboarding.consent_ledger import ConsentRules
from memberflow.onboarding.drip import DripDeps, send_due_drip_steps
from memberflow.onboarding.join import OPT_IN, OnboardingDeps
from memberflow.onboarding.rules import OnboardingRules, WelcomeJourney
from memberflow.onboarding.welcome import DRIP
from memberflow.pipeline.envelope import QueuedEvent
from memberflow.privacy import email_key
from support.fakes import (
    FakeMailingList,
    MemoryDueWork,
    MemoryLedger,
    MemoryMembers,
    MemorySuppressions,
    MemoryTrace,
)
from support.queue import JOINED, consent_given, joined

ADA = "ada@example.com"
LIST_ID = "list1"
NOW = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
DAY = timedelta(days=1)
WORDING = Wording("Send me the monthly newsletter", "2024-05")


class World:
    def __init__(self, permissions: tuple[str, ...] = ()) -> None:
        self.mailing_list = FakeMailingList()
        self.members = MemoryMembers()
        self.due_work = MemoryDueWork(self.members)
        self.trace = MemoryTrace()
        self.ledger = MemoryLedger(self.members)
        rules = OnboardingRules(list_id=LIST_ID, welcome_journey=WelcomeJourney("j1", "s1"))
        self.consent_rules = ConsentRules({"discourse": WORDING}, permissions)
        self.deps = OnboardingDeps(
            mailing_list=self.mailing_list,
            members=self.members,
            due_work=self.due_work,
            trace=self.trace,
            rules=rules,
            suppressions=MemorySuppressions(),
            ledger=self.ledger,
            consent_rules=self.consent_rules,
            clock=lambda: NOW,
        )
        self.drip = DripDeps(
            self.mailing_list,
            self.members,
            self.due_work,
            self.trace,
            LIST_ID,
            rules.drip_step_days,
            rules.welcome_journey,
            self.ledger,
            self.consent_rules,
        )
        self.handlers = consumer.handlers(lambda: self.deps)

    def handle(self, queued: QueuedEvent) -> dict:
        return self.handlers[queued.event.type](queued)

    def entries(self, email: str = ADA) -> list[ConsentEntry]:
        return self.ledger.entries(email_key(email))

    def changes(self, email: str = ADA) -> list[tuple[Change, str]]:
        return [(entry.change, entry.status) for entry in self.entries(email)]


def mailchimp(event_type, email: str = ADA, at: datetime = NOW + timedelta(hours=2), **fields) -> QueuedEvent:
    event = event_type(list_id=fields.pop("list_id", LIST_ID), email=email, fired_at=at, **fields)
    return QueuedEvent(
        idempotency_key=f"mailchimp:{event.type}:{email_key(email)}:{at:%Y%m%dT%H%M%S}",
        correlation_id="corr-mc",
        source="mailchimp",
        received_at=at,
        event=event,
    )


def unverified(queued: QueuedEvent) -> QueuedEvent:
    return queued.model_copy(update={"event": queued.event.model_copy(update={"email_verified": False})})


@pytest.fixture
def world() -> World:
    return World()


def test_a_consenting_join_is_given_in_the_ledger_with_its_source_event_and_wording(world):
    queued = joined(ADA, consent=True)
    world.handle(queued)

    [entry] = world.entries()
    assert (entry.change, entry.status, entry.platform) == (Change.GIVEN, "subscribed", "discourse")
    assert (entry.source_event_type, entry.source_event_id) == ("member_joined", queued.idempotency_key)
    assert entry.wording == WORDING and entry.at == JOINED
    assert world.members.get(email_key(ADA)).marketing_consent is True


def test_mailchimp_gets_timestamp_signup_and_opt_from_the_ledger_for_a_direct_subscribe(world):
    world.handle(joined(ADA, consent=True))

    sent = world.mailing_list.consent_fields[ADA]
    assert sent == {"timestamp_signup": "2026-11-02T09:30:00+00:00", "timestamp_opt": "2026-11-02T09:30:00+00:00"}


def test_double_opt_in_sends_only_timestamp_signup_and_the_confirmation_is_appended(world):
    world.handle(unverified(joined(ADA, consent=True)))
    assert world.mailing_list.consent_fields[ADA] == {"timestamp_signup": "2026-11-02T09:30:00+00:00"}
    assert world.changes() == [(Change.GIVEN, "pending")]

    world.mailing_list.members[ADA] = "subscribed"  # the member clicks Mailchimp's confirmation link
    send_due_drip_steps(NOW + timedelta(hours=1), "run-1", world.drip)

    assert world.changes() == [(Change.GIVEN, "pending"), (Change.CONFIRMED, "subscribed")]
    assert world.entries()[-1].platform == "mailchimp"


def test_no_consent_is_recorded_as_not_given_with_why_and_no_timestamps(world):
    world.handle(joined(ADA, consent=False, platform=Platform.SLACK))

    [entry] = world.entries()
    assert (entry.change, entry.status, entry.wording) == (Change.NOT_GIVEN, "transactional", None)
    assert "no marketing consent" in entry.detail
    assert world.mailing_list.consent_fields[ADA] == {}
    assert world.members.get(email_key(ADA)).marketing_consent is False


def test_consent_given_later_is_an_upgrade_in_the_ledger(world):
    join = joined(ADA, consent=False)
    world.handle(join)
    world.handle(consent_given(join.event.identity, ADA))

    # Discourse proved the address at the join, so the upgrade is a direct subscribe.
    assert world.changes() == [(Change.NOT_GIVEN, "transactional"), (Change.UPGRADED, "subscribed")]
    assert world.entries()[-1].wording == WORDING
    assert world.members.get(email_key(ADA)).marketing_consent is True
    assert world.mailing_list.consent_fields[ADA]["timestamp_opt"] == mailchimp_time(world.entries()[-1].at)


def test_a_redelivered_event_appends_nothing_and_a_second_join_repeating_the_same_consent_neither(world):
    queued = joined(ADA, consent=True)
    world.handle(queued)
    world.handle(queued)
    world.handle(joined(ADA, consent=True, platform=Platform.DISCORD))

    assert world.changes() == [(Change.GIVEN, "subscribed")]


def test_the_ledger_is_never_overwritten():
    ledger = MemoryLedger()
    entry = ConsentEntry("m1", Change.GIVEN, "discourse", "member_joined", "k1", NOW, "subscribed")
    assert ledger.append(entry) is True
    assert ledger.append(ConsentEntry("m1", Change.GIVEN, "discourse", "member_joined", "k1", NOW, "pending")) is False
    assert ledger.entries("m1") == [entry]


def test_marketing_permissions_are_enabled_only_for_members_who_consented():
    world = World(permissions=("abc123",))
    world.handle(joined(ADA, consent=True))
    world.handle(joined("bob@example.com", consent=False))

    assert world.mailing_list.consent_fields[ADA]["marketing_permissions"] == [
        {"marketing_permission_id": "abc123", "enabled": True}
    ]
    assert "marketing_permissions" not in world.mailing_list.consent_fields["bob@example.com"]


def test_an_unsubscribe_webhook_stops_the_drip_at_once_and_marks_the_member_opted_out(world):
    world.handle(joined(ADA, consent=True))
    assert [work.member_id for work in world.due_work.due(DRIP, NOW + 30 * DAY)] == [email_key(ADA)]

    result = world.handle(mailchimp(MailchimpUnsubscribed, action="unsub", reason="manual"))

    assert result == {"result": "opted_out", "status": "unsubscribed"}
    assert list(world.due_work.due(DRIP, NOW + 30 * DAY)) == []
    member = world.members.get(email_key(ADA))
    assert member.opted_out_before and member.mailchimp_status == "unsubscribed" and not member.marketing_consent
    assert world.changes()[-1] == (Change.WITHDRAWN, "unsubscribed")
    report = send_due_drip_steps(NOW + 30 * DAY, "run-1", world.drip)
    assert report.sent == 0 and "onboarding-day-1" not in world.mailing_list.tags.get(ADA, [])


def test_a_cleaned_address_ends_the_opt_in_wait_and_is_withdrawn(world):
    world.handle(unverified(joined(ADA, consent=True)))
    assert [work.member_id for work in world.due_work.due(OPT_IN, NOW + DAY)] == [email_key(ADA)]

    world.handle(mailchimp(MailchimpCleaned, reason="hard"))

    assert list(world.due_work.due(OPT_IN, NOW + DAY)) == []
    assert world.changes()[-1] == (Change.WITHDRAWN, "cleaned")
    assert "hard" in world.entries()[-1].detail


def test_a_subscribe_webhook_welcomes_a_pending_member_now_without_waiting_for_the_poll(world):
    world.handle(unverified(joined(ADA, consent=True)))
    world.mailing_list.members[ADA] = "subscribed"

    result = world.handle(mailchimp(MailchimpSubscribed))

    assert result == {"result": "welcomed"}
    assert world.mailing_list.journeys == [ADA]
    assert world.changes() == [(Change.GIVEN, "pending"), (Change.CONFIRMED, "subscribed")]
    assert list(world.due_work.due(OPT_IN, NOW + 30 * DAY)) == []
    assert [work.member_id for work in world.due_work.due(DRIP, NOW + 2 * DAY)] == [email_key(ADA)]


def test_webhooks_for_another_audience_or_an_unknown_address_change_nothing(world):
    assert world.handle(mailchimp(MailchimpUnsubscribed, list_id="other"))["result"] == "other_audience"
    assert world.handle(mailchimp(MailchimpUnsubscribed, "nobody@example.com"))["result"] == "unknown_member"


def test_an_address_change_moves_the_member_with_their_ledger_and_drip(world):
    join = joined(ADA, consent=True)
    world.handle(join)

    result = world.handle(mailchimp(MailchimpEmailChanged, new_email="ada.new@example.com"))

    assert result == {"result": "moved"}
    new_id = email_key("ada.new@example.com")
    assert world.members.get(email_key(ADA)) is None
    assert world.members.get(new_id).email == "ada.new@example.com"
    assert world.members.link(join.event.identity.key).member_id == new_id
    assert world.changes("ada.new@example.com") == [(Change.GIVEN, "subscribed")]
    assert [work.member_id for work in world.due_work.due(DRIP, NOW + 30 * DAY)] == [new_id]


def test_erasure_deletes_the_ledger_with_the_member(world):
    world.handle(joined(ADA, consent=True))
    world.handle(
        QueuedEvent(
            idempotency_key="operator:forget:1",
            correlation_id="c",
            source="operator",
            received_at=NOW + DAY,
            event=MemberErased(email=ADA),
        )
    )
    assert world.entries() == []


def test_consent_and_provenance_are_derived_from_the_latest_changes():
    def entry(change: Change, status: str, hours: int) -> ConsentEntry:
        return ConsentEntry("m", change, "discourse", "t", f"k{hours}", NOW + timedelta(hours=hours), status)

    given = [entry(Change.GIVEN, "pending", 0), entry(Change.CONFIRMED, "subscribed", 2)]
    assert consent_from(given) is True
    assert provenance(given).fields() == {
        "timestamp_signup": "2026-11-02T10:00:00+00:00",
        "timestamp_opt": "2026-11-02T12:00:00+00:00",
    }
    withdrawn = [*given, entry(Change.WITHDRAWN, "unsubscribed", 3)]
    assert consent_from(withdrawn) is False and provenance(withdrawn).fields() == {}
    assert consent_from([]) is None
    assert member_id_for(joined(ADA, consent=True).event.identity, ADA) == email_key(ADA)


def test_the_trace_report_shows_the_ledger(world):
    from memberflow.trace_report import collect, render

    world.handle(joined(ADA, consent=True))
    lines = render(collect(ADA, world.trace, world.members, ledger=world.ledger))

    assert "  consent ledger:" in lines
    [entry] = [line for line in lines if "member_joined" in line and "given" in line]
    assert "subscribed" in entry and '"Send me the monthly newsletter" (v2024-05)' in entry


@pytest.mark.parametrize("status", ["subscribed", "pending"])
def test_consent_mailchimp_holds_from_elsewhere_is_attributed_to_mailchimp_not_the_platform(world, status):
    world.mailing_list.members[ADA] = status  # signed up through a Mailchimp form before joining on Slack
    world.handle(joined(ADA, consent=False, platform=Platform.SLACK))

    [entry] = world.entries()
    assert (entry.change, entry.status, entry.platform, entry.wording) == (Change.GIVEN, status, "mailchimp", None)
    assert "Mailchimp" in entry.detail
    assert world.mailing_list.consent_fields[ADA] == {}  # nothing invented
