"""`make demo` must keep working: the whole scenario on the local stack, with every check against the sandbox."""

import pytest

from memberflow_local.demo import run_demo
from memberflow_local.settings import LocalSettings

pytestmark = pytest.mark.e2e


def test_demo_scenario_passes_every_check_against_the_sandbox(capsys, monkeypatch):
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    settings = LocalSettings.from_env(api_port=0, aws_port=0, mailchimp_port=0, log_level="ERROR")

    assert run_demo(settings=settings) == 0

    printed = capsys.readouterr().out
    assert "demo finished" in printed and ": OK" in printed
    assert "401 invalid_signature: forged Slack signature" in printed
    assert "400 invalid_json: malformed Discourse body" in printed
    assert "former.member@example.org" in printed and "opted out earlier" in printed
