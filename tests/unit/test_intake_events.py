"""Eventbrite and Zoom deliveries at intake: Eventbrite's secret URL and api_url host, Zoom's signature, its
endpoint validation and its retries, and what each delivery becomes."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest

from memberflow import signatures
from memberflow.events.registrations import EventbriteChanged, ZoomAttended, ZoomRegistered
from memberflow.intake.service import IntakeResponse, accept_webhook
from support.intake import NOW, SECRETS, Intake, sample

TOKEN = SECRETS["eventbrite_webhook_token"]


def eventbrite(
    intake: Intake, body: dict, *, path: str = f"/webhooks/eventbrite/{TOKEN}", query=None
) -> IntakeResponse:
    raw = json.dumps(body).encode()
    return accept_webhook(
        "eventbrite", raw, {"content-type": "application/json"}, intake.deps, path=path, query=query or {}
    )


def zoom(intake: Intake, body: dict | bytes, headers: dict[str, str] | None = None) -> IntakeResponse:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    if headers is None:
        headers = signatures.sign_zoom(SECRETS["zoom_secret_token"], raw, int(NOW.timestamp()))
    return accept_webhook("zoom", raw, {"content-type": "application/json", **headers}, intake.deps)


def test_an_eventbrite_delivery_with_its_secret_in_the_path_or_the_query_is_queued():
    intake = Intake()
    body = sample("eventbrite_order_placed")["body"]

    by_path = eventbrite(intake, body)
    by_query = eventbrite(intake, body, path="/webhooks/eventbrite", query={"token": TOKEN})

    assert by_path.status == by_query.status == 200
    event = intake.queue.sent[0].event
    assert isinstance(event, EventbriteChanged)
    assert (event.action, event.api_url) == ("order.placed", "https://www.eventbriteapi.com/v3/orders/1234567890/")
    assert intake.queue.sent[0].idempotency_key.startswith("eventbrite:order.placed:/orders/1234567890/")


@pytest.mark.parametrize(
    ("path", "query", "error"),
    [
        ("/webhooks/eventbrite/guess", {}, "invalid_signature"),
        ("/webhooks/eventbrite", {"token": "guess"}, "invalid_signature"),
        ("/webhooks/eventbrite", {}, "missing_signature"),
    ],
)
def test_a_wrong_or_missing_eventbrite_secret_is_refused(path, query, error):
    intake = Intake()
    answer = eventbrite(intake, sample("eventbrite_order_placed")["body"], path=path, query=query)
    assert (answer.status, answer.body["error"]) == (401, error)
    assert intake.queue.sent == []


@pytest.mark.parametrize(
    "api_url",
    [
        "https://evil.example.org/v3/orders/1/",
        "http://www.eventbriteapi.com/v3/orders/1/",
        "https://www.eventbriteapi.com.evil.example.org/v3/orders/1/",
        "https://user@www.eventbriteapi.com/v3/orders/1/",
        "https://www.eventbriteapi.com/v3/users/me/",
        "https://www.eventbriteapi.com/v3/orders/1/../../users/me/",
    ],
)
def test_an_api_url_off_the_eventbrite_api_is_refused_naming_the_field(api_url):
    intake = Intake()
    body = {**sample("eventbrite_order_placed")["body"], "api_url": api_url}
    answer = eventbrite(intake, body)
    assert answer.status == 400
    assert answer.body["problems"][0]["field"] == "api_url"
    assert intake.queue.sent == []


def test_an_eventbrite_action_that_is_not_a_registration_is_acknowledged_not_queued():
    intake = Intake()
    body = {**sample("eventbrite_order_placed")["body"], "config": {"action": "event.published"}}
    answer = eventbrite(intake, body)
    assert (answer.status, answer.body["status"]) == (200, "ignored")
    assert intake.queue.sent == []


def test_zoom_url_validation_is_answered_with_the_hmac_of_the_plain_token():
    intake = Intake()
    answer = zoom(intake, sample("zoom_url_validation")["body"])
    expected = hmac.new(b"zoom-secret-token", b"qgg8vlvZRS6UYooatFL8Aw", hashlib.sha256).hexdigest()
    assert (answer.status, answer.body) == (200, {"plainToken": "qgg8vlvZRS6UYooatFL8Aw", "encryptedToken": expected})
    assert intake.queue.sent == []


def test_zoom_registration_and_participant_become_registration_events():
    intake = Intake()
    assert zoom(intake, sample("zoom_webinar_registration_created")["body"]).status == 200
    assert zoom(intake, sample("zoom_webinar_participant_joined")["body"]).status == 200
    registered, attended = (queued.event for queued in intake.queue.sent)
    assert registered == ZoomRegistered(
        zoom_id="98765432101", email="jchill@example.com", name="Jill Chill", at=datetime.fromtimestamp(1764583200, UTC)
    )
    assert attended == ZoomAttended(
        zoom_id="98765432101",
        email="jchill@example.com",
        name="Jill Chill",
        at=datetime(2026, 12, 3, 17, 4, 51, tzinfo=UTC),
    )


def test_an_unsigned_or_forged_zoom_webhook_is_refused():
    intake = Intake()
    body = json.dumps(sample("zoom_webinar_registration_created")["body"]).encode()
    ts = int(NOW.timestamp())

    unsigned = zoom(intake, body, {})
    forged = zoom(intake, body, signatures.sign_zoom("not-the-secret", body, ts))
    tampered = zoom(intake, body.replace(b"jchill", b"mallory"), signatures.sign_zoom("zoom-secret-token", body, ts))
    validation = json.dumps(sample("zoom_url_validation")["body"]).encode()
    forged_validation = zoom(intake, validation, signatures.sign_zoom("not-the-secret", validation, ts))

    assert [a.status for a in (unsigned, forged, tampered, forged_validation)] == [401, 401, 401, 401]
    assert unsigned.body["error"] == "missing_signature" and forged.body["error"] == "invalid_signature"
    assert "encryptedToken" not in forged_validation.body
    assert intake.queue.sent == []


@pytest.mark.parametrize(("minutes_late", "status"), [(5, 200), (25, 200), (85, 200), (24 * 60, 401)])
def test_zoom_retries_within_its_retry_schedule_pass_the_replay_window(minutes_late, status):
    intake = Intake()
    body = json.dumps(sample("zoom_webinar_registration_created")["body"]).encode()
    sent_at = int(NOW.timestamp()) - minutes_late * 60
    answer = zoom(intake, body, signatures.sign_zoom("zoom-secret-token", body, sent_at))
    assert answer.status == status


@pytest.mark.parametrize(("minutes_ahead", "status"), [(4, 200), (6, 401), (90, 401)])
def test_a_zoom_timestamp_ahead_of_our_clock_gets_only_the_usual_window(minutes_ahead, status):
    # The retry schedule widens the window into the past only: nothing Zoom sends is post-dated.
    intake = Intake()
    body = json.dumps(sample("zoom_webinar_registration_created")["body"]).encode()
    sent_at = int(NOW.timestamp()) + minutes_ahead * 60
    answer = zoom(intake, body, signatures.sign_zoom("zoom-secret-token", body, sent_at))
    assert answer.status == status
    if status == 401:
        assert answer.body["error"] == "stale_timestamp" and "future" in answer.body["detail"]


def test_a_zoom_participant_without_an_address_is_acknowledged_not_queued():
    intake = Intake()
    body = sample("zoom_webinar_participant_joined")["body"]
    del body["payload"]["object"]["participant"]["email"]
    answer = zoom(intake, body)
    assert (answer.status, answer.body["status"]) == (200, "ignored")
