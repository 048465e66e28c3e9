"""`make bench`: each function's cold start relative to a bare `import boto3`, and the intake handler's in-process
latency. Prints the figures and writes them to bench-results.json (other benchmarks add their keys to it).

Everything runs against one local stack (moto in server mode and the sandbox Mailchimp), so SDK and Mailchimp calls
are real localhost round trips. A cold start is measured in a fresh interpreter, as a new container: the init phase
(importing the handler module) and, separately, the first invocation, which pays for what the functions create
lazily (boto3 clients, the secrets, the Mailchimp session).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from memberflow import signatures  # noqa: E402
from memberflow_local.settings import LocalSettings  # noqa: E402
from memberflow_local.stack import LocalStack  # noqa: E402
from support.apigw import http_api_event  # noqa: E402

RESULTS = ROOT / "bench-results.json"
RUNS = 7
INTAKE_REQUESTS = 400
SLACK_JOIN = json.loads((ROOT / "events" / "webhooks" / "slack_team_join.json").read_text())

COLD_START = """
import importlib.util, json, sys, time
started = time.perf_counter()
spec = importlib.util.spec_from_file_location("app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
initialised = time.perf_counter()
sys.path.insert(0, sys.argv[3])
from support.apigw import LambdaContext
event = json.load(open(sys.argv[2]))
module.handler(event, LambdaContext(timeout_seconds=60))
print(json.dumps({"init": initialised - started, "first_invocation": time.perf_counter() - initialised}))
"""
BARE_BOTO3 = "import time; t0 = time.perf_counter(); import boto3; print(time.perf_counter() - t0)"


def _signed_slack_join(settings: LocalSettings) -> dict:
    raw = json.dumps(dict(SLACK_JOIN["body"], event_id=f"Ev{uuid.uuid4().hex[:12]}")).encode()
    signed = signatures.sign_slack(settings.slack_signing_secret, raw, int(time.time()))
    return http_api_event("slack", raw, {**SLACK_JOIN["headers"], **signed})


def _member_event_batch(stack: LocalStack) -> dict:
    from memberflow_local.event_sources import lambda_sqs_record
    from support.queue import joined

    queued = joined(f"bench.{uuid.uuid4().hex[:8]}@example.org", consent=True)
    message = {"MessageId": str(uuid.uuid4()), "ReceiptHandle": "bench", "Body": queued.model_dump_json()}
    return {"Records": [lambda_sqs_record(message, stack.queue_arn("MemberEventsQueue"))]}


def _scheduled_run() -> dict:
    return {"id": str(uuid.uuid4()), "time": "2026-11-04T09:00:00Z", "detail-type": "Scheduled Event"}


def cold_starts(stack: LocalStack, settings: LocalSettings) -> tuple[float, dict[str, dict[str, float]]]:
    events = {
        "WebhookIntakeFunction": lambda: _signed_slack_join(settings),
        "OnboardingFunction": lambda: _member_event_batch(stack),
        "OnboardingDripFunction": _scheduled_run,
    }
    boto3_seconds = statistics.median(_run(BARE_BOTO3) for _ in range(RUNS))
    figures: dict[str, dict[str, float]] = {}
    for logical_id, make_event in events.items():
        app = str(stack.function(logical_id).spec.module_file)
        runs = []
        for _ in range(RUNS):
            with tempfile.NamedTemporaryFile("w", suffix=".json") as event_file:
                json.dump(make_event(), event_file)
                event_file.flush()
                runs.append(json.loads(_run(COLD_START, app, event_file.name, str(ROOT / "tests"), raw=True)))
        init = statistics.median(r["init"] for r in runs)
        first = statistics.median(r["first_invocation"] for r in runs)
        figures[logical_id] = {
            "init_ms": init * 1000,
            "first_invocation_ms": first * 1000,
            "ratio": init / boto3_seconds,
        }
        print(
            f"cold start {logical_id:<24} init {init * 1000:6.1f} ms = {init / boto3_seconds:.2f} x import boto3;"
            f" first invocation {first * 1000:6.1f} ms"
        )
    print(f"bare import boto3                   {boto3_seconds * 1000:6.1f} ms")
    return boto3_seconds, figures


def _run(code: str, *args: str, raw: bool = False):
    answer = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=False)
    if answer.returncode != 0:
        raise RuntimeError(answer.stderr[-2000:])
    last = answer.stdout.strip().splitlines()[-1]
    return last if raw else float(last)


def intake_latency(stack: LocalStack, settings: LocalSettings) -> tuple[float, float]:
    """Signed Slack team_join deliveries through the warm intake handler, invoked in-process."""
    intake = stack.function("WebhookIntakeFunction")
    latencies = []
    for _ in range(INTAKE_REQUESTS):
        event = _signed_slack_join(settings)
        started = time.perf_counter()
        answer = intake.invoke(event)
        latencies.append((time.perf_counter() - started) * 1000)
        assert answer["statusCode"] == 200, answer
    latencies = latencies[20:]  # warm only: the first requests are the cold start, measured above
    p50 = statistics.median(latencies)
    p99 = statistics.quantiles(latencies, n=100)[98]
    print(f"intake handler in-process latency over {len(latencies)} requests: p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    return p50, p99


def main() -> int:
    # Functions log at WARNING here so the figures stay readable; metrics are still produced.
    settings = LocalSettings.from_env(api_port=0, aws_port=0, mailchimp_port=0, log_level="WARNING")
    with LocalStack(settings, pollers=False) as stack:
        boto3_seconds, figures = cold_starts(stack, settings)
        p50, p99 = intake_latency(stack, settings)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results.update(
        {
            "cold_start_ratio_max": round(max(f["ratio"] for f in figures.values()), 3),
            "cold_start": {name: {k: round(v, 2) for k, v in f.items()} for name, f in figures.items()},
            "bare_import_boto3_ms": round(boto3_seconds * 1000, 1),
            "intake_p50_ms": round(p50, 3),
            "intake_p99_ms": round(p99, 3),
        }
    )
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
