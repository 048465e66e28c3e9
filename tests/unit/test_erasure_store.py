"""Erasure against the members table (in-process moto, the real adapter): a member's profile is the last of their
items to go, so an erasure interrupted part of the way (DynamoDB throttled, the function's time running out) and
retried by the worker still finds the member and leaves nothing behind."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from memberflow.adapters import member_profiles
from memberflow.adapters.aws import DynamoTable
from memberflow.adapters.member_profiles import DynamoMemberRepository
from memberflow.errors import RateLimited
from memberflow.events import MemberErased
from memberflow.members import MemberJoin
from memberflow.models import MemberIdentity, Platform
from memberflow.onboarding.erasure import erase_member
from memberflow.onboarding.join import OnboardingDeps
from memberflow.onboarding.rules import OnboardingRules, WelcomeJourney
from memberflow.pipeline.envelope import QueuedEvent
from memberflow.privacy import email_key
from support.fakes import FakeMailingList, MemoryDueWork, MemoryLedger, MemoryMembers, MemorySuppressions, MemoryTrace
from support.moto_tables import mocked_table

TABLE = "members"
ADA = "ada@example.org"
IDENTITY = "discourse:f:7"
MEMBER = email_key(ADA)


class RecordingTable:
    """The table, recording the sort key of every delete; the `fail_on`-th delete raises (throttled), once."""

    def __init__(self, inner: DynamoTable, fail_on: int = 0) -> None:
        self._inner = inner
        self._fail_on = fail_on
        self.deleted: list[str] = []

    def __getattr__(self, name: str):
        return getattr(self._inner, name)

    def delete_item(self, **request):
        if len(self.deleted) + 1 == self._fail_on:
            self._fail_on = 0
            raise RateLimited("DynamoDB throttled: ProvisionedThroughputExceededException")
        answer = self._inner.delete_item(**request)
        self.deleted.append(request["Key"]["sk"])
        return answer


@pytest.fixture
def dynamodb(monkeypatch):
    with mocked_table(TABLE, ("pk", "S"), ("sk", "S")) as client:
        recording = RecordingTable(DynamoTable(TABLE, client))
        monkeypatch.setattr(member_profiles, "table", lambda name: recording)
        yield client, recording


def stored(client) -> list[str]:
    return sorted(f"{item['pk']['S']} {item['sk']['S']}" for item in client.scan(TableName=TABLE)["Items"])


def member_with_items(client) -> DynamoMemberRepository:
    """A member with a profile, a link, and items of their own around the profile in sort order (a consent ledger
    entry before it, a win-back record after it), as the audit found them."""
    repository = DynamoMemberRepository(TABLE)
    repository.record_join(
        MemberJoin(
            member_id=MEMBER,
            identity_key=IDENTITY,
            platform="discourse",
            joined_at=datetime(2026, 1, 1, tzinfo=UTC),
            correlation_id="c",
            email=ADA,
            name="Ada Lovelace",
            marketing_consent=True,
            address_verified=True,
        )
    )
    repository.save_link(IDENTITY, MEMBER)
    for sk in ("CONSENT#abc", "WINBACK#winback#2026-03-01"):
        client.put_item(TableName=TABLE, Item={"pk": {"S": f"MEMBER#{MEMBER}"}, "sk": {"S": sk}})
    return repository


def test_the_profile_is_the_last_of_a_members_items_to_be_deleted(dynamodb):
    client, recording = dynamodb
    repository = member_with_items(client)

    assert repository.erase(MEMBER) == 3

    assert recording.deleted[-1] == "PROFILE" and sorted(recording.deleted) == [
        "CONSENT#abc",
        "PROFILE",
        "WINBACK#winback#2026-03-01",
    ]
    assert stored(client) == [f"IDENTITY#{IDENTITY} LINK"]


def deps(repository: DynamoMemberRepository) -> OnboardingDeps:
    fakes = MemoryMembers()
    return OnboardingDeps(
        mailing_list=FakeMailingList(),
        members=repository,
        due_work=MemoryDueWork(fakes),
        trace=MemoryTrace(),
        rules=OnboardingRules("list1", WelcomeJourney("journey", "step")),
        suppressions=MemorySuppressions(),
        ledger=MemoryLedger(),
    )


def forget(email: str | None, identity: bool) -> QueuedEvent:
    named = MemberIdentity(platform=Platform.DISCOURSE, workspace="f", user_id="7") if identity else None
    return QueuedEvent(
        idempotency_key="discourse:f:user_destroyed:7",
        correlation_id="c",
        source="discourse",
        event=MemberErased(email=email, identity=named),
    )


@pytest.mark.parametrize("named_by", ["address", "identity"])
@pytest.mark.parametrize("fail_on", [1, 2, 3, 4])
def test_an_erasure_interrupted_at_any_delete_leaves_nothing_once_retried(dynamodb, named_by, fail_on):
    """Four deletes in all: the link and the member's three items, in whichever order the erasure takes them."""
    client, recording = dynamodb
    repository = member_with_items(client)
    request = forget(ADA if named_by == "address" else None, identity=named_by == "identity")
    recording._fail_on = fail_on

    with pytest.raises(RateLimited):
        erase_member(request, deps(repository))
    result = erase_member(request, deps(repository))  # the worker's retry of the same event

    assert stored(client) == []
    assert result["result"] == "erased"


def test_a_failure_before_the_profile_went_keeps_the_member_findable(dynamodb):
    client, recording = dynamodb
    repository = member_with_items(client)
    recording._fail_on = 3  # the member's last delete: whatever comes after the profile in sort order is gone

    with pytest.raises(RateLimited):
        repository.erase(MEMBER)

    assert repository.get(MEMBER) is not None  # the retry finds the member, and what is left under them
    assert repository.erase(MEMBER) == 1 and stored(client) == [f"IDENTITY#{IDENTITY} LINK"]
