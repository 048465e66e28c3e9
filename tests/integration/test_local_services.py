"""The local stack's plug-in point for sandboxes (memberflow_local.services): a registered service is started
before the template loads, its parameters and secret values reach the functions, it is bound to the running stack
and stopped with it; `services=False` or a list of names chooses which start."""

from __future__ import annotations

import json
from typing import Any

import pytest

from memberflow_local import LocalSettings, LocalStack
from memberflow_local import services as local_services


class RecordingService:
    name = "recorder"

    def __init__(self, settings: LocalSettings) -> None:
        self.events: list[str] = []
        self.bound_to: Any = None

    @property
    def url(self) -> str:
        return "http://127.0.0.1:9/recorder"

    def start(self) -> None:
        self.events.append("start")

    def stop(self) -> None:
        self.events.append("stop")

    def parameter_overrides(self) -> dict[str, str]:
        return {"LogLevel": "WARNING"}

    def secret_values(self) -> dict[str, str]:
        return {"MailchimpApiSecret": json.dumps({"api_key": "from-the-service-us9"})}

    def bind(self, stack: Any) -> None:
        self.bound_to = stack.endpoints()["api_url"]


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> list[RecordingService]:
    built: list[RecordingService] = []

    def build(settings: LocalSettings) -> RecordingService:
        built.append(RecordingService(settings))
        return built[-1]

    monkeypatch.setattr(local_services, "SERVICES", [("recorder", build)])
    import memberflow_local.stack as stack_module

    monkeypatch.setattr(stack_module, "SERVICES", local_services.SERVICES)
    return built


def _settings() -> LocalSettings:
    return LocalSettings.from_env({}, api_port=0, aws_port=0, mailchimp_port=0)


def test_a_registered_service_configures_the_functions_and_lives_with_the_stack(
    registered: list[RecordingService],
) -> None:
    handlers = {name: (lambda event, context: None) for name in ("WebhookIntakeFunction",)}
    with LocalStack(_settings(), mailchimp=False, pollers=False, handlers=handlers) as stack:
        service = registered[0]
        assert stack.services == {"recorder": service}
        assert service.events == ["start"]
        assert service.bound_to == stack.endpoints()["api_url"]
        assert stack.endpoints()["recorder_url"] == service.url
        intake = stack.template.functions["WebhookIntakeFunction"]
        assert intake.environment["POWERTOOLS_LOG_LEVEL"] == "WARNING"
        secret_arn = stack.physical["MailchimpApiSecret"].ref
        stored = stack.client("secretsmanager").get_secret_value(SecretId=secret_arn)["SecretString"]
        assert json.loads(stored) == {"api_key": "from-the-service-us9"}
    assert service.events == ["start", "stop"]
    assert stack.services == {}


@pytest.mark.parametrize("choice", [False, ["another"]])
def test_services_can_be_left_out(registered: list[RecordingService], choice: Any) -> None:
    with LocalStack(_settings(), mailchimp=False, pollers=False, services=choice) as stack:
        assert stack.services == {}
    assert registered == []
