"""HTTP/1.1 keep-alive for the local servers (moto, the sandboxes).

AWS's and the services' endpoints keep a connection open between requests, and boto3 and requests pool them. werkzeug
closes every connection after its response, because http.server cannot skip the part of a body an application left
unread, so every local AWS call paid a TCP connect and a server thread of its own: about a third of its time.

Here a request body with a Content-Length is read whole before the application sees it, so the next request on the
connection starts where it should. A chunked body or an ``Expect: 100-continue`` falls back to werkzeug's closed
connection. Responses always carry a Content-Length or chunked framing under HTTP/1.1 (werkzeug adds it).
"""

from __future__ import annotations

import io
import socket
from typing import Any

from werkzeug.serving import WSGIRequestHandler

IDLE_SECONDS = 60
"""An idle connection is closed after this long (its server thread ends); a client's pool opens a new one."""


class KeepAlive(WSGIRequestHandler):
    """Put first in a werkzeug request handler's bases."""

    protocol_version = "HTTP/1.1"
    timeout = IDLE_SECONDS
    _keep_open = False

    def setup(self) -> None:
        super().setup()
        # A response is written in parts (status line and headers, then the body): without TCP_NODELAY, Nagle's
        # algorithm and the client's delayed ACK hold the second part for 40 ms on a kept-open connection.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def run_wsgi(self) -> None:
        length = self.headers.get("Content-Length")
        framed = "chunked" not in self.headers.get("Transfer-Encoding", "").lower()
        self._keep_open = framed and not self.headers.get("Expect") and (length or "0").isdigit()
        if not self._keep_open:
            return super().run_wsgi()
        connection_stream = self.rfile
        self.rfile = io.BytesIO(connection_stream.read(int(length or 0)))
        try:
            super().run_wsgi()
        except BaseException:
            self.close_connection = True
            raise
        finally:
            self.rfile = connection_stream

    def send_header(self, keyword: str, value: str) -> None:
        if self._keep_open and keyword.lower() == "connection" and value.lower() == "close":
            return  # werkzeug's unconditional close: the body was read whole, so the connection can serve another
        super().send_header(keyword, value)

    def log_error(self, format: str, *args: Any) -> None:
        if "timed out" in format % args:
            return  # an idle connection reaching IDLE_SECONDS is routine, not an error
        super().log_error(format, *args)
