"""The Mailchimp sandbox on the shared plumbing: auth, error wording and the server wrapper."""

from __future__ import annotations

import argparse
from typing import Any

from werkzeug.wrappers import Request, Response

from memberflow_sandboxes.base import SandboxApp, SandboxError, SandboxServer, empty_response, serve_until_signalled
from memberflow_sandboxes.mailchimp.api import API_ROUTES, MailchimpApi, subject_hashes
from memberflow_sandboxes.mailchimp.problems import ApiError, field_error, not_found, problem_for_status
from memberflow_sandboxes.mailchimp.projection import project
from memberflow_sandboxes.mailchimp.state import SandboxState, subscriber_hash

API_PREFIX = "/3.0"


class MailchimpApp(SandboxApp[SandboxState]):
    """Words the plumbing's answers as Mailchimp does, since clients branch on status and title."""

    api_prefix = API_PREFIX
    routes = API_ROUTES
    invalid_json_detail = "We encountered an unspecified JSON parsing error."
    admin_routes = {
        ("POST", "/confirm"): "confirm",
        ("POST", "/unsubscribe"): "unsubscribe",
        ("POST", "/clean"): "clean",
        ("POST", "/change_email"): "change_email",
        ("POST", "/journeys"): "add_journey",
        ("POST", "/throttle_signup"): "throttle_signup",
        ("POST", "/shed_load"): "shed_load",
    }

    def __init__(self, state: SandboxState, api_key: str, max_connections: int):
        super().__init__(state, MailchimpApi(state), max_connections)
        self.api_key = api_key

    def error(self, status: int, detail: str) -> ApiError:
        return not_found() if status == 404 else problem_for_status(status, detail)

    def injected_error(self, status: int, targeted: bool) -> SandboxError:
        if targeted:  # keeps the standard title even for a 404, unlike `error`
            return problem_for_status(status, "Injected failure for this email address.")
        if status == 429:
            return self._too_many_connections()
        return super().injected_error(status, targeted)

    def _dispatch(self, request: Request) -> Response:
        # Mailchimp's load shedder answers before the API sees the call: a 403 with no body (which the official
        # client returns instead of raising), not the account's "Forbidden" problem document.
        if self.state.shed_this_call():
            return empty_response(403)
        return super()._dispatch(request)

    def over_limit_response(self) -> Response:
        # A problem document, as Mailchimp sends: with an empty body the official client returns the
        # Response instead of raising, so throttling would pass for success. The `bare_throttle` fault
        # switches to the empty-bodied 429 Mailchimp may send at very high volume. Never a Retry-After.
        return self._too_many_connections().response()

    def _too_many_connections(self) -> ApiError:
        limit = self.gate.limit or 10
        return problem_for_status(
            429,
            f"This account has too many simultaneous connections: you have exceeded the limit of {limit} "
            "simultaneous connections.",
        )

    def respond(self, request: Request, status: int, payload: Any) -> Response:
        if isinstance(payload, dict):
            payload = project(payload, request.args.get("fields"), request.args.get("exclude_fields"))
        return super().respond(request, status, payload)

    def authenticate(self, request: Request) -> None:
        auth = request.authorization
        if auth is None or auth.type != "basic" or auth.password != self.api_key:
            raise ApiError(
                401,
                "API Key Invalid",
                "Your API key may be invalid, or you've attempted to access the wrong datacenter.",
            )

    def subject_key(self, email: str) -> str:
        return subscriber_hash(email)

    def request_subjects(self, route_args: dict[str, str], body: Any) -> set[str]:
        return subject_hashes(route_args, body)

    def seed(self, body: dict[str, Any]) -> dict[str, Any]:
        email = body.get("email", body.get("email_address"))
        if not isinstance(email, str) or not email.strip():
            raise field_error("email", "The seed needs a non-empty 'email' (or 'email_address').")
        merge_fields = body.get("merge_fields")
        if merge_fields is not None and not isinstance(merge_fields, dict):
            raise field_error("merge_fields", "merge_fields must be an object.")
        tags = body.get("tags") or []
        if not isinstance(tags, list) or not all(isinstance(tag, str) and tag for tag in tags):
            raise field_error("tags", "tags must be a list of non-empty strings.")
        member = self.state.seed_member(
            body.get("list_id", "list123"), email, body.get("status", "subscribed"), merge_fields, tuple(tags)
        )
        if body.get("compliance_review"):
            with self.state.lock:
                self.state.compliance_review.add(member["email_address"])
        return member

    def confirm(self, body: dict[str, Any]) -> dict[str, Any]:
        """`POST /_sandbox/confirm` `{"list_id", "email"}`: the member clicks the opt-in confirmation link."""
        for name in ("list_id", "email"):
            if not isinstance(body.get(name), str) or not body[name].strip():
                raise field_error(name, f"The confirmation needs a non-empty '{name}'.")
        return self.state.confirm_opt_in(body["list_id"], body["email"])

    def unsubscribe(self, body: dict[str, Any]) -> dict[str, Any]:
        """`POST /_sandbox/unsubscribe` `{"list_id", "email", "reason"?}`: the member clicks a campaign's unsubscribe
        link (the audience's webhooks hear of it)."""
        self._require(body, "list_id", "email")
        return self.state.unsubscribe(body["list_id"], body["email"], str(body.get("reason") or "manual"))

    def clean(self, body: dict[str, Any]) -> dict[str, Any]:
        """`POST /_sandbox/clean` `{"list_id", "email", "reason"?}`: the address bounced for good."""
        self._require(body, "list_id", "email")
        return self.state.clean(body["list_id"], body["email"], str(body.get("reason") or "hard"))

    def change_email(self, body: dict[str, Any]) -> dict[str, Any]:
        """`POST /_sandbox/change_email` `{"list_id", "email", "new_email"}`: the member changes their address."""
        self._require(body, "list_id", "email", "new_email")
        return self.state.change_email(body["list_id"], body["email"], body["new_email"])

    def add_journey(self, body: dict[str, Any]) -> dict[str, Any]:
        """`POST /_sandbox/journeys` `{"journey_id", "step_id"}`: the account gets a journey with an API-trigger
        starting point (built in Mailchimp's editor; the API cannot create one). From the first one on, a trigger of
        any other journey or step answers 404."""
        self._require(body, "journey_id", "step_id")
        self.state.add_journey(body["journey_id"], body["step_id"])
        return {"journeys": sorted(self.state.journeys or ())}

    def throttle_signup(self, body: dict[str, Any]) -> dict[str, Any]:
        """`POST /_sandbox/throttle_signup` `{"email", "throttled"?: true}`: the address signed up to many lists very
        recently, so Mailchimp refuses to add it for now (400 "Invalid Resource"); `"throttled": false` lifts it."""
        self._require(body, "email")
        throttled = body.get("throttled", True)
        if not isinstance(throttled, bool):
            raise field_error("throttled", "throttled must be true or false.")
        with self.state.lock:
            (self.state.signup_throttled.add if throttled else self.state.signup_throttled.discard)(
                body["email"].lower()
            )
            return {"signup_throttled": sorted(self.state.signup_throttled)}

    def shed_load(self, body: dict[str, Any]) -> dict[str, Any]:
        """`POST /_sandbox/shed_load` `{"calls"?: 1}`: the next `calls` API calls get the bare 403 Mailchimp sends
        when it sheds load at very high volume (0 stops it)."""
        calls = body.get("calls", 1)
        if isinstance(calls, bool) or not isinstance(calls, int) or calls < 0:
            raise field_error("calls", "calls must be a whole number, 0 or more.")
        with self.state.lock:
            self.state.shed_calls = calls
        return {"shed_calls": calls}

    def _require(self, body: dict[str, Any], *names: str) -> None:
        for name in names:
            if not isinstance(body.get(name), str) or not body[name].strip():
                raise field_error(name, f"The request needs a non-empty '{name}'.")


