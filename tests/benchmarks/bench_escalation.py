"""`make bench`: Zendesk API calls per escalation during a burst. 500 escalations of 500 distinct threads arrive
through intake (`POST /escalations`, as an internal tool reporting an incident's cases would send them); the
escalation function is invoked with batches of 100 queued messages, as Lambda's event source hands them with
`BatchSize: 100` and a batching window (the local pollers receive 10 at a time, SQS's limit per call).

`zendesk_calls_ratio` = the requests the sandbox Zendesk answered ÷ the fewest the bulk API allows for the burst:
one `create_many` (at most 100 tickets) and one job-status read per 100 tickets. Target: at most 1.1. Also checked:
every thread has exactly one ticket."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from results import record  # noqa: E402

from memberflow.escalation.service import external_id  # noqa: E402
from memberflow_local.escalation_sandboxes import ESCALATIONS_API_KEY  # noqa: E402
from memberflow_local.event_sources import lambda_sqs_record  # noqa: E402
from memberflow_local.settings import LocalSettings  # noqa: E402
from memberflow_local.stack import LocalStack  # noqa: E402

BURST = 500
BATCH = 100
MAX_PER_JOB = 100
TARGET = 1.1


def send_burst(stack: LocalStack, run: str) -> None:
    url = f"{stack.endpoints()['api_url']}/escalations"
    with requests.Session() as session:
        for n in range(BURST):
            body = {
                "request_id": f"{run}-{n}",
                "category": "billing",
                "thread_id": f"{run}-case-{n}",
                "text": f"Charged twice for the annual pass (case {n})",
                "member": {"id": f"member-{n}", "email": f"burst.{n}@example.org", "name": f"Member {n}"},
                "requested_at": "2026-11-30T10:00:00Z",
            }
            answer = session.post(url, json=body, headers={"X-Api-Key": ESCALATIONS_API_KEY}, timeout=10)
            answer.raise_for_status()


def work_the_queue(stack: LocalStack) -> int:
    """Invoke the escalation function with batches of up to 100 until the queue is empty; how many batches."""
    sqs = stack.client("sqs")
    url, arn = stack.queue_url("EscalationsQueue"), stack.queue_arn("EscalationsQueue")
    batches = 0
    idle = 0
    while idle < 3:
        messages: list[dict] = []
        while len(messages) < BATCH:
            got = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"]
            ).get("Messages", [])
            if not got:
                break
            messages += got
        if not messages:
            idle += 1
            time.sleep(1)
            continue
        idle = 0
        batches += 1
        answer = stack.invoke("EscalationFunction", {"Records": [lambda_sqs_record(m, arn) for m in messages]})
        failed = {item["itemIdentifier"] for item in answer.get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done[start : start + 10])
                ],
            )
    return batches


def main() -> int:
    settings = LocalSettings.from_env(api_port=0, aws_port=0, mailchimp_port=0, log_level="ERROR")
    run = f"bench{int(time.time())}"
    with LocalStack(settings, pollers=False, services=["zendesk", "slack_api"]) as stack:
        sandbox = stack.services["zendesk"].sandbox
        send_burst(stack, run)
        before = sandbox.calls()
        began = time.perf_counter()
        batches = work_the_queue(stack)
        seconds = time.perf_counter() - began
        calls = sandbox.calls() - before
        client = sandbox.zenpy()
        per_thread = [
            len(list(client.tickets(external_id=external_id(f"api:internal:{run}-case-{n}"))))
            for n in range(0, BURST, 25)
        ]
        total = len(sandbox.state.snapshot()["tickets"])
    minimum = 2 * math.ceil(BURST / MAX_PER_JOB)
    ratio = calls / minimum
    figures = {
        "zendesk_calls_ratio": round(ratio, 3),
        "escalation_burst": {
            "escalations": BURST,
            "tickets_created": total,
            "zendesk_calls": calls,
            "minimum_bulk_calls": minimum,
            "batches": batches,
            "seconds": round(seconds, 2),
            "one_ticket_per_sampled_thread": all(n == 1 for n in per_thread),
        },
    }
    record(figures)
    print(json.dumps(figures, indent=2))
    ok = ratio <= TARGET and total == BURST and all(n == 1 for n in per_thread)
    print(f"zendesk_calls_ratio {ratio:.3f} (target <= {TARGET}): {'ok' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
