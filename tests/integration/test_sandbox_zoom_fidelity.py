"""The Zoom webhook sender as a receiver written from Zoom's documentation sees it: each delivery signed
`x-zm-signature: v0=<hex HMAC-SHA256 of "v0:{x-zm-request-timestamp}:{raw body}">` with the timestamp in seconds, the
endpoint validation (plainToken / encryptedToken), and the payloads of webinar registrations and of participants who
joined a webinar or a meeting.

Shapes: ../shared/reference (Zoom) and the examples of Zoom's webhook reference (as copied in kss-zoom's
MultipleEvents.kt example: `webinar.registration_created` names the webinar by a numeric id, `*.participant_joined`
by a string id; a meeting's `type` is a meeting type)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from memberflow_sandboxes.zoom import ZoomWebhookSender

SECRET = "zoom-secret-token"


class ZoomReceiver:
    """An endpoint written from Zoom's docs: checks the signature, answers the validation, keeps the events."""

    def __init__(self) -> None:
        self.events: list[tuple[dict[str, str], bytes]] = []
        self.bad_signatures = 0
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def _app(self, environ, start_response):
        request = Request(environ)
        raw = request.get_data()
        timestamp = request.headers.get("x-zm-request-timestamp", "")
        message = b"v0:" + timestamp.encode() + b":" + raw
        expected = "v0=" + hmac.new(SECRET.encode(), message, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.headers.get("x-zm-signature", "")):
            self.bad_signatures += 1
            return Response("", 401)(environ, start_response)
        self.events.append((dict(request.headers), raw))
        body = json.loads(raw)
        if body["event"] == "endpoint.url_validation":
            plain = body["payload"]["plainToken"]
            encrypted = hmac.new(SECRET.encode(), plain.encode(), hashlib.sha256).hexdigest()
            answer = json.dumps({"plainToken": plain, "encryptedToken": encrypted})
            return Response(answer, 200, content_type="application/json")(environ, start_response)
        return Response("", 204)(environ, start_response)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/webhooks/zoom"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def zoom():
    receiver = ZoomReceiver()
    sender = ZoomWebhookSender(SECRET)
    sender.url = receiver.url
    yield sender, receiver
    receiver.close()


def test_every_delivery_is_signed_over_its_timestamp_in_seconds_and_the_validation_is_answered(zoom):
    sender, receiver = zoom

    assert sender.validate_endpoint()
    sender.registration_created("98765432101", "jill@example.com", "Jill", "Chill")

    assert receiver.bad_signatures == 0 and len(receiver.events) == 2
    for headers, _ in receiver.events:
        assert abs(int(headers["X-Zm-Request-Timestamp"]) - time.time()) < 30  # seconds, not milliseconds
        assert headers["Content-Type"].startswith("application/json")
    validation = json.loads(receiver.events[0][1])
    assert validation["event"] == "endpoint.url_validation" and validation["payload"]["plainToken"]
    assert abs(validation["event_ts"] / 1000 - time.time()) < 30  # event_ts in milliseconds

    sender.secret_token = "another-secret"  # an app whose secret is not the receiver's
    assert not sender.validate_endpoint() and receiver.bad_signatures == 1


def test_a_webinar_registration_names_the_webinar_by_a_numeric_id_and_an_approved_registrant(zoom):
    sender, receiver = zoom

    answer = sender.registration_created("98765432101", "jill@example.com", "Jill", "Chill")

    assert answer.status_code == 204
    body = json.loads(receiver.events[0][1])
    assert body["event"] == "webinar.registration_created"
    webinar = body["payload"]["object"]
    assert webinar["id"] == 98765432101  # a JSON number in this event
    assert webinar["type"] == 5 and webinar["uuid"] and webinar["topic"]
    registrant = webinar["registrant"]
    assert (registrant["email"], registrant["first_name"], registrant["last_name"]) == (
        "jill@example.com",
        "Jill",
        "Chill",
    )
    assert registrant["id"] and registrant["status"] == "approved" and registrant["join_url"]


@pytest.mark.parametrize(("kind", "types"), [("webinar", {5, 6, 9}), ("meeting", {1, 2, 3, 4, 8})])
def test_a_participant_who_joined_is_named_under_the_meeting_or_webinar_with_its_id_as_a_string(zoom, kind, types):
    sender, receiver = zoom

    sender.participant_joined("98765432101", "jill@example.com", "Jill Chill", kind=kind)

    body = json.loads(receiver.events[0][1])
    assert body["event"] == f"{kind}.participant_joined"
    meeting = body["payload"]["object"]
    assert meeting["id"] == "98765432101" and meeting["type"] in types
    participant = meeting["participant"]
    assert (participant["email"], participant["user_name"]) == ("jill@example.com", "Jill Chill")
    assert participant["join_time"].endswith("Z")
