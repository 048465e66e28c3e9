"""The scheduled redrive sends a dead-letter queue's parked messages back only once the services its consumer calls
answer, as REDRIVE_WAITS_ON declares them (template.yaml: escalations wait on Zendesk, registrations on Eventbrite and
Mailchimp, member events and imports on Mailchimp; a queue not listed waits on Mailchimp). Each service is asked once
per run, its probe is one cheap authenticated read, and the redrive needs no other function's settings."""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from memberflow.adapters import sqs
from memberflow.adapters.eventbrite import EventbriteClient
from memberflow.adapters.mailchimp import MailchimpList
from memberflow.adapters.zendesk import ZendeskDesk
from memberflow.config import ConfigError
from memberflow.pipeline.redrive import ParkedMessage, redrive_parked
from memberflow.runtime.container import Container, reset

QUEUES = "https://sqs.us-east-1.amazonaws.com/123456789012"
DEAD_LETTERS = {
    "onboarding": f"{QUEUES}/memberflow-MemberEventsDeadLetterQueue-1A2B3C4D5E6F",
    "escalation": f"{QUEUES}/memberflow-EscalationsDeadLetterQueue-2B3C4D5E6F7A",
    "member-import": f"{QUEUES}/memberflow-MemberImportDeadLetterQueue-3C4D5E6F7A8B",
    "event_sync": f"{QUEUES}/memberflow-RegistrationsDeadLetterQueue-4D5E6F7A8B9C",
}
WAITS_ON = {
    DEAD_LETTERS["onboarding"]: ["mailchimp"],
    DEAD_LETTERS["escalation"]: ["zendesk"],
    DEAD_LETTERS["member-import"]: ["mailchimp"],
    DEAD_LETTERS["event_sync"]: ["eventbrite", "mailchimp"],
}
SETTINGS = {
    "REDRIVES": json.dumps({url: url.replace("DeadLetter", "") for url in DEAD_LETTERS.values()}),
    "REDRIVE_WAITS_ON": json.dumps(WAITS_ON),
}
MAILCHIMP_SETTINGS = {
    "MAILCHIMP_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:1:secret:mailchimp",
    "MAILCHIMP_LIST_ID": "list1",
}
# Only what the probes read (config.ZendeskApiSettings, EventbriteClientSettings): none of the escalation's or event
# sync's other variables.
ZENDESK_SETTINGS = {
    "ZENDESK_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:1:secret:zendesk",
    "ZENDESK_SUBDOMAIN": "community",
}
EVENTBRITE_SETTINGS = {"EVENTBRITE_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:1:secret:eventbrite"}
SERVICES = ("mailchimp", "zendesk", "eventbrite")


def parked(message_id: str) -> ParkedMessage:
    return ParkedMessage(message_id, "{}", {"retryable": "true", "failure_kind": "outage"})


class FakeDeadLetters:
    """`SqsDeadLetters` over one message parked in each dead-letter queue."""

    received: list[str] = []
    sent_back: list[str] = []

    def __init__(self, dead_letter_queue_url: str, source_queue_url: str) -> None:
        self.url = dead_letter_queue_url

    def receive(self, max_messages: int) -> list[ParkedMessage]:
        FakeDeadLetters.received.append(self.url)
        return [parked(f"parked-in-{self.url}")]

    def send_back(self, message: ParkedMessage, redrives: int) -> None:
        FakeDeadLetters.sent_back.append(self.url)


