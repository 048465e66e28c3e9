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
    MemberJoined,
)
from memberflow.ledger import Change, ConsentEntry, Wording, consent_from, mailchimp_time, provenance
from memberflow.members import member_id_for
from memberflow.models import MemberIdentity, Platform
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
from support.queue import JOINED, consent_given, joined, verified

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


# -- when consent was given (audit M4) and a member who opted out asking again (audit M5) --------------------------

GUILD_JOIN = datetime(2026, 3, 1, 12, tzinfo=UTC)
"""When Ada joined the Discord server: months before she asked for the newsletter."""
DISCORD_ADA = MemberIdentity(platform=Platform.DISCORD, workspace="g1", user_id="42")


def newsletter(at: datetime, n: int = 1, *, received_at: datetime | None = None, dated: bool = True) -> QueuedEvent:
    """Ada's /newsletter sign-up on Discord, sent at `at` (the relay's occurred_at) and received then (or at
    `received_at`: a message that waited in the queue). `dated` False: as queued before joins carried the time."""
    event = MemberJoined(
        identity=DISCORD_ADA,
        email=ADA,
        name="Ada",
        joined_at=GUILD_JOIN,
        marketing_consent=True,
        email_verified=False,
        consented_at=at if dated else None,
    )
    return QueuedEvent(
        idempotency_key=f"discord:g1:newsletter-{n}",
        correlation_id=f"corr-n{n}",
        source="discord",
        received_at=received_at or at,
        event=event,
    )


def unsubscribe(world: World, at: datetime) -> None:
    """Ada unsubscribes through Mailchimp's link: its webhook, and what Mailchimp holds from then on."""
    assert world.handle(mailchimp(MailchimpUnsubscribed, at=at, action="unsub"))["result"] == "opted_out"
    world.mailing_list.members[ADA] = "unsubscribed"


def test_a_newsletter_sign_up_is_dated_by_the_sign_up_not_by_the_server_join(world):
    world.handle(newsletter(NOW))

    [entry] = world.entries()
    assert (entry.change, entry.status, entry.at) == (Change.GIVEN, "pending", NOW)
    assert world.mailing_list.consent_fields[ADA] == {"timestamp_signup": mailchimp_time(NOW)}


def test_a_sign_up_queued_before_joins_carried_their_consent_time_is_dated_by_its_receipt(world):
    world.handle(newsletter(NOW, dated=False))

    assert [entry.at for entry in world.entries()] == [NOW]
    assert world.mailing_list.consent_fields[ADA] == {"timestamp_signup": mailchimp_time(NOW)}


def test_the_ledger_reads_in_the_order_things_happened_when_a_member_signs_up_again(world):
    world.handle(joined(ADA, consent=True))  # the forum's consent box at sign-up: subscribed
    unsubscribe(world, NOW + DAY)
    world.handle(newsletter(NOW + 30 * DAY))

    entries = world.entries()
    assert [(entry.change, entry.status, entry.at) for entry in entries] == [
        (Change.GIVEN, "subscribed", JOINED),
        (Change.WITHDRAWN, "unsubscribed", NOW + DAY),
        (Change.GIVEN, "pending", NOW + 30 * DAY),
    ]
    assert consent_from(entries) is True
    assert provenance(entries).fields() == {"timestamp_signup": mailchimp_time(NOW + 30 * DAY)}
    assert world.mailing_list.consent_fields[ADA]["timestamp_signup"] == mailchimp_time(NOW + 30 * DAY)


def test_an_unsubscribed_member_who_asks_again_gets_mailchimps_re_opt_in_recorded_in_the_ledger(world):
    world.handle(joined(ADA, consent=True))
    unsubscribe(world, NOW + timedelta(hours=2))
    signup = newsletter(NOW + 30 * DAY)

    result = world.handle(signup)

    # `status: pending` on the existing member (status_if_new alone changes nothing for them): the re-opt-in email.
    assert result == {"result": "awaiting_opt_in", "status": "pending"}
    assert world.mailing_list.members[ADA] == "pending"
    assert world.mailing_list.calls.count("set_status") == 1
    entry = world.entries()[-1]
    assert (entry.change, entry.status, entry.platform) == (Change.GIVEN, "pending", "discord")
    assert entry.source_event_id == signup.idempotency_key and "re-opt-in" in entry.detail
    member = world.members.get(email_key(ADA))
    assert member.mailchimp_status == "pending" and member.marketing_consent is True
    assert member.opted_out_before  # never a direct subscribe for her again
    assert [work.member_id for work in world.due_work.due(OPT_IN, NOW + timedelta(hours=1))] == [email_key(ADA)]

    world.mailing_list.members[ADA] = "subscribed"  # she confirms Mailchimp's re-opt-in email
    send_due_drip_steps(NOW + 30 * DAY + timedelta(hours=1), "run-1", world.drip)
    assert world.changes()[-1] == (Change.CONFIRMED, "subscribed")
    assert world.mailing_list.journeys == [ADA]  # one welcome journey, ever


