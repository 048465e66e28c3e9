"""`make bench`: cold start of each function relative to a bare `import boto3`, and the intake handler's in-process
latency. Prints the figures and writes them to bench-results.json (other benchmarks add their keys to it)."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench-results.json"
FUNCTIONS = sorted(p.parent for p in (ROOT / "functions").glob("*/app.py"))
RUNS = 7
INTAKE_REQUESTS = 400

# What a cold container sees: configuration only, nothing reachable is needed to import and initialise.
FUNCTION_ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "POWERTOOLS_SERVICE_NAME": "memberflow",
    "POWERTOOLS_METRICS_NAMESPACE": "memberflow",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "MEMBER_EVENTS_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/member-events",
    "DEAD_LETTER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/member-events-dlq",
    "WEBHOOK_SECRETS_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:webhooks",
    "MAILCHIMP_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:mailchimp",
    "MAILCHIMP_LIST_ID": "list123",
    "MAILCHIMP_WELCOME_JOURNEY_ID": "101",
    "MAILCHIMP_WELCOME_JOURNEY_STEP_ID": "201",
    "MEMBERS_TABLE_NAME": "members",
    "IDEMPOTENCY_TABLE_NAME": "idempotency",
    "TRACE_TABLE_NAME": "trace",
}

COLD_START = """
import importlib.util, sys, time
t0 = time.perf_counter()
spec = importlib.util.spec_from_file_location("app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(time.perf_counter() - t0)
"""
BARE_BOTO3 = "import time; t0 = time.perf_counter(); import boto3; print(time.perf_counter() - t0)"


def _timed(code: str, *args: str) -> float:
    env = {**os.environ, **FUNCTION_ENV}
    answer = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, check=True)
    return float(answer.stdout.strip().splitlines()[-1])


def cold_starts() -> tuple[float, dict[str, float]]:
    boto3_seconds = statistics.median(_timed(BARE_BOTO3) for _ in range(RUNS))
    ratios = {}
    for function in FUNCTIONS:
        seconds = statistics.median(_timed(COLD_START, str(function / "app.py")) for _ in range(RUNS))
        ratios[function.name] = seconds / boto3_seconds
        print(f"cold start {function.name:<18} {seconds * 1000:7.1f} ms  = {ratios[function.name]:.2f} x import boto3")
    print(f"bare import boto3              {boto3_seconds * 1000:7.1f} ms")
    return boto3_seconds, ratios


def intake_latency() -> tuple[float, float]:
    """Signed Slack team_join deliveries through the intake handler, invoked in-process on the local stack (moto
    in server mode behind SQS, Secrets Manager and DynamoDB, so each SDK call is a real localhost round trip)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from memberflow import signatures
    from memberflow_local.settings import LocalSettings
    from memberflow_local.stack import LocalStack
    from support.apigw import http_api_event

    # Logs and metrics stay on (they are part of a request's cost) but are not printed here.
    settings = LocalSettings.from_env(api_port=0, aws_port=0, mailchimp_port=0, log_level="WARNING")
    sample = json.loads((ROOT / "events" / "webhooks" / "slack_team_join.json").read_text())
    latencies = []
    with LocalStack(settings, pollers=False, mailchimp=False) as stack:
        intake = stack.function("WebhookIntakeFunction")
        for n in range(INTAKE_REQUESTS):
            raw = json.dumps(dict(sample["body"], event_id=f"EvBench{n}")).encode()
            signed = signatures.sign_slack(settings.slack_signing_secret, raw, int(time.time()))
            event = http_api_event("slack", raw, {**sample["headers"], **signed})
            started = time.perf_counter()
            answer = intake.invoke(event)
            latencies.append((time.perf_counter() - started) * 1000)
            assert answer["statusCode"] == 200, answer
    latencies = latencies[20:]  # the first calls create clients lazily: that is cold start, measured above
    p50 = statistics.median(latencies)
    p99 = statistics.quantiles(latencies, n=100)[98]
    print(f"intake handler in-process latency over {len(latencies)} requests: p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    return p50, p99


def main() -> int:
    _, ratios = cold_starts()
    p50, p99 = intake_latency()
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results.update(
        {
            "cold_start_ratio_max": round(max(ratios.values()), 3),
            "cold_start_ratios": {name: round(ratio, 3) for name, ratio in ratios.items()},
            "intake_p50_ms": round(p50, 3),
            "intake_p99_ms": round(p99, 3),
        }
    )
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS.name}: {json.dumps(results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
