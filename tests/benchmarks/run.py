"""`make bench`: what a cold request costs each function compared with a bare handler that makes the same external
calls, the intake's throughput over the local HTTP API, and the figures kept from before (cold start relative to a
bare `import boto3`, the intake handler's in-process latency). Prints a table and writes the figures to
bench-results.json (other benchmarks add their keys to it).

Everything runs against one local stack (moto in server mode and the sandbox Mailchimp), so SDK and Mailchimp calls
are real localhost round trips. A cold request is measured in a fresh interpreter, as in a new container: importing
the handler module (the init phase) plus its first invocation, which pays for what the function creates lazily
(boto3 clients, the secrets, the Mailchimp session). Each function's figure is divided by the same measurement of
its bare reference handler (tests/benchmarks/reference/: plain boto3, requests and hmac, no Powertools, no pydantic),
run alternately with the real one so that both see the same machine load. Both get the environment the local stack
gives the function.

Also printed, not stored: the largest cumulative import costs of each handler module (`python -X importtime`).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parents[2]
BENCH = Path(__file__).resolve().parent
REFERENCE = BENCH / "reference"
sys.path.insert(0, str(ROOT / "tests"))

from memberflow_local.settings import LocalSettings  # noqa: E402
from memberflow_local.stack import LocalStack  # noqa: E402
from support.apigw import http_api_event  # noqa: E402

RESULTS = ROOT / "bench-results.json"
RUNS = 7
INTAKE_REQUESTS = 400
LOAD_THREADS = 32
LOAD_MAX_REQUESTS = 1500
LOAD_MAX_SECONDS = 30.0
LOAD_WARMUP_REQUESTS = 64
IMPORT_COSTS_SHOWN = 15
SLACK_JOIN = json.loads((ROOT / "events" / "webhooks" / "slack_team_join.json").read_text())

# One cold request in a fresh interpreter: load the handler module as Lambda does (the code directory on sys.path),
# then invoke it with the first event of the file (a JSON list), and then warm, in the same process, with each of the
# others, one after the other (power.py times those; run.py gives one event). The context is built before the clock
# starts and imports nothing beyond the standard library.
COLD_REQUEST = """
import importlib.util, json, sys, time, uuid
module_file, event_file, context_json, code_dir = sys.argv[1:5]
with open(event_file) as f:
    event, *warm_events = json.load(f)
fields = json.loads(context_json)

class LambdaContext:
    def __init__(self, function_name, memory_limit_in_mb, invoked_function_arn, timeout_seconds):
        self.function_name = function_name
        self.memory_limit_in_mb = memory_limit_in_mb
        self.invoked_function_arn = invoked_function_arn
        self.aws_request_id = str(uuid.uuid4())
        self.function_version = "$LATEST"
        self.log_group_name = "/aws/lambda/" + function_name
        self.log_stream_name = "bench"
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self):
        return max(0, int((self._deadline - time.monotonic()) * 1000))

context = LambdaContext(**fields)
if code_dir:
    sys.path.append(code_dir)
started = time.perf_counter()
spec = importlib.util.spec_from_file_location("app", module_file)
module = importlib.util.module_from_spec(spec)
sys.modules["app"] = module
spec.loader.exec_module(module)
initialised = time.perf_counter()
answer = module.handler(event, context)
done = time.perf_counter()
warm, warm_answers = [], []
for warm_event in warm_events:
    context.aws_request_id = str(uuid.uuid4())
    began = time.perf_counter()
    warm_answers.append(module.handler(warm_event, context))
    warm.append(time.perf_counter() - began)
print("BENCH " + json.dumps(
    {"init": initialised - started, "first_invocation": done - initialised, "answer": answer, "warm": warm,
     "warm_answers": warm_answers},
    default=str))
"""
# The least any handler built on memberflow's libraries pays, with none of memberflow's code: the bare reference
# loaded under a module that also imports pydantic (one model validated per request, as every function validates its
# input) and Powertools' Logger and Metrics, and for a queue consumer Powertools' batch processing and idempotency.
# The real function's distance above this floor is what memberflow's own code costs; the floor's distance above the
# reference is what the chosen libraries cost.
LIBRARY_FLOOR = """
import importlib.util
from aws_lambda_powertools import Logger, Metrics
{consumer_imports}
from pydantic import BaseModel


