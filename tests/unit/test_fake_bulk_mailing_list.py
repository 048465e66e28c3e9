"""The bulk fake that domain tests rely on keeps Mailchimp's bulk rules (checked against the sandbox by
tests/integration/test_sandbox_mailchimp_bulk.py)."""

from __future__ import annotations

from memberflow.bulk import BulkMember, RefusalKind
from support.fakes import FakeBulkMailingList


def test_bulk_subscribe_leaves_existing_members_alone_and_refuses_one_by_one() -> None:
    audience = FakeBulkMailingList()
    audience.members["gone@example.org"] = "unsubscribed"
    audience.compliance_state.add("bounced@example.org")
    audience.forgotten.add("erased@example.org")
    members = [
        BulkMember(email, "subscribed")
        for email in ("new@example.org", "gone@example.org", "bounced@example.org", "erased@example.org")
    ]
    outcome = audience.subscribe_many("list", members)
    assert outcome.created == ["new@example.org"]
    assert outcome.existing == ["gone@example.org"]
    assert audience.members["gone@example.org"] == "unsubscribed"
    assert outcome.refused["bounced@example.org"].kind is RefusalKind.COMPLIANCE_STATE
    assert outcome.refused["erased@example.org"].kind is RefusalKind.FORGOTTEN_ADDRESS
    assert audience.calls == ["subscribe_many"]


def test_tags_go_500_per_call_and_only_to_members() -> None:
    audience = FakeBulkMailingList()
    emails = [f"m{i}@example.org" for i in range(1001)]
    audience.subscribe_many("list", [BulkMember(e, "subscribed") for e in emails[:1000]])
    outcome = audience.tag_many("list", "winback", emails)
    assert audience.calls.count("tag_many") == 3
    assert len(outcome.updated) == 1000 and outcome.existing == ["m1000@example.org"]
    assert audience.tag_many("list", "winback", emails[:10]).updated == []
    assert audience.untag_many("list", "winback", emails[:10]).updated == emails[:10]
    assert audience.tagged("winback") == set(emails[10:1000])
