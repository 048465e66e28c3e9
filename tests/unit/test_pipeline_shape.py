"""The open pipeline: event types are registered with their destination and consumer, intake routes them as
template.yaml declares, each consumer handles exactly its types, and a source may authenticate from the URL."""

import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pytest

from memberflow.events import CATALOG, EventCatalog, EventType, MemberJoined
from memberflow.events.base import Event
from memberflow.intake.registry import SourceRegistry
from memberflow.intake.service import IntakeDeps, accept_webhook
from memberflow.intake.source import Accepted, WebhookRequest
from memberflow.onboarding.consumer import CONSUMER, handlers
from memberflow.pipeline.envelope import QueuedEvent
from memberflow.signatures import SignatureError
from memberflow_local.template import load_yaml
from support.fakes import MemoryTrace

TEMPLATE = load_yaml(Path(__file__).resolve().parents[2] / "template.yaml")
RESOURCES = TEMPLATE["Resources"]


def _queue_of_destination(destination: str) -> str:
    """The queue logical id that the intake's EVENT_DESTINATIONS maps a destination to (`${Queue}` in a !Sub)."""
    variables = RESOURCES["WebhookIntakeFunction"]["Properties"]["Environment"]["Variables"]
    sub = variables["EVENT_DESTINATIONS"]
    text = sub["Fn::Sub"] if isinstance(sub, dict) else sub
    routes = json.loads(text)
    return routes[destination].removeprefix("${").removesuffix("}")


def _consumers_of(queue: str) -> list[str]:
    return [
        name
        for name, resource in RESOURCES.items()
        if resource["Type"] == "AWS::Serverless::Function"
        for event in resource["Properties"].get("Events", {}).values()
        if event["Type"] == "SQS" and event["Properties"]["Queue"] == {"Fn::GetAtt": [queue, "Arn"]}
    ]


def test_every_event_type_is_routed_to_a_queue_the_template_declares_and_a_function_consumes():
    for event_type in CATALOG:
        queue = _queue_of_destination(event_type.destination)
        assert RESOURCES[queue]["Type"] == "AWS::SQS::Queue", event_type.name
        assert _consumers_of(queue), f"nothing consumes {queue} ({event_type.name})"


def test_the_onboarding_consumer_handles_exactly_the_types_registered_for_it():
    assert sorted(handlers(lambda: None)) == CATALOG.for_consumer(CONSUMER)  # type: ignore[arg-type]


def test_a_new_event_type_is_one_registration_and_travels_in_the_same_envelope():
    class TicketRequested(Event):
        type: Literal["ticket_requested"] = "ticket_requested"
        subject: str

        def trace_subject(self) -> str:
            return "ticket#demo"

    member_events = [event_type for event_type in CATALOG if event_type.destination == "member-events"]
    catalog = EventCatalog(
        [*member_events, EventType("ticket_requested", TicketRequested, "escalations", "escalation")]
    )
    queued = QueuedEvent(idempotency_key="k", correlation_id="c", source="internal", event=TicketRequested(subject="x"))

    again = QueuedEvent.from_json(queued.model_dump_json(), catalog)

    assert isinstance(again.event, TicketRequested) and again.event.subject == "x"
    assert catalog.destinations() == {"member-events", "escalations"}
    with pytest.raises(ValueError, match="twice"):
        catalog.register(EventType("ticket_requested", TicketRequested, "escalations", "escalation"))


class UrlTokenSource:
    """A sender that authenticates with a token in the webhook URL's query string (as Eventbrite's unsigned
    webhooks are protected)."""

    name = "tokened"
    secret_key = "tokened_secret"
    form_payload_field = None

    def verify(self, secret: str, request: WebhookRequest, *, now: float, window: int) -> None:
        if not hmac.compare_digest(request.query.get("token", ""), secret):
            raise SignatureError("invalid_signature", "the URL token does not match")
        assert request.path == "/webhooks/tokened"

    def interpret(self, payload: Any, headers: Mapping[str, str]) -> Accepted:
        from memberflow.models import MemberIdentity

        identity = MemberIdentity(platform="generic", workspace="events", user_id=str(payload["id"]))
        event = MemberJoined(identity=identity, joined_at=datetime(2026, 11, 1, tzinfo=UTC))
        return Accepted(event, f"tokened:{payload['id']}")

    def claimed_email(self, payload: Any) -> str | None:
        return None


@pytest.mark.parametrize(("token", "status"), [("s3cret", 200), ("guess", 401), ("", 401)])
def test_a_source_can_authenticate_with_a_token_in_the_url(token, status):
    sent: list[QueuedEvent] = []
    deps = IntakeDeps(
        queue=type("Queue", (), {"send": lambda self, event: sent.append(event)})(),
        trace=MemoryTrace(),
        secrets=lambda: {"tokened_secret": "s3cret"},
        registry=SourceRegistry({"tokened": UrlTokenSource}),
    )
    answer = accept_webhook(
        "tokened",
        b'{"id": 7}',
        {"content-type": "application/json"},
        deps,
        path="/webhooks/tokened",
        query={"token": token} if token else {},
    )
    assert answer.status == status
    assert len(sent) == (1 if status == 200 else 0)
