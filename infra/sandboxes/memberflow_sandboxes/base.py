"""Plumbing shared by every sandbox: the request pipeline, admin endpoints and the server thread.

A sandbox subclasses `SandboxApp` (routes plus a few hooks for how the service words
its errors) and `SandboxServer` (constructor and service-specific helpers). Everything
else, the connection limit, fault injection, `/_sandbox/` controls, request counts
and the background server, behaves the same across sandboxes so tests can rely on it.
"""

from __future__ import annotations

import copy
import json
import re
import signal
import threading
import traceback
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, ClassVar, Generic, Self, TypeVar

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from memberflow_sandboxes.keepalive import KeepAlive
from memberflow_sandboxes.traffic import Budget, ConcurrencyGate, FaultInjector, FaultSettings, budget_from

ADMIN_PREFIX = "/_sandbox"
SHUTDOWN_POLL_SECONDS = 0.05
"""How often an idle server (a sandbox, the local stack's HTTP API and moto) looks for a stop request: the standard
library's 0.5 s made each stop wait that long."""
JSON = "application/json; charset=utf-8"
NOT_FOUND_DETAIL = "The requested resource could not be found."
INTERNAL_ERROR_DETAIL = "An unexpected internal error has occurred."

_ROUTE_ARGUMENT = re.compile(r"<(?:[^:<>]+:)?([^:<>]+)>")

# A handler takes (request, parsed body, **route arguments) and returns (status, payload);
# a None payload is answered without a body.
Reply = tuple[int, Any]


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, content_type=JSON)


def empty_response(status: int) -> Response:
    """A body-less answer; without a Content-Type, API clients do not try to decode it."""
    response = Response(status=status)
    del response.headers["Content-Type"]
    return response


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


class SandboxError(Exception):
    """An error answer; services subclass it to render their own error documents."""

    def __init__(self, status: int, detail: str, headers: Mapping[str, str] | None = None):
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail
        self.headers = dict(headers or {})

    def response(self) -> Response:
        response = json_response({"status": self.status, "detail": self.detail}, self.status)
        response.headers.update(self.headers)
        return response


class BaseState:
    """Sandbox data guarded by one re-entrant lock, which handlers hold while they run."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.request_counts: Counter[int] = Counter()
        self.calls: Counter[str] = Counter()
        """Calls per endpoint, keyed "METHOD /route/{template}" (e.g. "POST /lists/{list_id}"), whatever the
        answer: what a bench counts as calls made."""
        self.budget = self.fresh_budget()
        """The service's rate limit; a sandbox that enforces one takes from it in `authenticate`."""

    def fresh_budget(self) -> Budget:
        """The budget a new or reset sandbox starts with: unlimited unless the service has a default limit."""
        return Budget()

    def reset(self) -> None:
        with self.lock:
            self.request_counts.clear()
            self.calls.clear()
            self.budget = self.fresh_budget()

    def record_status(self, status: int) -> None:
        with self.lock:
            self.request_counts[status] += 1

    def record_call(self, endpoint: str) -> None:
        with self.lock:
            self.calls[endpoint] += 1

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "request_counts": {str(status): n for status, n in sorted(self.request_counts.items())},
                "calls": dict(sorted(self.calls.items())),
            }


StateT = TypeVar("StateT", bound=BaseState)


class RotatingSecret:
    """The one API key or token a service accepts now. A rotation retires the one before it (some services word
    their refusal of a retired one differently from that of one never issued); a reset brings back the first."""

    def __init__(self, initial: str) -> None:
        self.initial = initial
        self.current = initial
        self._retired: set[str] = set()
        self._lock = threading.Lock()

    def rotate(self, new: str) -> None:
        if not new:
            raise ValueError("the new secret must not be empty")
        with self._lock:
            self._retired.add(self.current)
            self._retired.discard(new)
            self.current = new

    def retired(self, sent: str) -> bool:
        with self._lock:
            return sent in self._retired

    def reset(self) -> None:
        with self._lock:
            self.current, self._retired = self.initial, set()


