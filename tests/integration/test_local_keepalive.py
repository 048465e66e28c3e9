"""The local servers keep a connection open between requests, as AWS and the services do
(memberflow_sandboxes.keepalive): werkzeug alone closed every one, so each local AWS call paid a connect and a thread.
A body the application leaves unread must not leak into the next request; a body the server cannot measure keeps
werkzeug's closed connection."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3
from werkzeug.serving import WSGIRequestHandler, make_server

from memberflow_local.aws import _quiet_moto_server
from memberflow_sandboxes.keepalive import KeepAlive


class _Handler(KeepAlive, WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


def _app_ignoring_bodies(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """Answers with the request's path and never reads its body: werkzeug's reason to close every connection."""
    body = json.dumps({"path": environ["PATH_INFO"]}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


class _Server:
    def __init__(self, httpd: Any) -> None:
        self.address = f"127.0.0.1:{httpd.server_port}"
        self.connections = 0
        accept = httpd.get_request

        def counted() -> Any:
            self.connections += 1
            return accept()

        httpd.get_request = counted


@pytest.fixture
def server() -> Iterator[_Server]:
    httpd = make_server("127.0.0.1", 0, _app_ignoring_bodies, threaded=True, request_handler=_Handler)
    counted = _Server(httpd)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield counted
    finally:
        httpd.shutdown()
        httpd.server_close()


def _pool(address: str) -> urllib3.HTTPConnectionPool:
    host, port = address.split(":")
    return urllib3.HTTPConnectionPool(host, int(port), maxsize=1, retries=False)


def test_requests_whose_bodies_the_application_never_read_share_one_connection(server: _Server) -> None:
    pool = _pool(server.address)
    answers = [pool.request("POST", f"/call/{n}", body=b'{"unread": "' + b"x" * 5000 + b'"}') for n in range(5)]
    answers.append(pool.request("GET", "/after"))

    assert [a.json()["path"] for a in answers] == [f"/call/{n}" for n in range(5)] + ["/after"]
    assert all(a.headers.get("Connection") != "close" for a in answers)
    assert server.connections == 1


def test_a_chunked_body_closes_the_connection_after_its_answer(server: _Server) -> None:
    pool = _pool(server.address)
    answer = pool.request("POST", "/chunked", body=iter([b"part one", b"part two"]), chunked=True)

    assert answer.json() == {"path": "/chunked"}
    assert answer.headers["Connection"] == "close"
    assert pool.request("GET", "/next").json() == {"path": "/next"}
    assert server.connections == 2


def test_the_local_aws_endpoint_serves_every_call_of_a_client_on_one_connection() -> None:
    moto = _quiet_moto_server("127.0.0.1", 0)
    moto.start()
    try:
        counted = _Server(moto._server)
        pool = _pool(counted.address)
        headers = {
            "X-Amz-Target": "DynamoDB_20120810.ListTables",
            "Content-Type": "application/x-amz-json-1.0",
            "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/dynamodb/aws4_request, "
            "SignedHeaders=host, Signature=0",
        }
        answers = [pool.request("POST", "/", body=b"{}", headers=headers) for _ in range(3)]
    finally:
        moto.stop()

    assert [a.status for a in answers] == [200, 200, 200]
    assert all("TableNames" in a.json() for a in answers)
    assert counted.connections == 1
