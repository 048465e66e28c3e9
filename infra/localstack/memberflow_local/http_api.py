"""HTTP API bridge: serves the template's ``HttpApi`` routes like API Gateway HTTP API (payload 2.0).

For each request matching a route (``POST /webhooks/{source}``; ``{name}`` and greedy ``{name+}``
path parameters; method ``ANY``), the bridge builds the payload-format-2.0 event exactly as API Gateway
does (lower-cased headers with repeated values comma-joined, ``cookies``, ``queryStringParameters``,
``pathParameters``, ``requestContext``; the body base64-encoded with ``isBase64Encoded: true`` unless its
content type is text, JSON, XML or JavaScript), invokes the function's handler in-process and turns the
result into the HTTP response (a dict with ``statusCode`` as-is; any other dict/list/number as a JSON
200; a str as the body of a 200 ``application/json`` response).

* No matching route: ``404 {"message": "Not Found"}``.
* A route with ``Auth: {Authorizer: AWS_IAM}`` and a request not signed (SigV4, service ``execute-api``) with the
  local stack's credentials: ``403 {"message": "Forbidden"}``; a signed one reaches the function with
  ``requestContext.authorizer.iam``.
* The handler raised: ``500 {"message": "Internal Server Error"}`` (traceback logged).

Admin routes for the local stack (not part of the deployed API):

* ``POST /_local/schedules/{name}`` - fire a schedule now; optional JSON body ``{"at": "<ISO time>"}``.
  ``name`` is the function's logical id (``OnboardingDripFunction``) or the event name (``DripSchedule``),
  case-insensitive. Answers ``200 {"schedule": ..., "function": ..., "result": <handler result>}``,
  ``404 {"message": ..., "valid": [...]}`` for an unknown name, ``500`` if the handler raised.
* ``POST /_local/drain`` - wait until the SQS event sources are idle; optional JSON body
  ``{"timeout": seconds}`` (default 30). Answers ``200 {"drained": true|false}``.
* ``GET /_local/health`` - ``200 {"status": "ok", "routes": [...]}``.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from memberflow_sandboxes.base import SHUTDOWN_POLL_SECONDS

from .runtime import FunctionRuntime
from .settings import LOCAL_ACCOUNT_ID
from .template import HttpApiRoute

log = logging.getLogger("memberflow_local.http_api")

_TEXT_TYPES = re.compile(
    r"^(text/.*|application/(json|xml|javascript|ecmascript|x-javascript)|application/[^;]*\+(json|xml))$"
)


def is_text_content_type(content_type: str | None) -> bool:
    """True when API Gateway passes the body as plain text (otherwise it is base64-encoded)."""
    if not content_type:
        return False
    media_type = content_type.split(";", 1)[0].strip().lower()
    return bool(_TEXT_TYPES.match(media_type))


@dataclass
class CompiledRoute:
    route: HttpApiRoute
    function: FunctionRuntime
    pattern: re.Pattern[str]
    specificity: tuple[int, int]

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if self.route.method not in ("ANY", method.upper()):
            return None
        m = self.pattern.fullmatch(path)
        return m.groupdict() if m else None


def compile_route(route: HttpApiRoute, function: FunctionRuntime) -> CompiledRoute:
    if route.path == "$default":
        return CompiledRoute(route, function, re.compile(r"/.*"), (-1, -1))
    parts = []
    literal_segments = 0
    greedy = False
    for segment in route.path.strip("/").split("/"):
        m = re.fullmatch(r"\{([A-Za-z0-9_.-]+?)(\+?)\}", segment)
        if m:
            name = m.group(1)
            group = re.sub(r"\W", "_", name)
            if m.group(2):
                greedy = True
                parts.append(f"(?P<{group}>.+)")
            else:
                parts.append(f"(?P<{group}>[^/]+)")
        else:
            literal_segments += 1
            parts.append(re.escape(segment))
    pattern = re.compile("/" + "/".join(parts))
    return CompiledRoute(route, function, pattern, (0 if greedy else 1, literal_segments))


def build_http_api_event(
    *,
    method: str,
    path: str,
    query_string: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    route_key: str,
    path_parameters: Mapping[str, str] | None = None,
    source_ip: str = "127.0.0.1",
    api_id: str = "local",
    stage: str = "$default",
    domain_name: str | None = None,
    protocol: str = "HTTP/1.1",
    account_id: str = LOCAL_ACCOUNT_ID,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The API Gateway HTTP API payload-format-2.0 event for one request."""
    from urllib.parse import parse_qsl

    merged: dict[str, list[str]] = {}
    cookies: list[str] = []
    for name, value in headers:
        key = name.lower()
        if key == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        merged.setdefault(key, []).append(value)
    event_headers = {k: ",".join(v) for k, v in merged.items()}

    query: dict[str, list[str]] = {}
    for name, value in parse_qsl(query_string, keep_blank_values=True):
        query.setdefault(name, []).append(value)

    now = now or datetime.now(UTC)
    domain = domain_name or event_headers.get("host", "localhost").split(",")[0]
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": query_string,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = event_headers
    if query:
        event["queryStringParameters"] = {k: ",".join(v) for k, v in query.items()}
    event["requestContext"] = {
        "accountId": account_id,
        "apiId": api_id,
        "domainName": domain,
        "domainPrefix": domain.split(".")[0],
        "http": {
            "method": method.upper(),
            "path": path,
            "protocol": protocol,
            "sourceIp": source_ip,
            "userAgent": event_headers.get("user-agent", ""),
        },
        "requestId": str(uuid.uuid4()),
        "routeKey": route_key,
        "stage": stage,
        "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "timeEpoch": int(now.timestamp() * 1000),
    }
    if body:
        text: str | None = None
        if is_text_content_type(event_headers.get("content-type")):
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                text = None
        if text is None:
            event["body"] = base64.b64encode(body).decode("ascii")
            event["isBase64Encoded"] = True
        else:
            event["body"] = text
            event["isBase64Encoded"] = False
    else:
        event["isBase64Encoded"] = False
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    return event