class _Input(BaseModel):
    kind: str


_logger, _metrics = Logger(service="floor"), Metrics(namespace="floor")
_spec = importlib.util.spec_from_file_location("reference", {reference!r})
_reference = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_reference)


def handler(event, context):
    _Input.model_validate({{"kind": "first"}})
    return _reference.handler(event, context)
"""
CONSUMER_LIBRARIES = """
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig
"""
BARE_BOTO3 = "import time; t0 = time.perf_counter(); import boto3; print(time.perf_counter() - t0)"
IMPORT_TIME = """
import importlib.util, sys
module_file, code_dir = sys.argv[1:3]
sys.path.append(code_dir)
spec = importlib.util.spec_from_file_location("app", module_file)
module = importlib.util.module_from_spec(spec)
sys.modules["app"] = module
print("BENCH-IMPORT-START", file=sys.stderr, flush=True)
spec.loader.exec_module(module)
"""


# ------------------------------------------------------------------ what each function's first request is
def _signed_slack_join(settings: LocalSettings) -> dict:
    raw = json.dumps(dict(SLACK_JOIN["body"], event_id=f"Ev{uuid.uuid4().hex[:12]}")).encode()
    timestamp = str(int(time.time()))
    digest = hmac.new(settings.slack_signing_secret.encode(), f"v0:{timestamp}:".encode() + raw, hashlib.sha256)
    signed = {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": f"v0={digest.hexdigest()}"}
    return http_api_event("slack", raw, {**SLACK_JOIN["headers"], **signed})


def _member_event_batch(stack: LocalStack) -> dict:
    from memberflow_local.event_sources import lambda_sqs_record
    from support.queue import joined

    queued = joined(f"bench.{uuid.uuid4().hex[:8]}@example.org", consent=True)
    message = {"MessageId": str(uuid.uuid4()), "ReceiptHandle": "bench", "Body": queued.model_dump_json()}
    return {"Records": [lambda_sqs_record(message, stack.queue_arn("MemberEventsQueue"))]}


def _escalation_batch(stack: LocalStack) -> dict:
    from datetime import UTC, datetime

    from memberflow.events import EscalationRequested
    from memberflow.pipeline.envelope import QueuedEvent
    from memberflow_local.event_sources import lambda_sqs_record

    case = uuid.uuid4().hex[:12]
    escalation = EscalationRequested(
        thread=f"api:bench:{case}",
        platform="api",
        via="api",
        rule="billing",
        author={"platform": "generic", "workspace": "bench", "user_id": case},
        email=f"bench.{case}@example.org",
        text="Charged twice for the annual pass",
        requested_at=datetime.now(UTC),
    )
    key = f"escalation:bench:{case}"
    queued = QueuedEvent(idempotency_key=key, correlation_id=case, source="bench", event=escalation)
    message = {"MessageId": str(uuid.uuid4()), "ReceiptHandle": "bench", "Body": queued.model_dump_json()}
    return {"Records": [lambda_sqs_record(message, stack.queue_arn("EscalationsQueue"))]}


def _import_chunk(stack: LocalStack) -> dict:
    from memberflow.events import ImportedMember, MemberImportChunk
    from memberflow.models import MemberIdentity, Platform
    from memberflow.pipeline.envelope import QueuedEvent
    from memberflow_local.event_sources import lambda_sqs_record

    run = uuid.uuid4().hex[:8]
    members = [
        ImportedMember(
            identity=MemberIdentity(platform=Platform.GENERIC, workspace="bench", user_id=f"{run}-{n}"),
            email=f"import.{run}.{n}@example.org",
            marketing_consent=False,
        )
        for n in range(10)
    ]
    queued = QueuedEvent(
        idempotency_key=f"import:bench-{run}:0",
        correlation_id=f"bench-{run}",
        source="import",
        event=MemberImportChunk(members=members),
    )
    message = {"MessageId": str(uuid.uuid4()), "ReceiptHandle": "bench", "Body": queued.model_dump_json()}
    return {"Records": [lambda_sqs_record(message, stack.queue_arn("MemberImportQueue"))]}


def _registration_batch(stack: LocalStack) -> dict:
    from datetime import UTC, datetime

    from memberflow.events.registrations import ZoomRegistered
    from memberflow.pipeline.envelope import QueuedEvent
    from memberflow_local.event_services import SYNCED_EVENT
    from memberflow_local.event_sources import lambda_sqs_record

    email = f"bench.{uuid.uuid4().hex[:8]}@example.org"
    event = ZoomRegistered(zoom_id=SYNCED_EVENT["zoom_id"], email=email, at=datetime.now(UTC))
    queued = QueuedEvent(idempotency_key=f"bench:{email}", correlation_id="bench", source="zoom", event=event)
    message = {"MessageId": str(uuid.uuid4()), "ReceiptHandle": "bench", "Body": queued.model_dump_json()}
    return {"Records": [lambda_sqs_record(message, stack.queue_arn("RegistrationsQueue"))]}


def _scheduled_run() -> dict:
    # A time before the members the benchmark onboards are due: the run finds nothing to send.
    return {"id": str(uuid.uuid4()), "time": "2026-11-04T09:00:00Z", "detail-type": "Scheduled Event"}


def _queued_answer(answer: Any) -> bool:
    if not isinstance(answer, dict) or answer.get("statusCode") != 200:
        return False
    return json.loads(answer["body"]).get("status") == "queued"


def _no_batch_failures(answer: Any) -> bool:
    return isinstance(answer, dict) and answer.get("batchItemFailures") == []


def _service_available(answer: Any) -> bool:
    return isinstance(answer, dict) and answer.get("service_available") is True


def _published(answer: Any) -> bool:
    return isinstance(answer, dict) and len(answer.get("reports", [])) >= 1


def _reconciled(answer: Any) -> bool:
    return isinstance(answer, dict) and isinstance(answer.get("events"), list)


def _completed_run(answer: Any) -> bool:
    return isinstance(answer, dict) and not answer.get("deferred", False)


def _winback_preview() -> dict:
    # The same day as the scheduled run: nobody in the benchmark's table crossed a threshold then.
    query = {"campaign": "winback", "day": "2026-11-04", "limit": "50"}
    return {"version": "2.0", "rawPath": "/winback/preview", "queryStringParameters": query, "requestContext": {}}


def _winback_runs_done(answer: Any) -> bool:
    return isinstance(answer, dict) and all(r["completed"] or r["already_done"] for r in answer.get("runs", [None]))


def _answered_200(answer: Any) -> bool:
    return isinstance(answer, dict) and answer.get("statusCode") == 200


class Measured(NamedTuple):
    event: Callable[[LocalStack, LocalSettings], dict]
    """Builds the function's first request (a fresh one for every run)."""
    reference: str
    """File in tests/benchmarks/reference/ with the bare handler that makes the same external calls."""
    succeeded: Callable[[Any], bool]
    """Whether an answer is the success the figure is about (a failing request would be measured cheaper)."""


