"""Nothing at the edge answers a bare 500: an error nobody foresaw becomes a JSON 503 (so the platform delivers
again), logged with the correlation id and where it happened, never with what the delivery said."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from memberflow.intake.registry import SourceRegistry, build_registry
from support.intake import Intake


class ExplodingSource:
    name = "generic"
    secret_key = "generic_hmac_secret"
    form_payload_field: str | None = None

    def __init__(self, error: Exception) -> None:
        self.error = error

    def verify(self, secret: str, request: Any, *, now: float, window: int) -> None:
        return None

    def interpret(self, payload: Any, headers: Mapping[str, str]) -> Any:
        raise self.error

    def claimed_email(self, payload: Any) -> str | None:
        return None


class ExplodingQueue:
    def send(self, event: object) -> str:
        raise KeyError("a defect in the router")


def exploding(error: Exception) -> Intake:
    return Intake(registry=SourceRegistry({"generic": lambda: ExplodingSource(error)}))


def unreadable_secrets() -> Mapping[str, Any]:
    raise TypeError("not a mapping: jane@example.org")


@pytest.mark.parametrize(
    "make_intake",
    [
        lambda: exploding(UnicodeEncodeError("utf-8", "\udc00", 0, 1, "surrogates not allowed")),
        lambda: exploding(RuntimeError("jane@example.org")),
        lambda: Intake(queue=ExplodingQueue()),
        lambda: Intake(secrets=unreadable_secrets),
    ],
    ids=["encoding", "runtime", "queue", "secrets"],
)
def test_an_unexpected_error_is_a_json_503_logged_with_the_correlation_id(
    make_intake: Callable[[], Intake], caplog: pytest.LogCaptureFixture
):
    intake = make_intake()
    caplog.set_level(logging.ERROR, logger="memberflow.intake.service")

    answer = intake.deliver_sample("generic_member_joined")

    assert (answer.status, answer.outcome) == (503, "failed")
    assert answer.body["error"] == "internal_error"
    assert "req-1" in answer.body["detail"]
    json.dumps(answer.body)
    assert getattr(intake.queue, "sent", []) == []
    [logged] = [record for record in caplog.records if record.getMessage() == "webhook not handled: unexpected error"]
    assert logged.correlation_id == "req-1"
    assert logged.error_type and logged.where
    # The exception's text may quote the delivery: it is not logged.
    assert "jane@example.org" not in caplog.text


def test_the_intended_503s_keep_their_own_codes():
    intake = Intake(registry=build_registry(), secrets=lambda: {})

    answer = intake.deliver_sample("generic_member_joined")

    assert (answer.status, answer.body["error"]) == (503, "intake_misconfigured")