class SandboxApp(Generic[StateT]):
    """WSGI entry point: admin endpoints, then the connection gate, latency, auth, faults and routing.

    Order matters and mirrors real services: over-limit requests are refused before any
    work, slow requests hold their connection slot, random faults hit authenticated calls
    whatever their route, and targeted faults only calls that name a failing address.
    """

    api_prefix: ClassVar[str] = ""
    routes: ClassVar[Map] = Map()
    # Service-specific test controls: (method, path under /_sandbox) -> name of an app method
    # taking the JSON object body and returning the payload answered with 200.
    admin_routes: ClassVar[dict[tuple[str, str], str]] = {}
    invalid_json_detail: ClassVar[str] = "The request body is not valid JSON."
    credential_name: ClassVar[str] = "api_key"
    """The field of `/_sandbox/key`-style rotation bodies (`rotate`) that names the new credential."""

    def __init__(
        self, state: StateT, api: object, max_connections: int | None = None, credential: str | None = None
    ) -> None:
        self.state = state
        self.api = api  # the object whose methods the routes' endpoints name
        self.gate = ConcurrencyGate(max_connections)
        self.faults = FaultInjector(self.subject_key)
        self.credential = RotatingSecret(credential) if credential is not None else None
        """The key or token the service accepts, for sandboxes that can rotate it (`rotate`)."""

    # -- hooks a service overrides

    def error(self, status: int, detail: str) -> SandboxError:
        """The service's wording for errors raised by the plumbing (404, 405, bad bodies, crashes)."""
        return SandboxError(status, detail)

    def injected_error(self, status: int, targeted: bool) -> SandboxError:
        """The answer to an injected fault; a service adds e.g. Retry-After here."""
        if targeted:
            return self.error(status, "Injected failure for this email address.")
        return self.error(status, INTERNAL_ERROR_DETAIL if status >= 500 else "Too many requests.")

    def over_limit_response(self) -> Response:
        """The answer beyond the connection limit (unless the `bare_throttle` fault asks for an empty 429)."""
        return self.error(429, "Too many simultaneous connections.").response()

    def authenticate(self, request: Request) -> None:
        """Raise a SandboxError when the request's credentials are wrong."""

    def subject_key(self, email: str) -> str:
        return email.lower()

    def request_subjects(self, route_args: dict[str, str], body: Any) -> set[str]:
        """Keys (see `subject_key`) of the addresses a call is about, for targeted faults."""
        return set()

    def seed(self, body: dict[str, Any]) -> dict[str, Any]:
        """`POST /_sandbox/seed`: store test data as-is and return it."""
        raise self.error(404, NOT_FOUND_DETAIL)

    def respond(self, request: Request, status: int, payload: Any) -> Response:
        """Render a handler's successful reply; error documents never pass through here."""
        return empty_response(status) if payload is None else json_response(payload, status)

    def parse_body(self, request: Request) -> Any:
        raw = request.get_data(cache=True)
        if not raw.strip():
            return None
        try:
            body = json.loads(raw)
            # A lone surrogate escape ("\udc00") is JSON syntax but no text: strict parsers refuse it.
            json.dumps(body, ensure_ascii=False).encode()
            return body
        except (ValueError, UnicodeError):
            raise self.error(400, self.invalid_json_detail) from None

    # -- shared behaviour

    def object_body(self, body: Any) -> dict[str, Any]:
        if body is None:
            return {}
        if not isinstance(body, dict):
            raise self.error(400, "The request body must be a JSON object.")
        return body

    def reset(self) -> None:
        self.state.reset()
        self.faults.configure(FaultSettings())
        if self.credential is not None:
            self.credential.reset()

    # -- test controls shared by several sandboxes (each lists the ones it offers in `admin_routes`)

    def rotate(self, body: dict[str, Any]) -> dict[str, Any]:
        """`{"<credential_name>": "new"}`: the credential is rotated; the one before it is retired."""
        if self.credential is None:
            raise self.error(404, NOT_FOUND_DETAIL)
        new = str(body.get(self.credential_name) or "")
        if not new:
            raise ValueError(f"{self.credential_name} is required")
        self.credential.rotate(new)
        return {"rotated": True}

    def set_budget(self, body: dict[str, Any]) -> dict[str, Any]:
        """`{"requests": N | null, "window_seconds": W}`: the service's rate limit from now (null: none)."""
        budget = budget_from(body)
        with self.state.lock:
            self.state.budget = budget
        return {"requests": budget.requests, "window_seconds": budget.window_seconds}

    def seed_users(
        self, into: list[dict[str, Any]], body: dict[str, Any], valid_id: Callable[[Any], bool], id_rule: str
    ) -> dict[str, Any]:
        """`{"users": [...]}`: copies of the users appended to `into` (a state list), each checked for an id."""
        users = body.get("users")
        if not isinstance(users, list) or not all(isinstance(u, dict) and valid_id(u.get("id")) for u in users):
            raise ValueError(f"users must be a list of users, each with {id_rule}")
        with self.state.lock:
            into.extend(copy.deepcopy(users))
            return {"users": len(into)}

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        if _under(request.path, ADMIN_PREFIX):
            response = self._admin(request)
        else:
            self.state.record_call(self.endpoint_key(request))
            response = self._gated(request)
            self.state.record_status(response.status_code)
        return response(environ, start_response)

    def endpoint_key(self, request: Request) -> str:
        """ "METHOD /route/{template}" of a call, or "METHOD (unknown)" when no route matches."""
        path = request.path[len(self.api_prefix) :] if _under(request.path, self.api_prefix) else None
        if path is None:
            return f"{request.method} (unknown)"
        try:
            rule, _ = self.routes.bind("sandbox", path_info=path or "/").match(method=request.method, return_rule=True)
        except HTTPException:
            return f"{request.method} (unknown)"
        template = _ROUTE_ARGUMENT.sub(r"{\1}", rule.rule)
        return f"{request.method} {template}"

    def _gated(self, request: Request) -> Response:
        if not self.gate.try_enter():
            return empty_response(429) if self.faults.settings.bare_throttle else self.over_limit_response()
        try:
            self.faults.delay()  # inside the gate: slow requests occupy a connection slot
            return self._answer(request)
        finally:
            self.gate.leave()

    def _answer(self, request: Request) -> Response:
        try:
            return self._dispatch(request)
        except SandboxError as error:
            return error.response()
        except Exception:  # a sandbox bug still answers the way the service would
            traceback.print_exc()
            return self.error(500, INTERNAL_ERROR_DETAIL).response()

    def _dispatch(self, request: Request) -> Response:
        if not _under(request.path, self.api_prefix):
            raise self.error(404, NOT_FOUND_DETAIL)
        self.authenticate(request)
        status = self.faults.random_failure()
        if status:
            raise self.injected_error(status, targeted=False)
        endpoint, args = self._match(request)
        body = self.parse_body(request)
        status = self.faults.failure_for(self.request_subjects(args, body))
        if status:
            raise self.injected_error(status, targeted=True)
        with self.state.lock:
            status, payload = getattr(self.api, endpoint)(request, body, **args)
        return self.respond(request, status, payload)

    def _match(self, request: Request) -> tuple[str, dict[str, str]]:
        path = request.path[len(self.api_prefix) :] or "/"
        try:
            return self.routes.bind("sandbox", path_info=path).match(method=request.method)
        except MethodNotAllowed as error:
            raise self.error(
                405,
                "The requested method and resource are not compatible. "
                f"Allowed methods: {', '.join(sorted(error.valid_methods or []))}.",
            ) from None
        except (NotFound, HTTPException):
            raise self.error(404, NOT_FOUND_DETAIL) from None

    def _admin(self, request: Request) -> Response:
        """`/_sandbox/*`: test controls, never subject to auth, limits or faults."""
        route = (request.method, request.path[len(ADMIN_PREFIX) :].rstrip("/"))
        try:
            if route == ("POST", "/reset"):
                self.reset()
                return json_response({"reset": True})
            if route == ("POST", "/faults"):
                settings = FaultSettings(**self.object_body(self.parse_body(request)))
                self.faults.configure(settings)
                return json_response(settings.as_json())
            if route == ("GET", "/state"):
                return json_response({**self.state.snapshot(), "faults": self.faults.settings.as_json()})
            if route == ("POST", "/seed"):
                return json_response(self.seed(self.object_body(self.parse_body(request))), 201)
            if route in self.admin_routes:
                handler = getattr(self, self.admin_routes[route])
                return json_response(handler(self.object_body(self.parse_body(request))))
        except SandboxError as error:
            return error.response()
        except (TypeError, ValueError) as error:
            return self.error(400, str(error)).response()
        except Exception as error:  # a bug in a test control still answers JSON, never werkzeug's HTML page
            traceback.print_exc()
            return self.error(500, f"{INTERNAL_ERROR_DETAIL} ({type(error).__name__}: {error})").response()
        return self.error(404, NOT_FOUND_DETAIL).response()