# Template logical id -> how to measure it. A function of the template without an entry is reported as not measured.
FUNCTIONS: dict[str, Measured] = {
    "WebhookIntakeFunction": Measured(
        lambda stack, settings: _signed_slack_join(settings), "webhook_intake.py", _queued_answer
    ),
    "OnboardingFunction": Measured(
        lambda stack, settings: _member_event_batch(stack), "onboarding.py", _no_batch_failures
    ),
    "OnboardingDripFunction": Measured(lambda stack, settings: _scheduled_run(), "onboarding_drip.py", _completed_run),
    "DeadLetterRedriveFunction": Measured(
        lambda stack, settings: _scheduled_run(), "dead_letter_redrive.py", _service_available
    ),
    "EscalationFunction": Measured(
        lambda stack, settings: _escalation_batch(stack), "escalation.py", _no_batch_failures
    ),
    # Locally Athena is moto's, which answers every query at once with no rows: the run measured is the function's
    # own work (imports, the report's rendering, the S3 writes) around waits Athena adds deployed.
    "HealthReportFunction": Measured(lambda stack, settings: _scheduled_run(), "health_report.py", _published),
    "WinbackFunction": Measured(lambda stack, settings: _scheduled_run(), "winback.py", _winback_runs_done),
    "WinbackPreviewFunction": Measured(lambda stack, settings: _winback_preview(), "winback_preview.py", _answered_200),
    "MemberImportFunction": Measured(
        lambda stack, settings: _import_chunk(stack), "member_import.py", _no_batch_failures
    ),
    "EventSyncFunction": Measured(
        lambda stack, settings: _registration_batch(stack), "event_sync.py", _no_batch_failures
    ),
    "EventReconcileFunction": Measured(lambda stack, settings: _scheduled_run(), "event_reconcile.py", _reconciled),
}


