"""The sample events in events/ (used for `sam local invoke`, the tests and the demo) have the shapes the
functions' models read."""

import json
from pathlib import Path

import pytest

from memberflow.models import ScheduledRun
from memberflow.pipeline.envelope import QueuedEvent

EVENTS = Path(__file__).resolve().parents[2] / "events"


def test_onboarding_sample_is_an_sqs_batch_of_queued_member_events():
    batch = json.loads((EVENTS / "onboarding" / "sqs_member_events.json").read_text())
    for record in batch["Records"]:
        assert record["eventSource"] == "aws:sqs"
        queued = QueuedEvent.model_validate_json(record["body"])
        assert record["messageAttributes"]["idempotency_key"]["stringValue"] == queued.idempotency_key


def test_drip_sample_carries_the_scheduled_time():
    run = ScheduledRun.model_validate(json.loads((EVENTS / "onboarding_drip" / "scheduled_event.json").read_text()))
    assert run.time is not None and run.id


@pytest.mark.parametrize("source", ["slack", "discourse", "discord", "generic", "mailchimp"])
def test_every_webhook_source_has_sample_deliveries(source):
    samples = [json.loads(p.read_text()) for p in (EVENTS / "webhooks").glob(f"{source}_*.json")]
    assert samples and all(
        sample["source"] == source and "headers" in sample and "body" in sample for sample in samples
    )


def test_the_demo_scenario_is_what_its_generator_builds():
    """events/demo/scenario.json is generated: `python -m memberflow_local.scenario > events/demo/scenario.json`."""
    from memberflow_local.scenario import build_scenario

    assert json.loads((EVENTS / "demo" / "scenario.json").read_text()) == build_scenario()


@pytest.mark.parametrize("path", sorted((EVENTS / "webhooks").glob("*.json")), ids=lambda p: p.stem)
def test_slack_and_discourse_samples_say_where_their_shape_comes_from(path):
    sample = json.loads(path.read_text())
    if sample["source"] in ("slack", "discourse"):
        assert "_source" in sample and len(sample["_source"]) > 40
