"""Escalation writes the ticket records the health report's tickets figure reads: a ticket opened (one by one or in
bulk), its first reply and its solving, by category, each once however often Zendesk repeats a status change."""

from __future__ import annotations

from datetime import timedelta

from memberflow import activity
from memberflow.escalation.service import escalate, escalate_in_bulk, status_changed
from memberflow.health import figures
from memberflow.health.queries import Period
from memberflow_local.health import DuckDBEngine
from support.fakes import MemoryActivityLog
from support.health_seed import write_log
from unit.test_escalation import NOW, deps, escalation, status


def test_tickets_opened_answered_and_solved_reach_the_activity_log_and_the_tickets_figure(tmp_path):
    log = MemoryActivityLog()
    d = deps(activity=log)
    escalate(d, escalation("k1", thread="slack:T1:C1:1"))
    assert escalate_in_bulk(d, [escalation("k2", thread="slack:T1:C1:2", email="bob@example.org")]) == 1
    status_changed(d, status(1, "open", "s0", public_reply=True, at=NOW + timedelta(minutes=20)))
    status_changed(d, status(1, "solved", "s1", at=NOW + timedelta(hours=1)))
    status_changed(d, status(1, "solved", "s2", at=NOW + timedelta(hours=2)))  # Zendesk says it twice

    records = log.buffered
    # Noted with every status change, each kind of each ticket is one record: its id.
    assert {(r.id, r.kind, r.ticket) for r in records} == {
        (activity.record_id("ticket:1", activity.TICKET_OPENED), activity.TICKET_OPENED, "1"),
        (activity.record_id("ticket:2", activity.TICKET_OPENED), activity.TICKET_OPENED, "2"),
        (activity.record_id("ticket:1", activity.TICKET_FIRST_REPLY), activity.TICKET_FIRST_REPLY, "1"),
        (activity.record_id("ticket:1", activity.TICKET_SOLVED), activity.TICKET_SOLVED, "1"),
    }
    assert len({(r.id, r.ts) for r in records}) == 4  # the same moment each time: what the link measured
    assert {r.category for r in records} == {"billing"} and "ada@example.org" not in repr(records)

    engine = DuckDBEngine(write_log(tmp_path, records))
    try:
        week = figures.compute(engine, Period.parse(f"{NOW:%G-W%V}"))
    finally:
        engine.close()
    assert week["tickets"] == [
        {
            "category": "billing",
            "opened": 2,
            "solved": 1,
            "median_first_response_seconds": 1200,
            "median_resolution_seconds": 3600,
        }
    ]
