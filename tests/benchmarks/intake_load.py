"""Load generator for `make bench`'s intake throughput: signed Slack team_join deliveries, each with its own event_id
and user, POSTed by concurrent client threads (one requests.Session each) to the local HTTP API.

Runs in its own interpreter, so the clients do not share a GIL with the local stack that serves them. Bounded in
requests and in time; prints one JSON line with the counts, the elapsed time and latency percentiles.

    python intake_load.py <webhooks_url> <slack_signing_secret> <threads> <max_requests> <max_seconds> <warmup>
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import itertools
import json
import statistics
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
SLACK_JOIN = json.loads((ROOT / "events" / "webhooks" / "slack_team_join.json").read_text())
TIMEOUT_SECONDS = 10


def signed_delivery(secret: str, n: int) -> tuple[bytes, dict[str, str]]:
    body = copy.deepcopy(SLACK_JOIN["body"])
    body["event_id"] = f"EvLOAD{uuid.uuid4().hex[:16]}"
    user = body["event"]["user"]
    user["id"] = f"ULOAD{n:07d}"
    user["profile"]["email"] = f"load.{n}.{uuid.uuid4().hex[:6]}@example.org"
    raw = json.dumps(body).encode()
    timestamp = str(int(time.time()))
    signature = "v0=" + hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + raw, hashlib.sha256).hexdigest()
    headers = {
        **SLACK_JOIN["headers"],
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": signature,
    }
    return raw, headers


def run(url: str, secret: str, threads: int, max_requests: int, max_seconds: float, numbers) -> dict:
    lock = threading.Lock()
    statuses: Counter[str] = Counter()
    latencies: list[float] = []
    accepted = 0
    sent = 0
    last_answer = 0.0
    started = time.perf_counter()
    deadline = started + max_seconds

    def client() -> None:
        nonlocal accepted, sent, last_answer
        session = requests.Session()
        while True:
            with lock:
                if sent >= max_requests or time.perf_counter() >= deadline:
                    return
                sent += 1
                n = next(numbers)
            raw, headers = signed_delivery(secret, n)
            t0 = time.perf_counter()
            try:
                answer = session.post(url, data=raw, headers=headers, timeout=TIMEOUT_SECONDS)
                status = str(answer.status_code)
                queued = answer.status_code == 200 and answer.json().get("status") == "queued"
            except (requests.RequestException, ValueError) as error:
                status, queued = type(error).__name__, False
            t1 = time.perf_counter()
            with lock:
                statuses[status] += 1
                latencies.append((t1 - t0) * 1000)
                accepted += queued
                last_answer = t1

    workers = [threading.Thread(target=client, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(max_seconds + TIMEOUT_SECONDS + 5)
    elapsed = max(last_answer - started, 1e-9)
    return {
        "sent": sent,
        "accepted": accepted,
        "elapsed_s": elapsed,
        "events_per_s": accepted / elapsed,
        "statuses": dict(statuses),
        "p50_ms": statistics.median(latencies) if latencies else None,
        "p99_ms": statistics.quantiles(latencies, n=100)[98] if len(latencies) > 1 else None,
    }


def main() -> int:
    url, secret = sys.argv[1], sys.argv[2]
    threads, max_requests, warmup = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[6])
    max_seconds = float(sys.argv[5])
    numbers = itertools.count(1)
    if warmup:
        # Not counted: opens the connections and lets the function's container pool fill up.
        run(url, secret, threads, warmup, max_seconds, numbers)
    print(json.dumps(run(url, secret, threads, max_requests, max_seconds, numbers)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