def response_from_result(result: Any) -> Response:
    """Turn a handler's result into the HTTP response, as API Gateway does for payload format 2.0."""
    if isinstance(result, dict) and "statusCode" in result:
        try:
            status = int(result["statusCode"])
        except (TypeError, ValueError):
            log.error("invalid statusCode in handler result: %r", result.get("statusCode"))
            return _json_response(500, {"message": "Internal Server Error"})
        body = result.get("body")
        if body is None:
            data = b""
        elif isinstance(body, str):
            data = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode("utf-8")
        else:
            data = json.dumps(body).encode("utf-8")
        response = Response(data, status=status)
        response.headers.remove("Content-Type")
        for name, value in (result.get("headers") or {}).items():
            response.headers[name] = str(value)
        for name, values in (result.get("multiValueHeaders") or {}).items():
            for value in values:
                response.headers.add(name, str(value))
        for cookie in result.get("cookies") or []:
            response.headers.add("Set-Cookie", cookie)
        if "content-type" not in {k.lower() for k in response.headers.keys()} and data:
            response.headers["Content-Type"] = "application/json"
        return response
    if isinstance(result, str):
        return Response(result.encode("utf-8"), status=200, content_type="application/json")
    return Response(json.dumps(result).encode("utf-8"), status=200, content_type="application/json")