def _no_new_request(world: World, kind: str) -> QueuedEvent:
    forum = joined(ADA, consent=True, user_id="7", key="discourse:w1:user_created:7")
    if kind == "slack_join_without_consent":
        return joined(ADA, consent=False, platform=Platform.SLACK)
    if kind == "verification_with_the_box_ticked":
        return verified(forum.event.identity, ADA, consent=True)
    if kind == "profile_edit_repeating_the_ticked_box":
        return consent_given(forum.event.identity, ADA).model_copy(update={"received_at": NOW + DAY})
    if kind == "forum_approval_of_a_sign_up_made_before_the_opt_out":
        return forum.model_copy(update={"idempotency_key": "discourse:w1:user_approved:7", "received_at": NOW + DAY})
    assert kind == "sign_up_made_before_the_opt_out_handled_after_it"
    return newsletter(NOW + timedelta(hours=1), received_at=NOW + timedelta(hours=1))


@pytest.mark.parametrize(
    "kind",
    [
        "slack_join_without_consent",
        "verification_with_the_box_ticked",
        "profile_edit_repeating_the_ticked_box",
        "forum_approval_of_a_sign_up_made_before_the_opt_out",
        "sign_up_made_before_the_opt_out_handled_after_it",
    ],
)
def test_only_a_consent_given_after_the_opt_out_asks_again(world, kind):
    world.handle(joined(ADA, consent=True, user_id="7", key="discourse:w1:user_created:7"))
    unsubscribe(world, NOW + timedelta(hours=2))

    result = world.handle(_no_new_request(world, kind))

    assert result == {"result": "kept_opted_out", "status": "unsubscribed"}
    assert world.mailing_list.members[ADA] == "unsubscribed" and "set_status" not in world.mailing_list.calls
    assert world.changes()[-1] == (Change.WITHDRAWN, "unsubscribed")


def test_a_retried_or_redelivered_sign_up_never_sends_a_second_re_opt_in(world):
    from memberflow.errors import Transient

    world.handle(joined(ADA, consent=True))
    unsubscribe(world, NOW + timedelta(hours=2))
    signup = newsletter(NOW + DAY)

    # The first attempt asks Mailchimp, then fails before its ledger entry is written: the worker retries it.
    append = world.ledger.append
    world.ledger.append = lambda entry: (_ for _ in ()).throw(Transient("DynamoDB throttled"))
    with pytest.raises(Transient):
        world.handle(signup)
    world.ledger.append = append
    world.handle(signup)  # the retry: Mailchimp says pending, nothing is asked again
    world.mailing_list.members[ADA] = "unsubscribed"  # even were Mailchimp to answer unsubscribed again
    world.handle(signup)  # a redelivery (a redrive, an expired idempotency record)

    assert world.mailing_list.calls.count("set_status") == 1
    assert [change for change, _ in world.changes()].count(Change.GIVEN) == 2  # the first join, the re-opt-in


@pytest.mark.parametrize("gone", ["cleaned", "forgotten"])
def test_a_cleaned_or_permanently_deleted_address_is_never_re_added_by_a_new_sign_up(world, gone):
    world.handle(joined(ADA, consent=True))
    if gone == "cleaned":
        world.handle(mailchimp(MailchimpCleaned, reason="hard"))
        world.mailing_list.members[ADA] = "cleaned"
    else:
        world.mailing_list.forget(LIST_ID, ADA)  # deleted permanently in Mailchimp

    result = world.handle(newsletter(NOW + DAY))

    assert result["result"] == ("kept_opted_out" if gone == "cleaned" else "refused")
    assert "set_status" not in world.mailing_list.calls and world.mailing_list.members.get(ADA) != "pending"
