"""The stores' batch calls on moto (tables from template.yaml): what a chunk of members costs in a few calls reads
and writes the same items one call each would."""

from __future__ import annotations

from datetime import UTC, datetime

from memberflow.adapters.member_profiles import DynamoMemberRepository


def test_members_and_suppressions_are_read_in_batches_consistently(local_stack):
    from memberflow.adapters.suppressions import DynamoSuppressionList
    from memberflow.members import MemberJoin

    table_name = local_stack.table_name("MembersTable")
    members = DynamoMemberRepository(table_name)
    at = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    ids = [f"m-batch-{n}" for n in range(130)]  # more than one BatchGetItem call takes
    for member_id in ids[::2]:
        members.record_join(MemberJoin(member_id, f"generic:w:{member_id}", "generic", at, "c", email=None))
    found = members.get_many([*ids, ids[0]])
    assert sorted(found) == sorted(ids[::2]) and found[ids[0]].member_id == ids[0]
    suppressions = DynamoSuppressionList(table_name, lambda: b"batch-test-key")
    erased = suppressions.add("email:gone@example.org", at, "operator")
    assert suppressions.find_many(["email:gone@example.org", "email:here@example.org"]) == {
        "email:gone@example.org": erased
    }


def test_trace_records_written_in_batches_read_back_as_written(local_stack):
    from memberflow.adapters.trace_store import DynamoTraceStore
    from memberflow.trace import Outcome, Step, TraceRecord

    store = DynamoTraceStore(local_stack.table_name("TraceTable"))
    at = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    records = [
        TraceRecord(f"email#batch-{n % 3}", Step.MAILCHIMP_UPSERT, Outcome.OK, f"step {n}", "c-1", "import", at)
        for n in range(60)  # more than one BatchWriteItem call takes
    ]
    store.record_many(records)
    for subject in ("email#batch-0", "email#batch-1", "email#batch-2"):
        read = store.query(subject)
        assert sorted(r.detail for r in read) == sorted(r.detail for r in records if r.subject == subject)
        assert {(r.step, r.outcome, r.source, r.at) for r in read} == {
            (Step.MAILCHIMP_UPSERT, Outcome.OK, "import", at)
        }