class _QuietRequestHandler(KeepAlive, WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:  # one line per request drowns test output
        pass


class SandboxServer:
    """Runs a SandboxApp on a threaded HTTP server in a background thread; port 0 picks a free port."""

    def __init__(self, app: SandboxApp[Any], host: str = "127.0.0.1", port: int = 0, name: str = "sandbox"):
        self.app = app
        self.host = host
        self.port = port
        self.name = name
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        if self._server is None and self.port == 0:
            raise RuntimeError("start the sandbox first: port 0 is chosen when it starts")
        port = self._server.server_port if self._server else self.port
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{port}"

    @property
    def url(self) -> str:
        """Where API clients point: the base URL plus the service's path prefix."""
        return self.base_url + self.app.api_prefix

    @property
    def admin_url(self) -> str:
        return self.base_url + ADMIN_PREFIX

    def start(self) -> Self:
        if self._server is not None:
            return self
        self._server = make_server(self.host, self.port, self.app, threaded=True, request_handler=_QuietRequestHandler)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": SHUTDOWN_POLL_SECONDS},
            name=self.name,
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def set_faults(
        self,
        *,
        rate_429: float = 0.0,
        rate_500: float = 0.0,
        latency_ms: int = 0,
        fail_emails: dict[str, int] | None = None,
        seed: int | None = None,
        bare_throttle: bool = False,
    ) -> None:
        self.app.faults.configure(
            FaultSettings(rate_429, rate_500, latency_ms, dict(fail_emails or {}), seed, bare_throttle)
        )

    def set_latency(self, seconds: float) -> None:
        """Add `seconds` to every call (other fault settings stay as they are)."""
        if seconds < 0:
            raise ValueError("latency must not be negative")
        settings = self.app.faults.settings
        self.app.faults.configure(replace(settings, latency_ms=round(seconds * 1000)))

    def reset(self) -> None:
        """Back to the initial data, no faults and zero request counts."""
        self.app.reset()

    def set_budget(self, requests: int | None, window_seconds: float = 60.0) -> None:
        """The service's rate limit: `requests` per `window_seconds` from now (None: none; 0: every call refused)."""
        self.app.set_budget({"requests": requests, "window_seconds": window_seconds})


def serve_until_signalled(server: SandboxServer) -> None:
    """Run in the foreground, printing the URL, until SIGINT or SIGTERM."""
    stopping = threading.Event()
    # Handle both explicitly: a shell's background job ignores SIGINT, and containers stop with SIGTERM.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    with server:
        print(server.url, flush=True)
        stopping.wait()
