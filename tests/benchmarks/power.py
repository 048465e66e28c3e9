"""`make bench-power`: each function's cold request and warm invocations under the CPU share Lambda gives each
memory size, the cost per million invocations at that size, and the cheapest size that meets the function's deadline.

Lambda gives a function CPU in proportion to its memory: one full vCPU at 1,769 MB. Each measurement here runs in a
fresh interpreter (as run.py's cold request: the handler module's import plus its first invocation, then
WARM_INVOCATIONS more invocations in the same process) put in a cgroup whose CPU quota is that share of one core
(capped at the machine's cores, for 3,008 MB). The AWS side (moto server) and the sandbox Mailchimp run in this
process, outside the quota, as AWS's services do not run on the function's CPU.

Where CPU quotas are not available (no writable cgroup v1 cpu controller, no cgroup v2 cpu.max), the benchmark says
so, records it in bench-results.json and measures nothing: an unlimited run would not tell what a memory size gives.

Writes bench-results.json (`power_tuning`, `intake_cold_request_ms_at_configured_memory`) and
tests/benchmarks/power_tuning_summary.json (committed: per function, the smallest size that met its deadline, which
tests/unit/test_memory_sizes.py holds template.yaml's MemorySize values to).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import (  # noqa: E402
    FUNCTIONS,
    RESULTS,
    ROOT,
    LocalSettings,
    LocalStack,
    cold_request,
    compile_bytecode,
    function_context,
    function_environment,
)

SUMMARY = Path(__file__).resolve().parent / "power_tuning_summary.json"
SIZES = (128, 256, 512, 1024, 1769, 3008)
FULL_VCPU_MB = 1769
# Cold requests per size: fewer where the CPU share is smallest (each takes longest there).
REPEATS = {128: 2, 256: 3, 512: 3, 1024: 5, 1769: 5, 3008: 5}
WARM_INVOCATIONS = 30
CFS_PERIOD_US = 100_000

# AWS Lambda on-demand pricing, arm64, US East (N. Virginia): duration, first tier (the first 7.5 billion GB-seconds a
# month), and requests. Billed duration is rounded up to the millisecond.
PRICE_PER_GB_SECOND = 0.0000133334
PRICE_PER_MILLION_REQUESTS = 0.20
PRICE_NOTE = (
    "AWS Lambda on-demand, arm64, us-east-1: $0.0000133334 per GB-second (first 7.5 billion GB-seconds a month)"
    " + $0.20 per million requests; duration billed in 1 ms increments; prices as published on 2026-11-30"
)

# Intake answers Slack, Discord and Zoom, which want the answer within 3 s (Slack retries after that): the cold
# request must fit that, and a warm invocation must leave most of it to API Gateway and the network.
INTAKE_COLD_MS = 3000
INTAKE_WARM_P99_MS = 1000
# The queue and schedule consumers have no sender waiting; their cold request and warm p99 stay within a tenth of
# their timeout, so a cold start never eats the time budget their timeout was derived from.
CONSUMER_BUDGET_SHARE = 0.10
# Costs this close to the cheapest are within the run-to-run noise of the warm p50: as cheap.
COST_TOLERANCE = 0.05


class Deadline(NamedTuple):
    cold_request_ms: float
    warm_p99_ms: float
    why: str


def deadline(logical_id: str, timeout_seconds: int) -> Deadline:
    if logical_id == "WebhookIntakeFunction":
        return Deadline(INTAKE_COLD_MS, INTAKE_WARM_P99_MS, "senders' 3 s answer deadline (Slack, Zoom, Discord)")
    budget = timeout_seconds * 1000 * CONSUMER_BUDGET_SHARE
    return Deadline(budget, budget, f"{CONSUMER_BUDGET_SHARE:.0%} of its {timeout_seconds} s timeout")


def cpu_share(memory_mb: int, cores: int) -> float:
    """Lambda's CPU for a memory size, in cores: memory / 1,769 MB of one vCPU, at most the machine's cores."""
    return min(memory_mb / FULL_VCPU_MB, float(cores))


# A member's join: one intake invocation (the platform's webhook) and one onboarding invocation (its queued event).
JOIN = ("WebhookIntakeFunction", "OnboardingFunction")


def cost_per_million(memory_mb: int, duration_ms: float) -> float:
    """USD per million invocations of `duration_ms` each (billed rounded up to the ms), requests included."""
    gb_seconds = math.ceil(duration_ms) / 1000 * memory_mb / 1024
    return 1_000_000 * gb_seconds * PRICE_PER_GB_SECOND + PRICE_PER_MILLION_REQUESTS


# ------------------------------------------------------------------ CPU quotas
class CpuQuota:
    """CPU-limited cgroups for child processes: cgroup v1 (cpu.cfs_quota_us) or v2 (cpu.max)."""

    def __init__(self, kind: str, base: Path) -> None:
        self.kind = kind
        self.base = base

    @classmethod
    def available(cls) -> tuple[CpuQuota | None, str]:
        """The quota mechanism this machine offers, tried for real (a group created, limited and removed), or why
        there is none."""
        candidates = []
        v1 = Path("/sys/fs/cgroup/cpu")
        if (v1 / "cpu.cfs_quota_us").exists():
            candidates.append(cls("cgroup v1", v1))
        mounts = Path("/proc/mounts").read_text() if Path("/proc/mounts").exists() else ""
        for line in mounts.splitlines():
            fields = line.split()
            if len(fields) > 2 and fields[2] == "cgroup2" and (Path(fields[1]) / "cgroup.controllers").exists():
                candidates.append(cls("cgroup v2", Path(fields[1])))
        reasons = []
        for quota in candidates:
            try:
                with quota.limited(0.5):
                    pass
                return quota, f"{quota.kind} at {quota.base}"
            except OSError as error:
                reasons.append(f"{quota.kind} at {quota.base}: {error}")
        return None, "; ".join(reasons) or "no cgroup cpu controller (v1) or cgroup2 mount found"

    @contextlib.contextmanager
    def limited(self, cores: float) -> Iterator[tuple[str, ...]]:
        """A fresh group limited to `cores` of CPU; yields a command prefix that moves itself into the group and then
        execs its arguments (so the limit holds from the interpreter's first instruction, and no Python code runs
        between fork and exec in this threaded process)."""
        group = self.base / f"memberflow-power-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        quota_us = max(1000, round(cores * CFS_PERIOD_US))
        if self.kind == "cgroup v2" and "cpu" not in (self.base / "cgroup.subtree_control").read_text().split():
            (self.base / "cgroup.subtree_control").write_text("+cpu")
        group.mkdir()
        try:
            if self.kind == "cgroup v1":
                (group / "cpu.cfs_period_us").write_text(str(CFS_PERIOD_US))
                (group / "cpu.cfs_quota_us").write_text(str(quota_us))
            else:
                (group / "cpu.max").write_text(f"{quota_us} {CFS_PERIOD_US}")
            yield ("/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', str(group / "cgroup.procs"))
        finally:
            for _ in range(50):
                try:
                    group.rmdir()
                    break
                except OSError:
                    time.sleep(0.1)


# ------------------------------------------------------------------ measuring
def measure(
    stack: LocalStack, settings: LocalSettings, quota: CpuQuota, logical_id: str, memory_mb: int, cores: int
) -> dict[str, Any]:
    measured = FUNCTIONS[logical_id]
    spec = stack.function(logical_id).spec
    env = function_environment(stack, logical_id)
    context = function_context(spec, memory_mb)
    share = cpu_share(memory_mb, cores)
    colds: list[float] = []
    warm: list[float] = []
    for _ in range(REPEATS.get(memory_mb, 1)):
        events = [measured.event(stack, settings) for _ in range(WARM_INVOCATIONS + 1)]
        with quota.limited(share) as prefix:
            run = cold_request(spec.module_file, str(spec.code_dir), events, context, env, prefix=prefix)
        for answer in [run["answer"], *run["warm_answers"]]:
            if not measured.succeeded(answer):
                raise RuntimeError(f"{logical_id} at {memory_mb} MB: a request did not succeed: {answer}")
        colds.append((run["init"] + run["first_invocation"]) * 1000)
        warm.extend(seconds * 1000 for seconds in run["warm"])
    p50 = statistics.median(warm)
    p99 = statistics.quantiles(warm, n=100, method="inclusive")[98]
    cold = statistics.median(colds)
    return {
        "memory_mb": memory_mb,
        "cpu_share": round(share, 4),
        "cold_request_ms": round(cold, 1),
        "cold_requests": len(colds),
        "warm_p50_ms": round(p50, 2),
        "warm_p99_ms": round(p99, 2),
        "warm_invocations": len(warm),
        "cost_per_million_usd": round(cost_per_million(memory_mb, p50), 4),
        "cold_request_cost_usd": round(cost_per_million(memory_mb, cold) / 1_000_000, 8),
    }


def row_at(entry: dict[str, Any], memory_mb: int) -> dict[str, Any]:
    return next(row for row in entry["sizes"] if row["memory_mb"] == memory_mb)


def choose(rows: list[dict[str, Any]], limit: Deadline) -> tuple[int | None, int | None]:
    """(the smallest size that meets the deadline, the size to configure). The size to configure is the cheapest
    at steady state among those meeting the deadline; sizes within COST_TOLERANCE of the cheapest count as equally
    cheap (the measurement's noise), and of those the one with the shortest cold request is chosen."""
    meeting = [
        row
        for row in rows
        if row["cold_request_ms"] <= limit.cold_request_ms and row["warm_p99_ms"] <= limit.warm_p99_ms
    ]
    if not meeting:
        return None, None
    smallest = min(row["memory_mb"] for row in meeting)
    cheapest = min(row["cost_per_million_usd"] for row in meeting)
    as_cheap = [row for row in meeting if row["cost_per_million_usd"] <= cheapest * (1 + COST_TOLERANCE)]
    chosen = min(as_cheap, key=lambda row: (row["cold_request_ms"], row["memory_mb"]))["memory_mb"]
    return smallest, chosen


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "cpu model")):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cores": os.cpu_count() or 1,
        "cpu_model": model or platform.processor() or platform.machine(),
        "architecture": platform.machine(),
        "python": platform.python_version(),
        "load_average_1m_at_start": round(os.getloadavg()[0], 2),
    }


