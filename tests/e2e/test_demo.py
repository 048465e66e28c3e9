"""`make demo` must keep working: the whole scenario on the local stack, with every check against the sandbox."""

import json
import re

import pytest

from memberflow_local.demo import SCENARIO, run_demo, scenes
from memberflow_local.scenes import SCENES
from memberflow_local.settings import LocalSettings

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(600)  # the scenario and the scenes of code (a 300-person webinar among them)
def test_demo_scenario_passes_every_check_against_the_sandbox(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    settings = LocalSettings.from_env(api_port=0, aws_port=0, mailchimp_port=0, log_level="ERROR")
    log_path = tmp_path / "demo.log"

    assert run_demo(settings=settings, log_path=log_path) == 0

    captured = capsys.readouterr()
    printed = captured.out
    assert "demo finished" in printed and ": OK" in printed
    assert "401 invalid_signature: forged Slack signature" in printed
    assert "400 invalid_json: malformed Discourse body" in printed
    assert "former.member@example.org" in printed and "opted out earlier" in printed

    # A Discord member joins in membership screening, passes it, signs up with /newsletter, confirms and is welcomed.
    assert "discord /newsletter 1187736602143977001 (nova.quinn@example.org)  ->  200 queued" in printed
    [nova] = [line for line in printed.splitlines() if line.strip().startswith("nova.quinn@example.org")]
    assert "welcome email YES" in nova

    # The screen is the story: scenes, progress, summary. The functions' output went to the log file it names.
    count = len(scenes(json.loads(SCENARIO.read_text())["steps"])) + len(SCENES)
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