# ------------------------------------------------------------------ subprocesses
def function_environment(stack: LocalStack, logical_id: str) -> dict[str, str]:
    """The environment the local stack runs a function's container with: the stack's process environment (AWS
    endpoint and keys, every function's variables, tracing off) with the function's own variables put over it, as
    memberflow_local.runtime does when it loads a container."""
    spec = stack.function(logical_id).spec
    return {**os.environ, **{key: str(value) for key, value in spec.environment.items()}}


def function_context(spec: Any, memory_size: int | None = None) -> dict[str, Any]:
    """The fields of the Lambda context a function's cold request gets (its memory size may be overridden)."""
    return {
        "function_name": spec.function_name,
        "memory_limit_in_mb": memory_size or spec.memory_size,
        "invoked_function_arn": spec.arn,
        "timeout_seconds": spec.timeout,
    }


def _python(
    code: str, *args: str, env: dict[str, str] | None = None, prefix: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """Runs `code` in a fresh interpreter; `prefix` is a command that ends by exec-ing its arguments (power.py puts
    the interpreter in a CPU-limited cgroup with one)."""
    command = [*prefix, sys.executable, "-c", code, *args]
    answer = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if answer.returncode != 0:
        raise RuntimeError(answer.stderr[-3000:] or answer.stdout[-3000:])
    return answer


def _run(code: str, *args: str) -> float:
    return float(_python(code, *args).stdout.strip().splitlines()[-1])


def cold_request(
    module_file: Path,
    code_dir: str,
    events: list[dict],
    context: dict[str, Any],
    env: dict[str, str],
    prefix: tuple[str, ...] = (),
) -> dict[str, Any]:
    """COLD_REQUEST in a fresh interpreter: the first event cold, the others warm in the same process."""
    with tempfile.NamedTemporaryFile("w", suffix=".json") as event_file:
        json.dump(events, event_file)
        event_file.flush()
        args = (str(module_file), event_file.name, json.dumps(context), code_dir)
        out = _python(COLD_REQUEST, *args, env=env, prefix=prefix).stdout
    lines = [line for line in out.splitlines() if line.startswith("BENCH ")]
    if not lines:
        raise RuntimeError(f"{module_file}: no measurement in the output:\n{out[-2000:]}")
    return json.loads(lines[-1][len("BENCH ") :])


# ------------------------------------------------------------------ cold requests
def library_floor(reference: Path, queue_consumer: bool, directory: Path) -> Path:
    """A module serving REFERENCE's handler with the libraries' import and first use before it (LIBRARY_FLOOR)."""
    module = directory / f"floor_{reference.name}"
    imports = CONSUMER_LIBRARIES if queue_consumer else ""
    module.write_text(LIBRARY_FLOOR.format(consumer_imports=imports, reference=str(reference)))
    return module


def cold_requests(stack: LocalStack, settings: LocalSettings) -> tuple[dict[str, dict[str, float]], list[str]]:
    """Per measured function: real cold request, bare reference, their ratio, the library floor (LIBRARY_FLOOR) and
    its ratio to the reference, and the real one's init and first invocation. Real, reference and floor alternate
    (one unrecorded round first, for bytecode and file caches)."""
    with tempfile.TemporaryDirectory() as floors:
        return _cold_requests(stack, settings, Path(floors))


def _cold_requests(
    stack: LocalStack, settings: LocalSettings, floors: Path
) -> tuple[dict[str, dict[str, float]], list[str]]:
    figures: dict[str, dict[str, float]] = {}
    not_measured = [logical_id for logical_id in stack.runtimes if logical_id not in FUNCTIONS]
    for logical_id, measured in FUNCTIONS.items():
        if logical_id not in stack.runtimes:
            raise KeyError(f"{logical_id} is measured but not in the template; remove it from FUNCTIONS")
        spec = stack.function(logical_id).spec
        env = function_environment(stack, logical_id)
        context = function_context(spec)
        queue_consumer = "Records" in measured.event(stack, settings)
        candidates = {
            "real": (spec.module_file, str(spec.code_dir)),
            "reference": (REFERENCE / measured.reference, ""),
            "floor": (library_floor(REFERENCE / measured.reference, queue_consumer, floors), ""),
        }
        runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in candidates}
        for round_ in range(RUNS + 1):
            for kind, (module_file, code_dir) in candidates.items():
                run = cold_request(module_file, code_dir, [measured.event(stack, settings)], context, env)
                if not measured.succeeded(run["answer"]):
                    raise RuntimeError(f"{logical_id} ({kind}): the first request did not succeed: {run['answer']}")
                if round_:
                    runs[kind].append(run)
        cold, bare, floor = (
            statistics.median(r["init"] + r["first_invocation"] for r in runs[kind])
            for kind in ("real", "reference", "floor")
        )
        figures[logical_id] = {
            "cold_request_ms": cold * 1000,
            "reference_ms": bare * 1000,
            "cold_request_ratio": cold / bare,
            "library_floor_ms": floor * 1000,
            "library_floor_ratio": floor / bare,
            "init_ms": statistics.median(r["init"] for r in runs["real"]) * 1000,
            "first_invocation_ms": statistics.median(r["first_invocation"] for r in runs["real"]) * 1000,
            # Where the gap is: what the import costs over the floor's, and what the first invocation does.
            "reference_init_ms": statistics.median(r["init"] for r in runs["reference"]) * 1000,
            "reference_first_invocation_ms": statistics.median(r["first_invocation"] for r in runs["reference"]) * 1000,
            "library_floor_init_ms": statistics.median(r["init"] for r in runs["floor"]) * 1000,
            "library_floor_first_invocation_ms": statistics.median(r["first_invocation"] for r in runs["floor"]) * 1000,
        }
        f = figures[logical_id]
        print(
            f"cold request {logical_id:<24} {f['cold_request_ms']:7.1f} ms = {f['cold_request_ratio']:.2f} x bare"
            f" reference ({f['reference_ms']:.1f} ms); library floor {f['library_floor_ratio']:.2f} x",
            flush=True,
        )
    for logical_id in not_measured:
        print(f"cold request {logical_id:<24} not measured (no entry in FUNCTIONS)", flush=True)
    return figures, not_measured