def iam_caller(request: Request) -> dict[str, Any] | None:
    """The IAM caller of a request signed (SigV4, `execute-api`) with the local stack's credentials, as API
    Gateway puts it in `requestContext.authorizer.iam`; None when unsigned or the signature does not match."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from .aws import AWS_ENV

    authorization = request.headers.get("Authorization", "")
    match = re.fullmatch(
        r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/execute-api/aws4_request, "
        r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})",
        authorization,
    )
    amz_date = request.headers.get("X-Amz-Date", "")
    if match is None or match.group(1) != AWS_ENV["AWS_ACCESS_KEY_ID"] or not amz_date.startswith(match.group(2)):
        return None
    signed = match.group(4).split(";")
    again = AWSRequest(
        method=request.method,
        url=request.url,
        data=request.get_data(cache=True),
        headers={name: request.headers.get(name, "") for name in signed if name != "host"},
    )
    again.context["timestamp"] = amz_date
    credentials = Credentials(AWS_ENV["AWS_ACCESS_KEY_ID"], AWS_ENV["AWS_SECRET_ACCESS_KEY"])
    SigV4Auth(credentials, "execute-api", match.group(3)).add_auth(again)
    if again.headers["Authorization"] != authorization:
        return None
    return {
        "accessKey": match.group(1),
        "accountId": LOCAL_ACCOUNT_ID,
        "callerId": "AIDALOCALSTACKCALLER",
        "cognitoIdentity": None,
        "principalOrgId": None,
        "userArn": f"arn:aws:iam::{LOCAL_ACCOUNT_ID}:user/local",
        "userId": "AIDALOCALSTACKCALLER",
    }


def _json_response(status: int, payload: Any) -> Response:
    return Response(json.dumps(payload, default=str), status=status, content_type="application/json")


class _AccessLogHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        log.info("%s %s -> %s", self.command, self.path, getattr(code, "value", code))


class HttpApiBridge:
    """A threaded werkzeug server in front of the HttpApi routes (port 0 = any free port)."""

    def __init__(
        self,
        routes: Iterable[tuple[HttpApiRoute, FunctionRuntime]],
        *,
        host: str = "127.0.0.1",
        port: int = 3000,
        api_id: str = "local",
        fire_schedule: Callable[[str, datetime | None], tuple[str, str, Any]] | None = None,
        schedule_names: Callable[[], list[str]] | None = None,
        drain: Callable[[float], bool] | None = None,
    ) -> None:
        compiled = [compile_route(route, fn) for route, fn in routes]
        self.routes = sorted(compiled, key=lambda r: r.specificity, reverse=True)
        self.host = host
        self.port = port
        self.api_id = api_id
        self._fire_schedule = fire_schedule
        self._schedule_names = schedule_names
        self._drain = drain
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("HTTP API not started")
        return f"http://{self.host}:{self._server.server_port}"

    def start(self) -> str:
        if self._server is None:
            self._server = make_server(
                self.host, self.port, self.wsgi_app, threaded=True, request_handler=_AccessLogHandler
            )
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": SHUTDOWN_POLL_SECONDS},
                name="memberflow-local-http-api",
                daemon=True,
            )
            self._thread.start()
            log.info("HTTP API on %s", self.url)
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    # ------------------------------------------------------------------ WSGI
    def wsgi_app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        try:
            response = self.dispatch(request)
        except Exception:  # noqa: BLE001 - the bridge must answer
            log.error("local HTTP API failed:\n%s", traceback.format_exc())
            response = _json_response(500, {"message": "Internal Server Error"})
        return response(environ, start_response)

    def match(self, method: str, path: str) -> tuple[CompiledRoute, dict[str, str]] | None:
        for compiled in self.routes:
            params = compiled.match(method, path)
            if params is not None:
                return compiled, params
        return None

    def dispatch(self, request: Request) -> Response:
        path = request.path
        if path.startswith("/_local/"):
            return self._admin(request)
        found = self.match(request.method, path)
        if found is None:
            return _json_response(404, {"message": "Not Found"})
        compiled, params = found
        caller = None
        if compiled.route.iam_auth:
            caller = iam_caller(request)
            if caller is None:
                return _json_response(403, {"message": "Forbidden"})
        # group names were sanitised; map back to the template's parameter names
        names = re.findall(r"\{([A-Za-z0-9_.-]+?)\+?\}", compiled.route.path)
        path_parameters = {name: params[re.sub(r"\W", "_", name)] for name in names}
        query_string = request.query_string.decode("latin-1")
        event = build_http_api_event(
            method=request.method,
            path=path,
            query_string=query_string,
            headers=list(request.headers.items()),
            body=request.get_data(cache=False),
            route_key=compiled.route.route_key,
            path_parameters=path_parameters,
            source_ip=request.remote_addr or "127.0.0.1",
            api_id=self.api_id,
            protocol=request.environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
        )
        if caller is not None:
            event["requestContext"]["authorizer"] = {"iam": caller}
        started = time.monotonic()
        try:
            result = compiled.function.invoke(event)
        except Exception:  # noqa: BLE001 - API Gateway answers 500 when the function fails
            log.error(
                "%s raised on %s:\n%s",
                compiled.function.spec.logical_id,
                compiled.route.route_key,
                traceback.format_exc(),
            )
            return _json_response(500, {"message": "Internal Server Error"})
        elapsed = time.monotonic() - started
        if elapsed > 30:
            log.warning(
                "%s took %.1f s: API Gateway would have answered 503 after 30 s",
                compiled.function.spec.logical_id,
                elapsed,
            )
        return response_from_result(result)

    def _admin(self, request: Request) -> Response:
        path = request.path
        body: dict[str, Any] = {}
        raw = request.get_data(cache=True)
        if raw.strip():
            try:
                body = json.loads(raw)
            except ValueError:
                return _json_response(400, {"message": "body must be JSON"})
            if not isinstance(body, dict):
                return _json_response(400, {"message": "body must be a JSON object"})
        if path == "/_local/health" and request.method == "GET":
            return _json_response(200, {"status": "ok", "routes": [r.route.route_key for r in self.routes]})
        if path == "/_local/drain" and request.method == "POST":
            if self._drain is None:
                return _json_response(404, {"message": "Not Found"})
            timeout = float(body.get("timeout", 30))
            return _json_response(200, {"drained": bool(self._drain(timeout))})
        m = re.fullmatch(r"/_local/schedules/([^/]+)", path)
        if m and request.method == "POST":
            if self._fire_schedule is None:
                return _json_response(404, {"message": "Not Found"})
            at = None
            if body.get("at"):
                try:
                    at = datetime.fromisoformat(str(body["at"]).replace("Z", "+00:00"))
                except ValueError:
                    return _json_response(400, {"message": f"invalid 'at': {body['at']!r}"})
            try:
                schedule, function, result = self._fire_schedule(m.group(1), at)
            except KeyError as error:
                valid = self._schedule_names() if self._schedule_names else []
                return _json_response(
                    404, {"message": str(error.args[0]) if error.args else "unknown schedule", "valid": valid}
                )
            except Exception as error:  # noqa: BLE001
                log.error("schedule %s failed:\n%s", m.group(1), traceback.format_exc())
                return _json_response(500, {"message": "Internal Server Error", "error": repr(error)})
            return _json_response(200, {"schedule": schedule, "function": function, "result": result})
        return _json_response(404, {"message": "Not Found"})
