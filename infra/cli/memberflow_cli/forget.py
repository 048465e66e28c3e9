"""`memberflow forget EMAIL`: erase a member at their request, through the same pipeline a platform's deletion takes.

The command queues a `member_erased` event where intake would (the destination in intake's EVENT_DESTINATIONS), so
the onboarding consumer erases with its retries, its dead-letter queue and its record in the trace; then it waits
for the erasure to show in the trace and says what was removed.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from datetime import UTC, datetime
from functools import cache
from typing import TextIO

from memberflow.adapters.sqs import SqsEventRouter
from memberflow.adapters.suppressions import DynamoSuppressionList
from memberflow.adapters.trace_store import DynamoTraceStore
from memberflow.events import CATALOG, MemberErased
from memberflow.models import check_email
from memberflow.pipeline.envelope import QueuedEvent
from memberflow.privacy import email_suppression_name, mask_email
from memberflow.trace import Step, erased_subject
from memberflow_cli.target import Target, secret

SOURCE = "operator"
"""Who passed the request on, as the trace and the suppression list name it."""


def forget(email: str, target: Target, *, wait_seconds: float, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        address = check_email(email)
    except ValueError as error:
        print(f"not an address: {error}", file=sys.stderr)
        return 2
    assert address
    queued = QueuedEvent(
        idempotency_key=f"{SOURCE}:forget:{uuid.uuid4().hex}",  # a new request each time, even for the same person
        correlation_id=f"forget-{uuid.uuid4().hex[:16]}",
        source=SOURCE,
        event=MemberErased(email=address, requested_at=datetime.now(UTC)),
    )
    destinations = json.loads(target.function_environment("WebhookIntakeFunction")["EVENT_DESTINATIONS"])
    SqsEventRouter(destinations, CATALOG).send(queued)
    print(f"erasure of {mask_email(address)} queued on {target.label} ({queued.correlation_id})", file=out)
    if wait_seconds <= 0:
        return 0

    suppressions = suppression_list(target)
    traces = DynamoTraceStore(target.physical("TraceTable"))
    deadline = time.monotonic() + wait_seconds
    while True:
        erasure = suppressions.find(email_suppression_name(address))
        if erasure is not None:
            done = [
                record
                for record in traces.query(erased_subject(erasure.key))
                if record.step is Step.ERASED and record.correlation_id == queued.correlation_id
            ]
            if done:
                print(f"erased on {done[0].at:%Y-%m-%d %H:%M:%S} UTC: {done[0].detail}", file=out)
                return 0
        if time.monotonic() >= deadline:
            print(
                f"not done after {wait_seconds:.0f} s (Mailchimp slow or failing?): the erasure stays queued and is "
                f"retried; `memberflow trace EMAIL` shows when it is done",
                file=out,
            )
            return 1
        time.sleep(1)


def suppression_list(target: Target) -> DynamoSuppressionList:
    """The stack's suppression list, with its key read once."""

    @cache
    def key() -> bytes:
        return str(secret(target, "SuppressionKeySecret")["suppression_key"]).encode()

    return DynamoSuppressionList(target.physical("MembersTable"), key)