def bare_boto3() -> float:
    return statistics.median(_run(BARE_BOTO3) for _ in range(RUNS))


# ------------------------------------------------------------------ intake
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
    return p50, p99


def intake_throughput(stack: LocalStack, settings: LocalSettings) -> dict[str, Any]:
    """Signed Slack deliveries (each its own event_id and user) accepted per second by one intake process.

    The local stack runs intake in-process: its HTTP bridge (a threaded werkzeug server) hands each request to a
    container from the function's pool (memberflow_local/runtime.py), at most `max_containers` at once; beyond that,
    requests wait for a free container. The moto server, the bridge and the containers share this process (one GIL),
    so the figure is one process's capacity, not Lambda's scaling. The deployed API also throttles (the template's
    ThrottlingRateLimit), which the local bridge does not. The clients run in their own interpreter; the SQS pollers
    are off so the consumer does not compete for the CPU.
    """
    intake = stack.function("WebhookIntakeFunction")
    url = f"{stack.endpoints()['api_url']}/webhooks/slack"
    args = [settings.slack_signing_secret, str(LOAD_THREADS), str(LOAD_MAX_REQUESTS), str(LOAD_MAX_SECONDS)]
    answer = subprocess.run(
        [sys.executable, str(BENCH / "intake_load.py"), url, *args, str(LOAD_WARMUP_REQUESTS)],
        capture_output=True,
        text=True,
        check=False,
        timeout=3 * LOAD_MAX_SECONDS + 60,
    )
    if answer.returncode != 0:
        raise RuntimeError(f"intake load failed:\n{answer.stderr[-3000:]}")
    load = json.loads(answer.stdout.strip().splitlines()[-1])
    load["threads"] = LOAD_THREADS
    load["pool_max_containers"] = intake.max_containers
    load["pool_containers_used"] = len(intake.containers)
    return load


