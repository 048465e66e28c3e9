"""Scheduled functions that can find nothing to do (a win-back resume with no run in progress, every 15 minutes; a
reconciliation with no event configured) still publish a figure: the schedule is seen to fire, and Powertools never
warns of an empty metrics flush in the on-call engineer's logs."""

from __future__ import annotations

import importlib.util
import json
import sys
import warnings
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONTEXT = SimpleNamespace(
    function_name="scheduled",
    memory_limit_in_mb=256,
    invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:scheduled",
    aws_request_id="request-1",
    get_remaining_time_in_millis=lambda: 900_000,
)
RUN = {"id": "run-1", "time": "2026-11-30T06:00:00Z", "detail-type": "Scheduled Event", "detail": {"resume": True}}


def load(function_dir: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "memberflow")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "memberflow")
    name = f"scheduled_app_{function_dir}"
    spec = importlib.util.spec_from_file_location(name, ROOT / "functions" / function_dir / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "container", lambda: SimpleNamespace(flush_activity=lambda: 0))
    return module


def published(output: str) -> dict[str, object]:
    figures: dict[str, object] = {}
    for line in output.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            record = json.loads(line)
            for directive in record["_aws"]["CloudWatchMetrics"]:
                figures.update({metric["Name"]: record[metric["Name"]] for metric in directive["Metrics"]})
    return figures


def invoke_without_warnings(module: ModuleType, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        answer = module.handler(dict(RUN), CONTEXT)
    return {"answer": answer, "figures": published(capsys.readouterr().out)}


def test_a_winback_resume_with_no_run_in_progress_publishes_zero_runs(monkeypatch, capsys):
    app = load("winback", monkeypatch)
    monkeypatch.setattr(app, "run_campaigns", lambda *args, **kwargs: [])

    outcome = invoke_without_warnings(app, capsys)

    assert outcome["answer"] == {"runs": []}
    assert outcome["figures"]["WinbackRuns"] == [0.0]


def test_a_reconciliation_with_no_event_publishes_zero_events(monkeypatch, capsys):
    app = load("event_reconcile", monkeypatch)
    monkeypatch.setattr(app, "sync_deps", lambda: SimpleNamespace())
    settings = SimpleNamespace(reconcile_recent_days=3, reconcile_eventbrite_call_budget=250)
    monkeypatch.setattr(app, "load_settings", lambda _: settings)
    monkeypatch.setattr(app, "reconcile_all", lambda *args, **kwargs: [])

    outcome = invoke_without_warnings(app, capsys)

    assert outcome["answer"] == {
        "events": [],
        "left_for_next_run": [],
        "eventbrite_calls": {"made": 0, "budget": 250},
    }
    assert outcome["figures"]["EventsReconciled"] == [0.0]
    assert outcome["figures"]["EventbriteCalls"] == [0.0]
