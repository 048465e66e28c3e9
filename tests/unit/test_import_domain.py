"""Importing existing members on the fakes: the onboarding consent rules in bulk, nobody who opted out
resubscribed, one batch call per 500 members and per tag, no welcome journey outside the window, a re-run that
changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from memberflow.errors import NotFound, Transient
from memberflow.events import ImportedMember
from memberflow.members import member_id_for
from memberflow.models import MemberIdentity, Platform
from memberflow.onboarding.imports import ImportDeps, ImportRules, TagBuffer, dry_run, import_chunk
from memberflow.onboarding.join import OPT_IN
from memberflow.onboarding.rules import OnboardingRules, WelcomeJourney
from memberflow.onboarding.welcome import DRIP
from memberflow.privacy import email_suppression_name, identity_suppression_name
from memberflow.trace import Outcome, Step, email_subject
from support.fakes import (
    FakeBulkMailingList,
    MemoryDueWork,
    MemoryLedger,
    MemoryMembers,
    MemorySuppressions,
    MemoryTrace,
    unavailable,
)

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
LIST_ID = "list1"
OLD = NOW - timedelta(days=400)
RECENT = NOW - timedelta(days=3)


def member(n: int, *, consent: bool = True, joined: datetime | None = OLD, verified: bool = True, platform="discourse"):
    return ImportedMember(
        identity=MemberIdentity(platform=Platform(platform), workspace="w", user_id=str(n)),
        email=f"m{n}@example.org",
        name=f"Member {n}",
        joined_at=joined,
        marketing_consent=consent,
        email_verified=verified,
    )


class World:
    def __init__(self, *, window: int = 14, journey_tag: str = "") -> None:
        self.audience = FakeBulkMailingList()
        self.members = MemoryMembers()
        self.due_work = MemoryDueWork(self.members)
        self.trace = MemoryTrace()
        self.suppressions = MemorySuppressions()
        self.deps = ImportDeps(
            bulk=self.audience,
            mailing_list=self.audience,
            members=self.members,
            due_work=self.due_work,
            trace=self.trace,
            suppressions=self.suppressions,
            rules=OnboardingRules(list_id=LIST_ID, welcome_journey=WelcomeJourney("j1", "s1")),
            ledger=MemoryLedger(self.members),
            import_rules=ImportRules(welcome_window_days=window, journey_tag=journey_tag),
            clock=lambda: NOW,
        )

    def run(self, people, tags: TagBuffer | None = None):
        report = None
        for start in range(0, len(people), 500):
            chunk = import_chunk(people[start : start + 500], self.deps, correlation_id="import-1", tags=tags)
            report = chunk if report is None else (report.add(chunk) or report)
        return report

    def status(self, n: int) -> str | None:
        return self.audience.members.get(f"m{n}@example.org")

    def record(self, person: ImportedMember):
        return self.members.get(member_id_for(person.identity, person.email))


def test_consent_decides_as_for_live_joins_and_nobody_opted_out_is_resubscribed():
    world = World()
    world.audience.members["m4@example.org"] = "unsubscribed"  # opted out before memberflow
    world.audience.members["m5@example.org"] = "cleaned"
    people = [
        member(1),  # consented, address proven
        member(2, consent=False),
        member(3, verified=False),  # consented, address not proven: double opt-in
        member(4),
        member(5),
    ]
    report = world.run(people)

    assert [world.status(n) for n in range(1, 6)] == [
        "subscribed",
        "transactional",
        "pending",
        "unsubscribed",
        "cleaned",
    ]
    assert report.statuses == {"subscribed": 1, "transactional": 1, "pending": 1, "unsubscribed": 1, "cleaned": 1}
    assert world.record(people[3]).opted_out_before and world.record(people[3]).mailchimp_status == "unsubscribed"
    # opted-out members are not tagged; everyone else carries the platform and cohort tags of a live join
    assert world.audience.tagged("platform:discourse") == {f"m{n}@example.org" for n in (1, 2, 3)}
    assert world.audience.tagged(f"cohort:{OLD:%Y-%m}") == {f"m{n}@example.org" for n in (1, 2, 3)}
    assert "set_status" not in world.audience.calls  # existing members' status is read, never overwritten


def test_each_imported_member_has_a_ledger_entry_that_explains_their_status_and_mailchimp_its_times():
    world = World()
    world.audience.members["m4@example.org"] = "unsubscribed"
    people = [member(1), member(2, consent=False), member(3, verified=False), member(4)]
    world.run(people)

    def ledger(n: int) -> list[tuple[str, str, str]]:
        entries = world.deps.ledger.entries(world.record(people[n - 1]).member_id)
        return [(e.change.value, e.status, e.platform) for e in entries]

    assert ledger(1) == [("given", "subscribed", "discourse")]
    assert ledger(2) == [("not_given", "transactional", "discourse")]
    assert ledger(3) == [("given", "pending", "discourse")]
    assert ledger(4) == [("withdrawn", "unsubscribed", "mailchimp")]  # Mailchimp's opt-out, kept
    sent = world.audience.sent
    # The import is when memberflow learnt of the consent: nothing earlier is claimed.
    assert (sent["m1@example.org"].timestamp_signup, sent["m1@example.org"].timestamp_opt) == (NOW, NOW)
    assert (sent["m3@example.org"].timestamp_signup, sent["m3@example.org"].timestamp_opt) == (NOW, None)
    assert (sent["m2@example.org"].timestamp_signup, sent["m2@example.org"].timestamp_opt) == (None, None)


def test_a_transactional_member_who_consented_on_the_platform_is_upgraded_by_the_consent_rules():
    world = World()
    world.audience.members["m1@example.org"] = "transactional"  # added by an earlier tool without permission
    world.audience.members["m2@example.org"] = "transactional"
    world.run([member(1), member(2, verified=False)])
    assert (world.status(1), world.status(2)) == ("subscribed", "pending")


def test_an_import_upgrade_sends_the_live_paths_consent_fields_and_is_recorded_as_upgraded():
    from memberflow.ledger import mailchimp_time
    from memberflow.onboarding.consent_ledger import ConsentRules

    world = World()
    world.deps.consent_rules = ConsentRules(marketing_permission_ids=("perm1",))
    world.audience.members["m1@example.org"] = "transactional"
    world.audience.members["m2@example.org"] = "transactional"
    world.audience.members["m3@example.org"] = "unsubscribed"
    people = [member(1), member(2, verified=False), member(3)]
    world.run(people)

    # What a live join's upgrade sends (`join._upsert`): the ledger's times and the marketing permissions.
    permissions = [{"marketing_permission_id": "perm1", "enabled": True}]
    stamp = mailchimp_time(NOW)
    assert world.audience.consent_fields["m1@example.org"] == {
        "timestamp_signup": stamp,
        "timestamp_opt": stamp,
        "marketing_permissions": permissions,
    }
    assert world.audience.consent_fields["m2@example.org"] == {
        "timestamp_signup": stamp,
        "marketing_permissions": permissions,
    }

    def ledger(n: int) -> list[tuple[str, str, str]]:
        entries = world.deps.ledger.entries(world.record(people[n - 1]).member_id)
        return [(e.change.value, e.status, e.platform) for e in entries]

    assert ledger(1) == [("upgraded", "subscribed", "discourse")]
    assert ledger(2) == [("upgraded", "pending", "discourse")]
    # An import is no new request from a member who unsubscribed: never asked again, never resubscribed.
    assert world.status(3) == "unsubscribed" and ledger(3) == [("withdrawn", "unsubscribed", "mailchimp")]
    assert world.audience.calls.count("set_status") == 2


def test_per_member_refusals_are_handled_as_in_onboarding():
    world = World()
    world.audience.compliance_state.add("m1@example.org")
    world.audience.forgotten.add("m2@example.org")
    world.audience.invalid.add("m3@example.org")
    people = [member(1), member(2), member(3), member(4)]
    report = world.run(people)

    assert world.status(1) == "pending"  # direct subscribe refused (compliance state): double opt-in instead
    assert world.audience.calls.count("subscribe_many") == 2  # the batch, then the fallback for that one member
    assert world.status(2) is None and world.status(3) is None
    assert sorted(report.refused) == [
        ("discourse:w:2", "Mailchimp: forgotten address"),
        ("discourse:w:3", "Mailchimp: invalid address"),
    ]
    assert world.record(people[1]).mailchimp_status == "refused: forgotten address"
    assert world.status(4) == "subscribed"
    refused = [r for r in world.trace.records if r.subject == email_subject("m2@example.org")]
    assert [(r.step, r.outcome) for r in refused] == [(Step.MAILCHIMP_UPSERT, Outcome.REFUSED)]


def test_someone_who_asked_to_be_forgotten_is_not_brought_back_by_an_import():
    world = World()
    world.suppressions.add(email_suppression_name("m1@example.org"), NOW - timedelta(days=1), "operator")
    report = world.run([member(1), member(2)])
    assert world.status(1) is None and world.record(member(1)) is None
    assert report.refused == [("discourse:w:1", "asked to be forgotten: not imported")]


def test_one_batch_call_per_500_members_and_one_tag_call_per_500_members_of_a_tag():
    world = World()
    people = [member(n, joined=OLD if n % 2 else OLD - timedelta(days=40)) for n in range(1200)]
    tags = TagBuffer(world.audience, LIST_ID)
    report = world.run(people, tags)
    tags.flush()

    assert report.written == 1200 and report.statuses == {"subscribed": 1200}
    assert world.audience.calls.count("subscribe_many") == 3
    # platform tag: 1200 members -> 3 calls; two cohorts of 600 -> 2 calls each
    assert world.audience.calls.count("tag_many") == 3 + 2 + 2
    assert len(world.audience.tagged("platform:discourse")) == 1200
    assert "status" not in world.audience.calls and "journey" not in world.audience.calls


def test_a_rerun_changes_nothing_and_calls_mailchimp_for_nobody():
    world = World()
    people = [member(n, consent=n % 3 != 0, joined=RECENT if n < 5 else OLD) for n in range(30)]
    world.run(people)
    before = (dict(world.audience.members), {k: list(v) for k, v in world.audience.tags.items()})
    journeys, calls = list(world.audience.journeys), len(world.audience.calls)

    again = world.run(people)
    assert again.unchanged == 30 and again.written == 0
    assert len(world.audience.calls) == calls  # nothing sent
    assert (dict(world.audience.members), world.audience.tags) == before
    assert world.audience.journeys == journeys


def test_welcome_journey_only_inside_the_window_by_api_trigger():
    world = World(window=14)
    people = [
        member(1, joined=RECENT),
        member(2, joined=OLD),
        member(3, joined=RECENT, verified=False),
        member(4, joined=None),
    ]
    report = world.run(people)

    assert world.audience.journeys == ["m1@example.org"]
    assert report.journeys == 1
    assert (DRIP, world.record(people[0]).member_id) in world.due_work.items
    assert (DRIP, world.record(people[1]).member_id) not in world.due_work.items
    # a pending member inside the window waits for their confirmation (then the drip run welcomes them)
    assert (OPT_IN, world.record(people[2]).member_id) in world.due_work.items
    assert world.record(people[3]).joined_at is None  # no join date known: none recorded, no journey


def test_a_member_gone_from_the_audience_before_the_journey_is_refused_and_the_chunk_goes_on():
    world = World(window=14)

    def trigger_journey(journey_id: str, step_id: str, email: str) -> None:
        if email.lower() == "m1@example.org":  # an admin archived them since the batch subscribe
            world.audience.members.pop("m1@example.org", None)
            raise NotFound("Mailchimp 404 Resource Not Found", 404)
        world.audience.journeys.append(email.lower())

    world.audience.trigger_journey = trigger_journey  # type: ignore[method-assign]
    people = [member(1, joined=RECENT), member(2, joined=RECENT)]
    report = world.run(people)

    assert world.audience.journeys == ["m2@example.org"] and report.journeys == 1
    assert (Step.JOURNEY_STARTED, Outcome.REFUSED) in world.trace.steps(email_subject("m1@example.org"))
    assert world.record(people[0]).journey_started_at is None  # the claim was released
    assert world.record(people[1]).journey_started_at == NOW


def test_welcome_journey_by_tag_added_costs_one_bulk_call_and_starts_once():
    world = World(window=14, journey_tag="welcome")
    people = [member(n, joined=RECENT) for n in range(10)] + [member(99, joined=OLD)]
    report = world.run(people)

    assert world.audience.tagged("welcome") == {f"m{n}@example.org" for n in range(10)}
    assert report.journeys == 10 and world.audience.journeys == []
    assert all(world.record(p).journey_started_at == NOW for p in people[:10])
    assert world.audience.calls.count("tag_many") == 4  # platform, two cohorts, welcome


def test_no_window_no_journey():
    world = World(window=0)
    world.run([member(1, joined=NOW - timedelta(hours=1))])
    assert world.audience.journeys == [] and world.status(1) == "subscribed"


def test_a_slack_member_without_a_join_date_gets_no_cohort_tag():
    world = World()
    slack = member(7, consent=False, joined=None, platform="slack")
    world.run([slack])
    assert world.audience.tags["m7@example.org"] == ["platform:slack"]
    assert world.status(7) == "transactional"


def test_dry_run_says_what_would_happen_and_changes_nothing():
    world = World()
    people = [member(1, joined=RECENT), member(2, consent=False), member(3, verified=False)]
    report = dry_run(people, world.deps)
    assert report.statuses == {"subscribed": 1, "transactional": 1, "pending": 1}
    assert report.journeys == 1
    assert world.audience.calls == [] and world.members.profiles == {}


def test_a_chunk_holds_at_most_500_members():
    with pytest.raises(ValueError):
        import_chunk([member(n) for n in range(501)], World().deps, correlation_id="x")


def test_the_command_waits_out_mailchimp_throttling_instead_of_giving_up():
    import io

    from memberflow.errors import RateLimited
    from memberflow_cli.imports import SERVICE_ATTEMPTS, _patiently
    from memberflow_local.story import Story

    world = World()
    world.audience.failures += [RateLimited("Mailchimp 429", 3), RateLimited("Mailchimp 429", 0)]
    waits: list[float] = []
    out = io.StringIO()
    report = _patiently(Story(out), lambda: world.run([member(1), member(2)]), sleep=waits.append)
    assert report.written == 2 and world.status(1) == "subscribed"  # the chunk went through in the end
    assert waits == [3, 2.0]  # Retry-After when given, else a growing pause
    assert "throttling" in out.getvalue()

    world = World()
    world.audience.failures += [RateLimited("Mailchimp 429", 1)] * SERVICE_ATTEMPTS
    assert _patiently(Story(io.StringIO()), lambda: world.run([member(3)]), sleep=lambda _: None) is None


def test_a_chunk_too_large_for_one_queue_message_is_split_and_nothing_is_left_out():
    from memberflow_cli.imports import MAX_MESSAGE_BYTES, _QueueImport

    class Router:
        def __init__(self) -> None:
            self.sent = []

        def send(self, queued) -> None:
            self.sent.append(queued)

    long_named = [
        member(n).model_copy(update={"name": "N" * 500, "email": f"{'x' * 60}.{n}@{'d' * 60}.example.org"})
        for n in range(500)
    ]
    router = Router()
    sender = _QueueImport(None, "import-1", router=router)
    sender.send(0, long_named)
    sender.send(1, [member(1000)])

    assert sender.sent == len(router.sent) > 2
    assert all(len(q.model_dump_json().encode()) <= MAX_MESSAGE_BYTES for q in router.sent)
    sent = [m for q in router.sent for m in q.event.members]
    assert sent == long_named + [member(1000)]  # every member once, in order
    keys = [q.idempotency_key for q in router.sent]
    assert len(set(keys)) == len(keys) and keys[-1] == "import:import-1:1"


def test_a_chunk_reads_its_members_and_their_erasures_in_one_batch_each_not_per_member():
    from dataclasses import replace

    from support.fakes import CountingReads

    world = World()
    world.suppressions.add(identity_suppression_name(member(3).identity.key), NOW - timedelta(days=1), "operator")
    world.run([member(1)])  # known from an earlier import: unchanged
    reads: list[str] = []
    counted = {"members": CountingReads(world.members, reads), "suppressions": CountingReads(world.suppressions, reads)}
    world.deps = replace(world.deps, **counted)
    people = [member(n) for n in range(1, 201)]
    report = world.run(people)
    assert sorted(reads) == ["find_many", "get_many"]
    assert report.unchanged == 1 and report.refused == [("discourse:w:3", "asked to be forgotten: not imported")]
    assert report.written == 198 and world.status(3) is None and world.status(200) == "subscribed"
    reads.clear()
    assert dry_run(people, world.deps).unchanged == 199 and sorted(reads) == ["find_many", "get_many"]


class _BatchTrace:
    """A trace that takes records in batches (as DynamoDB's BatchWriteItem does), counting single and batch writes."""

    def __init__(self) -> None:
        self.records: list = []
        self.single_writes = 0
        self.batches: list[int] = []

    def record(self, record) -> None:
        self.single_writes += 1
        self.records.append(record)

    def record_many(self, records) -> None:
        self.batches.append(len(records))
        self.records.extend(records)


def test_a_chunk_writes_its_trace_steps_together_at_the_end_even_when_it_fails():
    from dataclasses import replace

    world = World()
    trace = _BatchTrace()
    world.deps = replace(world.deps, trace=trace)
    world.run([member(n, joined=RECENT) for n in range(1, 41)])
    assert trace.single_writes == 0 and len(trace.batches) == 1
    assert trace.batches[0] == len(trace.records) >= 40  # every member's steps, welcome journeys included

    failing = World()
    failing.deps = replace(failing.deps, trace=(trace := _BatchTrace()))

    def outage(*args, **kwargs):
        raise unavailable()

    failing.audience.subscribe_many = outage  # type: ignore[method-assign]
    without_email = member(9).model_copy(update={"email": None})
    with pytest.raises(Transient):
        failing.run([without_email, member(1)])
    # The step traced before Mailchimp failed is written all the same, in one batch.
    assert trace.single_writes == 0 and trace.batches == [1]
    assert [r.step for r in trace.records] == [Step.SKIPPED]