class Services:
    """Whether each service answers, and how often its probe was asked."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.up = dict.fromkeys(SERVICES, True)
        self.asked = dict.fromkeys(SERVICES, 0)
        for adapter, service in zip((MailchimpList, ZendeskDesk, EventbriteClient), SERVICES, strict=True):
            monkeypatch.setattr(adapter, "is_available", self._probe(service))

    def _probe(self, service: str) -> Any:
        def is_available(adapter: Any) -> bool:
            self.asked[service] += 1
            return self.up[service]

        return is_available


@pytest.fixture
def services(monkeypatch: pytest.MonkeyPatch) -> Iterator[Services]:
    for name, value in {**SETTINGS, **MAILCHIMP_SETTINGS, **ZENDESK_SETTINGS, **EVENTBRITE_SETTINGS}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sqs, "SqsDeadLetters", FakeDeadLetters)
    FakeDeadLetters.received, FakeDeadLetters.sent_back = [], []
    reset()
    yield Services(monkeypatch)
    reset()


def configure(monkeypatch: pytest.MonkeyPatch, redrives: dict[str, str], waits_on: dict[str, Any] | None) -> None:
    monkeypatch.setenv("REDRIVES", json.dumps(redrives))
    if waits_on is None:
        monkeypatch.delenv("REDRIVE_WAITS_ON", raising=False)
    else:
        monkeypatch.setenv("REDRIVE_WAITS_ON", json.dumps(waits_on))
    reset()


def redriven() -> set[str]:
    return {consumer for consumer, url in DEAD_LETTERS.items() if url in FakeDeadLetters.sent_back}


def test_during_a_zendesk_outage_the_escalations_stay_parked_and_the_others_go_back(services: Services):
    services.up["zendesk"] = False

    report = Container().redrive_parked()

    assert redriven() == {"onboarding", "member-import", "event_sync"}
    assert DEAD_LETTERS["escalation"] not in FakeDeadLetters.received  # not even hidden from an operator's look
    assert report.service_available is False and report.failing_services == ["zendesk"]
    assert (report.redriven, report.kept) == (3, 0)


def test_during_a_mailchimp_outage_the_escalations_still_go_back(services: Services):
    services.up["mailchimp"] = False

    report = Container().redrive_parked()

    assert redriven() == {"escalation"}
    assert report.failing_services == ["mailchimp"]
    assert services.asked["mailchimp"] == 1  # asked once for its three queues, as before


def test_registrations_wait_on_eventbrite_as_well(services: Services):
    services.up["eventbrite"] = False

    report = Container().redrive_parked()

    assert redriven() == {"onboarding", "member-import", "escalation"}
    assert report.failing_services == ["eventbrite"]


def test_when_every_service_answers_every_queue_goes_back_and_each_service_is_asked_once(services: Services):
    report = Container().redrive_parked()

    assert redriven() == set(DEAD_LETTERS)
    assert report.service_available is True and report.failing_services == []
    assert services.asked == {"mailchimp": 1, "zendesk": 1, "eventbrite": 1}


def test_each_queue_logs_the_services_it_waited_on(services: Services, caplog: pytest.LogCaptureFixture):
    services.up["zendesk"] = False

    with caplog.at_level(logging.INFO):
        Container().redrive_parked()

    looked_at = {r.dead_letter_queue: r for r in caplog.records if r.getMessage() == "dead-letter queue looked at"}
    assert {name: r.services for name, r in looked_at.items()} == {
        "memberflow-MemberEventsDeadLetterQueue-1A2B3C4D5E6F": ["mailchimp"],
        "memberflow-EscalationsDeadLetterQueue-2B3C4D5E6F7A": ["zendesk"],
        "memberflow-MemberImportDeadLetterQueue-3C4D5E6F7A8B": ["mailchimp"],
        "memberflow-RegistrationsDeadLetterQueue-4D5E6F7A8B9C": ["eventbrite", "mailchimp"],
    }
    assert looked_at["memberflow-EscalationsDeadLetterQueue-2B3C4D5E6F7A"].service_available is False
    [skipped] = [r for r in caplog.records if r.getMessage().startswith("redrive skipped")]
    assert skipped.service == "zendesk"


def test_what_a_queue_waits_on_is_configured_not_read_from_its_name(
    services: Services, monkeypatch: pytest.MonkeyPatch
):
    # Names that say nothing (a renamed stack, a queue cut short) or mislead: only REDRIVE_WAITS_ON counts.
    support, members = f"{QUEUES}/q-1", f"{QUEUES}/memberflow-MemberEventsDeadLetterQueue-9Z"
    configure(
        monkeypatch,
        {support: f"{QUEUES}/q-2", members: f"{QUEUES}/q-3"},
        {support: ["mailchimp"], members: ["zendesk"]},
    )
    services.up["zendesk"] = False

    report = Container().redrive_parked()

    assert FakeDeadLetters.sent_back == [support] and report.failing_services == ["zendesk"]


def test_a_queue_redrive_waits_on_does_not_list_waits_on_mailchimp(services: Services, monkeypatch: pytest.MonkeyPatch):
    unlisted = f"{QUEUES}/SomethingElse-DLQ"
    configure(monkeypatch, {unlisted: f"{QUEUES}/SomethingElse"}, None)
    services.up["mailchimp"] = False

    report = Container().redrive_parked()

    assert FakeDeadLetters.sent_back == [] and report.failing_services == ["mailchimp"]
    assert services.asked == {"mailchimp": 1, "zendesk": 0, "eventbrite": 0}


def test_a_function_without_a_services_settings_fails_the_run_before_touching_any_queue(
    services: Services, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("ZENDESK_SECRET_ARN")
    reset()

    with pytest.raises(ConfigError, match="ZENDESK_SECRET_ARN"):
        Container().redrive_parked()

    # No queue waits on Mailchimp's answer instead: the run fails (an alarm), and nothing was read or sent back.
    assert FakeDeadLetters.received == [] and FakeDeadLetters.sent_back == []
    assert services.asked == {"mailchimp": 0, "zendesk": 0, "eventbrite": 0}


def test_only_the_settings_of_services_some_queue_waits_on_are_needed(
    services: Services, monkeypatch: pytest.MonkeyPatch
):
    for name in (*MAILCHIMP_SETTINGS, *EVENTBRITE_SETTINGS):
        monkeypatch.delenv(name)
    escalations = DEAD_LETTERS["escalation"]
    configure(monkeypatch, {escalations: f"{QUEUES}/escalations"}, {escalations: ["zendesk"]})

    report = Container().redrive_parked()

    assert FakeDeadLetters.sent_back == [escalations] and report.service_available is True


@pytest.mark.parametrize(
    ("waits_on", "problem"),
    [
        (
            {DEAD_LETTERS["escalation"]: ["zendesk", "slack"]},
            "REDRIVE_WAITS_ON.*mailchimp.*zendesk.*eventbrite",
        ),  # a service there is no probe for
        ({DEAD_LETTERS["escalation"]: []}, "one service at least"),
        ({f"{QUEUES}/not-redriven-DLQ": ["zendesk"]}, "REDRIVES does not redrive"),  # a typo in a queue's name
        ("zendesk", "REDRIVE_WAITS_ON"),
    ],
)
def test_a_wrong_redrive_waits_on_fails_at_cold_start_and_names_the_problem(
    services: Services, monkeypatch: pytest.MonkeyPatch, waits_on: Any, problem: str
):
    configure(monkeypatch, json.loads(SETTINGS["REDRIVES"]), waits_on)

    with pytest.raises(ConfigError, match=problem):
        Container().redrive_parked()
    assert FakeDeadLetters.received == []


def test_a_queue_is_neither_read_nor_redriven_while_a_service_it_needs_fails():
    class Untouchable(FakeDeadLetters):
        def receive(self, max_messages: int) -> list[ParkedMessage]:
            raise AssertionError("read while its service fails")

    report = redrive_parked(Untouchable("dlq", "queue"), {"eventbrite": lambda: False, "mailchimp": lambda: True})

    assert report.service_available is False and report.failing_services == ["eventbrite"]


def test_the_zendesk_probe_waits_out_no_rate_limit_and_reaches_the_configured_host(
    services: Services, monkeypatch: pytest.MonkeyPatch
):
    built: list[dict[str, Any]] = []
    original = ZendeskDesk.__init__

    def record(desk: ZendeskDesk, credentials: Any, subdomain: str, **options: Any) -> None:
        built.append({"subdomain": subdomain, **options})
        original(desk, credentials, subdomain, **options)

    monkeypatch.setattr(ZendeskDesk, "__init__", record)
    monkeypatch.setenv("ZENDESK_API_URL", "http://127.0.0.1:8030")
    monkeypatch.setenv("ZENPY_FORCE_NETLOC", "unchanged")  # restored after the test: ZendeskDesk sets it
    reset()

    Container().redrive_parked()

    assert built == [{"subdomain": "community", "api_url": "http://127.0.0.1:8030", "ratelimit_budget_seconds": 1}]


# ---------------------------------------------------------------- the Zendesk probe


class Zendesk(BaseHTTPRequestHandler):
    """`GET /api/v2/users/me.json` as Zendesk answers it: the API user for the right credentials, else 401."""

    requests: list[str] = []
    status = 200

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        Zendesk.requests.append(self.path)
        expected = "Basic " + base64.b64encode(b"api@example.org/token:right-token").decode()
        if Zendesk.status != 200:
            status, body = Zendesk.status, {"error": "ServiceUnavailable"}
        elif self.headers.get("Authorization") != expected:
            status, body = 401, {"error": "Couldn't authenticate you"}
        elif self.path.startswith("/api/v2/users/me.json"):
            status, body = 200, {"user": {"id": 7, "name": "memberflow", "role": "agent"}}
        else:
            status, body = 404, {"error": "InvalidEndpoint"}
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


@pytest.fixture
def zendesk(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    # ZendeskDesk points zenpy at another host through these variables: restored after the test.
    monkeypatch.setenv("ZENPY_FORCE_SCHEME", "https")
    monkeypatch.setenv("ZENPY_FORCE_NETLOC", "community.zendesk.com")
    Zendesk.requests, Zendesk.status = [], 200
    server = ThreadingHTTPServer(("127.0.0.1", 0), Zendesk)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def desk(api_url: str, token: str) -> ZendeskDesk:
    return ZendeskDesk(lambda: {"email": "api@example.org", "api_token": token}, "community", api_url=api_url)


def test_zendesk_is_available_when_it_answers_one_read_of_the_api_user(zendesk: str):
    assert desk(zendesk, "right-token").is_available() is True
    assert [path.split("?")[0] for path in Zendesk.requests] == ["/api/v2/users/me.json"]


def test_zendesk_is_not_available_when_it_refuses_the_credentials_or_fails(zendesk: str):
    assert desk(zendesk, "wrong-token").is_available() is False
    Zendesk.status = 503
    Zendesk.requests = []
    assert desk(zendesk, "right-token").is_available() is False
    assert len(Zendesk.requests) == 1  # not resent: the redrive's check stays one call