class MailchimpSandbox(SandboxServer):
    """The sandbox server; point the official client's `api_client.host` at `url`."""

    app: MailchimpApp

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str = "sandbox-key-us1",
        max_connections: int = 10,
        lists: tuple[str, ...] = ("list123",),
        merge_fields: tuple[tuple[str, str, str], ...] = (),
        journeys: tuple[tuple[str, str], ...] | None = None,
    ):
        """`journeys`: the (journey id, step id) API triggers the account has; None accepts any (see
        `SandboxState.journeys`)."""
        if "server" in host:
            # The official client rewrites every "server" substring of the URL.
            raise ValueError("the sandbox host must not contain the text 'server'")
        self.api_key = api_key
        self.state = SandboxState(tuple(lists), tuple(merge_fields), journeys)
        super().__init__(MailchimpApp(self.state, api_key, max_connections), host, port, name="mailchimp-sandbox")

    def seed_member(
        self,
        list_id: str,
        email: str,
        status: str,
        merge_fields: dict[str, Any] | None = None,
        tags: tuple[str, ...] | list[str] = (),
    ) -> dict[str, Any]:
        return self.state.seed_member(list_id, email, status, merge_fields, tags)

    def confirm_opt_in(self, list_id: str, email: str) -> dict[str, Any]:
        """Confirm a `pending` member's opt-in: it becomes `subscribed` and leaves compliance state (the audience's
        webhooks hear a `subscribe`)."""
        return self.state.confirm_opt_in(list_id, email)

    def add_webhook(
        self, list_id: str, url: str, events: dict[str, bool] | None = None, sources: dict[str, bool] | None = None
    ) -> dict[str, Any]:
        """Register an audience webhook, as `POST /lists/{id}/webhooks` does (after checking the URL with a GET)."""
        return self.state.webhooks.add(list_id, url, events, sources).as_json()

    def unsubscribe(self, list_id: str, email: str, reason: str = "manual") -> dict[str, Any]:
        return self.state.unsubscribe(list_id, email, reason)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the Mailchimp Marketing API v3 sandbox.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--api-key", default="sandbox-key-us1")
    parser.add_argument("--list", dest="lists", action="append", help="list id to create (repeatable)")
    parser.add_argument("--max-connections", type=int, default=10)
    parser.add_argument(
        "--journey",
        dest="journeys",
        action="append",
        type=_journey,
        help="JOURNEY_ID:STEP_ID of an API-trigger journey the account has (repeatable; none: any is accepted)",
    )
    args = parser.parse_args(argv)
    sandbox = MailchimpSandbox(
        args.host,
        args.port,
        args.api_key,
        args.max_connections,
        tuple(args.lists or ("list123",)),
        journeys=tuple(args.journeys) if args.journeys else None,
    )
    serve_until_signalled(sandbox)


def _journey(value: str) -> tuple[str, str]:
    journey_id, colon, step_id = value.partition(":")
    if not (journey_id and colon and step_id):
        raise argparse.ArgumentTypeError("a journey is JOURNEY_ID:STEP_ID, e.g. 101:201")
    return journey_id, step_id