# ------------------------------------------------------------------ import costs (printed only)
def import_costs(stack: LocalStack, logical_id: str) -> tuple[float, list[tuple[float, int, str]]]:
    """The handler module's import in a fresh interpreter under `-X importtime`: the total, and the largest
    cumulative costs (ms, nesting depth, module), nested modules included."""
    spec = stack.function(logical_id).spec
    answer = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", IMPORT_TIME, str(spec.module_file), str(spec.code_dir)],
        capture_output=True,
        text=True,
        check=False,
        env=function_environment(stack, logical_id),
    )
    if answer.returncode != 0:
        raise RuntimeError(f"{logical_id}: importing the handler failed:\n{answer.stderr[-3000:]}")
    _, _, after = answer.stderr.partition("BENCH-IMPORT-START")
    rows: list[tuple[float, int, str]] = []
    for line in after.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line[len("import time:") :].split("|")
        depth = (len(name) - len(name.lstrip()) - 1) // 2
        rows.append((int(cumulative) / 1000, depth, name.strip()))
    total = sum(ms for ms, depth, _ in rows if depth == 0)
    return total, sorted(rows, reverse=True)[:IMPORT_COSTS_SHOWN]


# ------------------------------------------------------------------ report
def print_table(
    figures: dict[str, dict[str, float]],
    not_measured: list[str],
    old: dict[str, dict[str, float]],
    boto3_seconds: float,
    p50: float,
    p99: float,
    load: dict[str, Any],
) -> None:
    print()
    print(f"Cold request: import of the handler module + first invocation, fresh interpreter, median of {RUNS}")
    print("(real, bare reference and library floor alternating; ratio = real / reference, floor = floor / reference)")
    header = (
        f"{'function':<24} {'cold ms':>8} {'init ms':>8} {'1st inv ms':>10} {'ref ms':>8} {'ratio':>6}"
        f" {'floor ms':>8} {'floor':>6}"
    )
    print(header)
    print("-" * len(header))
    for name, f in figures.items():
        print(
            f"{name:<24} {f['cold_request_ms']:8.1f} {f['init_ms']:8.1f} {f['first_invocation_ms']:10.1f}"
            f" {f['reference_ms']:8.1f} {f['cold_request_ratio']:6.2f}"
            f" {f['library_floor_ms']:8.1f} {f['library_floor_ratio']:6.2f}"
        )
    for name in not_measured:
        print(f"{name:<24} {'not measured':>8}")
    print(f"cold_request_ratio_max {max(f['cold_request_ratio'] for f in figures.values()):.2f}")
    print(f"cold_request_floor_ratio_max {max(f['library_floor_ratio'] for f in figures.values()):.2f}")
    print()
    print("Init and first invocation, ms (real / library floor / bare reference):")
    for name, f in figures.items():
        print(
            f"{name:<24} init {f['init_ms']:6.1f} / {f['library_floor_init_ms']:6.1f} / {f['reference_init_ms']:6.1f}"
            f"   first invocation {f['first_invocation_ms']:6.1f} / {f['library_floor_first_invocation_ms']:6.1f}"
            f" / {f['reference_first_invocation_ms']:6.1f}"
        )
    print()
    print(f"Init (module import) relative to a bare `import boto3` ({boto3_seconds * 1000:.1f} ms):")
    for name, f in old.items():
        print(f"{name:<24} {f['init_ms']:8.1f} ms = {f['ratio']:.2f} x")
    print()
    print(f"Intake handler, warm, in-process: p50 {p50:.2f} ms, p99 {p99:.2f} ms ({INTAKE_REQUESTS - 20} requests)")
    print(
        f"Intake over the local HTTP API, one process, {load['threads']} client threads, intake pool of"
        f" {load['pool_max_containers']} containers ({load['pool_containers_used']} used):"
    )
    print(
        f"  {load['accepted']} of {load['sent']} deliveries queued in {load['elapsed_s']:.1f} s"
        f" = {load['events_per_s']:.1f} events/s; latency p50 {load['p50_ms']:.1f} ms, p99 {load['p99_ms']:.1f} ms;"
        f" answers {load['statuses']}"
    )


