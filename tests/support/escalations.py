"""A queued escalation of a Slack thread, as intake queues one, for tests that need many distinct ones."""

from __future__ import annotations

from datetime import UTC, datetime

from memberflow.events import EscalationRequested
from memberflow.pipeline.envelope import QueuedEvent


def slack_escalation(n: int, *, key: str, correlation_id: str, email: str, thread_ts: str) -> QueuedEvent:
    """Member `n`'s billing question in the Slack thread `thread_ts`, escalated by keyword."""
    event = EscalationRequested(
        thread=f"slack:T1:C1:{thread_ts}",
        platform="slack",
        via="keyword",
        rule="billing",
        author={"platform": "slack", "workspace": "T1", "user_id": f"U{n}"},
        author_name=f"Member {n}",
        email=email,
        text="I was charged twice",
        permalink=f"https://example.slack.com/archives/C1/p{thread_ts.replace('.', '')}",
        requested_at=datetime.now(UTC),
        reply_to={"channel": "C1", "thread_ts": thread_ts},
    )
    return QueuedEvent(idempotency_key=key, correlation_id=correlation_id, source="slack", event=event)