# ------------------------------------------------------------------ report
def print_table(table: dict[str, dict[str, Any]]) -> None:
    header = (
        f"{'function':<26} {'MB':>5} {'CPU':>6} {'cold ms':>9} {'warm p50':>9} {'warm p99':>9}"
        f" {'$/M inv':>8} {'meets':>6}"
    )
    print(header)
    print("-" * len(header))
    for logical_id, entry in table.items():
        limit = entry["deadline"]
        for row in entry["sizes"]:
            mark = "*" if row["memory_mb"] == entry["chosen_memory_mb"] else " "
            meets = "yes" if row["meets_deadline"] else "no"
            print(
                f"{logical_id:<26} {row['memory_mb']:>5} {row['cpu_share']:>6.3f} {row['cold_request_ms']:>9.1f}"
                f" {row['warm_p50_ms']:>9.2f} {row['warm_p99_ms']:>9.2f} {row['cost_per_million_usd']:>8.4f}"
                f" {meets:>5}{mark}"
            )
        print(
            f"  deadline: cold request <= {limit['cold_request_ms']:.0f} ms, warm p99 <= {limit['warm_p99_ms']:.0f} ms"
            f" ({limit['why']}); smallest meeting it: {entry['minimum_memory_mb']} MB, chosen (*, the cheapest"
            f" meeting it, within {COST_TOLERANCE:.0%} the fastest cold request): {entry['chosen_memory_mb']} MB;"
            f" template: {entry['configured_memory_mb']} MB"
            f" (cold request there {entry['cold_request_ms_at_configured_memory']:.0f} ms)"
        )