class _Discard(io.TextIOBase):
    def write(self, text: str) -> int:
        return len(text)


def compile_bytecode() -> None:
    """Bytecode for every module either side imports, as Lambda has it: the runtime's boto3 comes compiled and the
    layer is built with bytecode (shared/Makefile). Without it both sides would mostly measure the compiler."""
    import sysconfig

    paths = [sysconfig.get_paths()["purelib"], str(ROOT / "shared"), str(ROOT / "functions"), str(REFERENCE)]
    subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", *paths], check=True, capture_output=True)


def main() -> int:
    began = time.perf_counter()
    compile_bytecode()
    # Functions log at WARNING here so the figures stay readable; metrics are still produced.
    settings = LocalSettings.from_env(api_port=0, aws_port=0, mailchimp_port=0, log_level="WARNING")
    boto3_seconds = bare_boto3()
    with LocalStack(settings, pollers=False) as stack:
        figures, not_measured = cold_requests(stack, settings)
        costs = {logical_id: import_costs(stack, logical_id) for logical_id in FUNCTIONS}
        # The in-process functions still produce their metrics (EMF lines on stdout); they are dropped here so the
        # figures stay readable.
        with contextlib.redirect_stdout(_Discard()):
            p50, p99 = intake_latency(stack, settings)
            load = intake_throughput(stack, settings)
    old = {
        name: {
            "init_ms": f["init_ms"],
            "first_invocation_ms": f["first_invocation_ms"],
            "ratio": f["init_ms"] / 1000 / boto3_seconds,
        }
        for name, f in figures.items()
    }

    print_table(figures, not_measured, old, boto3_seconds, p50, p99, load)
    print()
    print(f"Largest cumulative import costs of each handler module (python -X importtime, top {IMPORT_COSTS_SHOWN}):")
    for logical_id, (total, rows) in costs.items():
        print(f"{logical_id} (handler import {total:.1f} ms):")
        for ms, depth, name in rows:
            print(f"  {ms:8.1f} ms  {'  ' * depth}{name}")

    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results.update(
        {
            "cold_request_ratio_max": round(max(f["cold_request_ratio"] for f in figures.values()), 3),
            "cold_request_floor_ratio_max": round(max(f["library_floor_ratio"] for f in figures.values()), 3),
            "cold_request_python": platform.python_version(),
            "cold_request": {name: {k: round(v, 2) for k, v in f.items()} for name, f in figures.items()},
            "cold_request_not_measured": not_measured,
            "cold_start_ratio_max": round(max(f["ratio"] for f in old.values()), 3),
            "cold_start": {name: {k: round(v, 2) for k, v in f.items()} for name, f in old.items()},
            "bare_import_boto3_ms": round(boto3_seconds * 1000, 1),
            "intake_p50_ms": round(p50, 3),
            "intake_p99_ms": round(p99, 3),
            "intake_events_per_s": round(load["events_per_s"], 1),
            "intake_load": {k: round(v, 2) if isinstance(v, float) else v for k, v in load.items()},
        }
    )
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {RESULTS.name} in {time.perf_counter() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
