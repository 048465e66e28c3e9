"""Each function's MemorySize in template.yaml against the power-tuning summary `make bench-power` last wrote
(tests/benchmarks/power_tuning_summary.json): no function may be configured below the smallest memory size whose CPU
share met its deadline (intake: its cold request within the senders' 3 s; the consumers: within a tenth of their
timeout) when last measured."""

import copy
import json
from pathlib import Path

import pytest

from memberflow_local.template import load_yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_yaml(ROOT / "template.yaml")
SUMMARY = json.loads((ROOT / "tests" / "benchmarks" / "power_tuning_summary.json").read_text())
LAMBDA_DEFAULT_MB = 128


def configured_memory(template: dict) -> dict[str, int]:
    """MemorySize per function, as SAM resolves it: the function's own, else Globals, else Lambda's default."""
    default = ((template.get("Globals") or {}).get("Function") or {}).get("MemorySize", LAMBDA_DEFAULT_MB)
    return {
        name: int(resource["Properties"].get("MemorySize", default))
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def below_needed(template: dict, summary: dict) -> list[str]:
    """Why a function's configured memory falls short of what the summary says its deadline needs (or is unknown)."""
    problems = []
    for name, memory_mb in configured_memory(template).items():
        measured = summary["functions"].get(name)
        if measured is None:
            problems.append(f"{name}: not in the power-tuning summary; run `make bench-power`")
        elif measured["minimum_memory_mb"] is None:
            problems.append(f"{name}: no measured memory size met its deadline")
        elif memory_mb < measured["minimum_memory_mb"]:
            problems.append(
                f"{name}: MemorySize {memory_mb} MB is below the {measured['minimum_memory_mb']} MB its deadline"
                f" needs (measured {summary['measured_on']})"
            )
    return problems


def test_every_function_is_configured_at_or_above_the_size_its_deadline_needs():
    assert below_needed(TEMPLATE, SUMMARY) == []


def test_the_summary_records_when_and_where_it_was_measured():
    assert SUMMARY["measured_on"]
    assert SUMMARY["machine"]["cores"] >= 1
    assert SUMMARY["prices"]
    for measured in SUMMARY["functions"].values():
        assert measured["deadline"]["cold_request_ms"] > 0
        sizes = {int(mb) for mb in measured["cold_request_ms_by_memory_mb"]}
        assert {128, 256, 512, 1024, 1769, 3008} <= sizes


@pytest.mark.parametrize("name", sorted(SUMMARY["functions"]))
def test_the_check_fails_when_a_function_is_configured_below_its_needed_size(name):
    needed = SUMMARY["functions"][name]["minimum_memory_mb"]
    template = copy.deepcopy(TEMPLATE)
    template["Resources"][name]["Properties"]["MemorySize"] = needed - 1
    assert [problem for problem in below_needed(template, SUMMARY) if problem.startswith(f"{name}:")]


def test_the_check_reads_the_globals_size_for_a_function_without_its_own():
    template = copy.deepcopy(TEMPLATE)
    template["Globals"]["Function"]["MemorySize"] = 64
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"].pop("MemorySize", None)
    assert len(below_needed(template, SUMMARY)) == len(configured_memory(TEMPLATE))


def test_a_function_missing_from_the_summary_fails_the_check():
    summary = copy.deepcopy(SUMMARY)
    summary["functions"].pop("WebhookIntakeFunction")
    assert any(problem.startswith("WebhookIntakeFunction: not in") for problem in below_needed(TEMPLATE, summary))