def main() -> int:
    began = time.perf_counter()
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    quota, how = CpuQuota.available()
    if quota is None:
        print(f"CPU quotas are not available on this machine ({how}): power tuning skipped, nothing measured.")
        results["power_tuning"] = {"available": False, "reason": how}
        results.pop("intake_cold_request_ms_at_configured_memory", None)
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
        return 0
    facts = machine()
    cores = facts["cores"]
    print(f"CPU quotas: {how}; {cores} cores ({facts['cpu_model']}), load {facts['load_average_1m_at_start']}")
    compile_bytecode()
    settings = LocalSettings.from_env(api_port=0, aws_port=0, mailchimp_port=0, log_level="WARNING")
    table: dict[str, dict[str, Any]] = {}
    # MEMBERFLOW_POWER_FUNCTIONS=EventSyncFunction,... measures only those; the summary keeps the others' figures.
    wanted = [name for name in os.environ.get("MEMBERFLOW_POWER_FUNCTIONS", "").split(",") if name.strip()]
    unknown = sorted(set(wanted) - set(FUNCTIONS))
    if unknown:
        raise SystemExit(f"MEMBERFLOW_POWER_FUNCTIONS names functions that are not measured: {', '.join(unknown)}")
    with LocalStack(settings, pollers=False) as stack:
        for logical_id in wanted or FUNCTIONS:
            spec = stack.function(logical_id).spec
            limit = deadline(logical_id, spec.timeout)
            rows = []
            for memory_mb in sorted({*SIZES, spec.memory_size}):
                row = measure(stack, settings, quota, logical_id, memory_mb, cores)
                row["meets_deadline"] = (
                    row["cold_request_ms"] <= limit.cold_request_ms and row["warm_p99_ms"] <= limit.warm_p99_ms
                )
                rows.append(row)
                print(
                    f"{logical_id:<26} {memory_mb:>5} MB: cold {row['cold_request_ms']:8.1f} ms,"
                    f" warm p50 {row['warm_p50_ms']:.2f} ms p99 {row['warm_p99_ms']:.2f} ms"
                    f" ({time.perf_counter() - began:.0f} s)",
                    flush=True,
                )
            smallest, chosen = choose([r for r in rows if r["memory_mb"] in SIZES], limit)
            table[logical_id] = {
                "deadline": limit._asdict(),
                "timeout_s": spec.timeout,
                "sizes": rows,
                "minimum_memory_mb": smallest,
                "chosen_memory_mb": chosen,
                "configured_memory_mb": spec.memory_size,
            }
            table[logical_id]["cold_request_ms_at_configured_memory"] = row_at(table[logical_id], spec.memory_size)[
                "cold_request_ms"
            ]
    elapsed = time.perf_counter() - began
    facts["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)

    print()
    print(
        f"Power tuning: cold request (import + first invocation, fresh interpreter) and {WARM_INVOCATIONS} warm"
        " invocations after it, under a CPU quota of memory/1769 MB of one core; $/M inv = cost per million"
        " invocations at the warm p50"
    )
    print(f"Prices: {PRICE_NOTE}")
    print_table(table)
    for logical_id, entry in table.items():
        if entry["minimum_memory_mb"] is None:
            print(f"WARNING: {logical_id}: no size met its deadline on this machine")
        elif entry["configured_memory_mb"] < entry["minimum_memory_mb"]:
            print(
                f"WARNING: {logical_id} is configured at {entry['configured_memory_mb']} MB, below the"
                f" {entry['minimum_memory_mb']} MB its deadline needs"
            )
    joins = {
        which: round(sum(row_at(table[name], table[name][key])["cost_per_million_usd"] for name in JOIN), 4)
        for which, key in (("configured", "configured_memory_mb"), ("chosen", "chosen_memory_mb"))
        if all(name in table and table[name][key] is not None for name in JOIN)
    }
    print(
        f"Cost per million joins (one intake + one onboarding invocation, warm p50): {joins.get('configured')} USD at"
        f" the template's sizes, {joins.get('chosen')} USD at the chosen sizes"
    )
    print(f"\npower tuning took {elapsed:.0f} s")

    intake = table.get("WebhookIntakeFunction")
    intake_cold = intake["cold_request_ms_at_configured_memory"] if intake else None
    results["power_tuning"] = {
        "available": True,
        "cpu_quota": how,
        "machine": facts,
        "prices": PRICE_NOTE,
        "warm_invocations_per_cold_request": WARM_INVOCATIONS,
        "elapsed_s": round(elapsed, 1),
        "cost_per_million_joins_usd": joins,
        "functions": table,
    }
    if intake_cold is not None:
        results["intake_cold_request_ms_at_configured_memory"] = intake_cold
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    earlier = json.loads(SUMMARY.read_text())["functions"] if wanted and SUMMARY.exists() else {}
    summary = {
        "measured_on": datetime.now(UTC).date().isoformat(),
        "machine": facts,
        "cpu_quota": how,
        "prices": PRICE_NOTE,
        "functions": {
            **earlier,
            **{
                logical_id: {
                    "deadline": entry["deadline"],
                    "minimum_memory_mb": entry["minimum_memory_mb"],
                    "chosen_memory_mb": entry["chosen_memory_mb"],
                    "cold_request_ms_by_memory_mb": {str(r["memory_mb"]): r["cold_request_ms"] for r in entry["sizes"]},
                }
                for logical_id, entry in table.items()
            },
        },
    }
    SUMMARY.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {RESULTS.name} and {SUMMARY.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
