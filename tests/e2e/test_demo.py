"""`make demo` must keep working: the whole scenario on the local stack, with every check against the sandbox."""

import json
import re

import pytest

from memberflow_local.demo import SCENARIO, run_demo, scenes
from memberflow_local.scenes import LAST_SCENES, SCENES
from memberflow_local.settings import LocalSettings

pytestmark = pytest.mark.e2e


# Every automation's scenes, seeded communities included: minutes, not seconds.
@pytest.mark.timeout(600)
def test_demo_scenario_passes_every_check_against_the_sandbox(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    settings = LocalSettings.from_env(api_port=0, aws_port=0, mailchimp_port=0, log_level="ERROR")
    log_path = tmp_path / "demo.log"

    finished = False
    try:
        assert run_demo(settings=settings, log_path=log_path) == 0
        finished = True
    finally:
        if not finished:  # the functions' own account of what went wrong, which the failure report would not show
            print(_errors_logged(log_path))

    captured = capsys.readouterr()
    printed = captured.out
    assert "demo finished" in printed and ": OK" in printed
    assert "401 invalid_signature: forged Slack signature" in printed
    assert "400 invalid_json: malformed Discourse body" in printed
    # The earlier unsubscriber ticks the consent box on signing up: asked to confirm again, never resubscribed.
    [former] = [line for line in printed.splitlines() if line.strip().startswith("former.member@example.org")]
    assert "welcome email NO" in former and "re-opt-in" in former
    # The failing member's retries go on in the background, told once; they end in the dead-letter queue.
    assert printed.count("failed and wait to be retried; the story goes on meanwhile") == 1
    assert "bounce.loop@example.org" in printed and "parked after 5 deliveries" in printed

    # A community that existed before memberflow: imported in bulk, with its progress bar and summary.
    assert "$ memberflow import csv community.csv" in printed
    assert "summary: 300 member(s) read, 300 written" in printed and "row 303: joined:" in printed

    # A Discord member joins in membership screening, passes it, signs up with /newsletter, confirms and is welcomed.
    assert "discord /newsletter 1187736602143977001 (nova.quinn@example.org)  ->  200 queued" in printed
    [nova] = [line for line in printed.splitlines() if line.strip().startswith("nova.quinn@example.org")]
    assert "welcome email YES" in nova

    # The screen is the story: scenes, progress, summary. The functions' output went to the log file it names.
    # Every scene the screen numbers: the scenario's, then the scenes in code (the health report last).
    count = len(scenes(json.loads(SCENARIO.read_text())["steps"])) + len(SCENES) + len(LAST_SCENES)
    assert re.search(rf"^1/{count} +Before the week starts", printed, re.MULTILINE) and "requests replayed" in printed
    assert f"function logs: {log_path}" in printed
    for line in (printed + captured.err).splitlines():
        assert not line.lstrip().startswith("{"), f"a JSON log line reached the screen: {line[:200]}"
    for word in ("WARNING", "Warning", "Dimension", "Traceback"):
        assert word not in printed + captured.err
    assert captured.err == ""
    logged = log_path.read_text().splitlines()
    assert any(line.startswith("{") and isinstance(json.loads(line), dict) for line in logged)
    assert any(f"scene {count}/{count}" in line for line in logged)


def _errors_logged(log_path, last: int = 40) -> str:
    if not log_path.exists():
        return f"no function log at {log_path}"
    errors = [line for line in log_path.read_text().splitlines() if "ERROR" in line or "Traceback" in line]
    heading = f"the last {min(last, len(errors))} of {len(errors)} error lines in {log_path}:"
    return "\n".join([heading, *errors[-last:]])
