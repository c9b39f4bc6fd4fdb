"""A recording HTTP proxy in front of real S3 servers: what cstor sent, and how often.

In front of one server (`StoreProxy(upstream)`, cstor given the proxy's address as
the store's) or as the forward proxy HTTP_PROXY names (`StoreProxy()`, requests in
absolute form, CONNECT tunnels for TLS). Every request is recorded; those `refuse`
picks are answered `500 InternalError` without reaching the server, to count how often each layer of
cstor tries a request again, and those `answer` gives a status are answered that S3 error
(a HEAD with no body, as stores answer one; `said` chooses its code and message). The
rest go to the real server as they came (the Host header included, which the signature
covers), `before` called first (to change the store under a request);
those `cut` picks get their answer's headers and half its
body, and then the connection closes.
"""

from __future__ import annotations

import http.client
import selectors
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

INTERNAL_ERROR = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code>'
    b"<Message>We encountered an internal error. Please try again.</Message></Error>"
)
_CODES = {403: "AccessDenied", 404: "NoSuchKey", 500: "InternalError", 503: "SlowDown"}
_HOP_BY_HOP = frozenset(
    {"connection", "proxy-connection", "keep-alive", "proxy-authorization", "expect", "te"}
)


@dataclass(frozen=True)
class Seen:
    """One request the proxy received."""

    method: str
    path: str
    query: str
    absolute: bool
    """Sent in absolute form (`GET http://host/...`), as to a forward proxy."""


def a_source_stream(seen: Seen) -> bool:
    """A GET of a whole object to a presigned URL: the source stream of a multipart copy
    (cstor.s3.source_stream); listings are presigned GETs too, of a bucket."""
    return (
        seen.method == "GET" and "X-Amz-Signature=" in seen.query and "list-type" not in seen.query
    )


class StoreProxy:
    """The recording proxy; `url` is its address."""

    def __init__(self, upstream: str | None = None) -> None:
        self.upstream = urlsplit(upstream) if upstream else None
        self.seen: list[Seen] = []
        self.refuse: Callable[[Seen], bool] = lambda _: False
        self.answer: Callable[[Seen], int | None] = lambda _: None
        """The status of the S3 error to answer a request with, or None to forward it."""
        self.said: tuple[str, str] | None = None
        """The <Code> and <Message> of the error `answer` answers, if not the status's own."""
        self.before: Callable[[Seen], None] = lambda _: None
        self.cut: Callable[[Seen], bool] = lambda _: False
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def count(self, wanted: Callable[[Seen], bool]) -> int:
        """How many of the requests received `wanted` picks."""
        with self._lock:
            return sum(1 for seen in self.seen if wanted(seen))

    def record(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)

    @contextmanager
    def running(self) -> Iterator[StoreProxy]:
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()


def _handler_for(proxy: StoreProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # kept-alive connections, and 100-continue

        def do_GET(self) -> None:
            self._forward()

        do_PUT = do_POST = do_HEAD = do_DELETE = do_GET

        def do_CONNECT(self) -> None:
            """A tunnel to `host:port` (TLS to an https:// store), recorded, never refused."""
            host, _, port = self.path.rpartition(":")
            proxy.record(Seen("CONNECT", self.path, "", True))
            upstream = socket.create_connection((host, int(port)), timeout=60)
            self.send_response_only(200, "Connection established")
            self.end_headers()
            self.wfile.flush()
            _pipe(self.connection, upstream)
            self.close_connection = True

        def _forward(self) -> None:
            absolute = self.path.startswith(("http://", "https://"))
            target = urlsplit(self.path) if absolute else proxy.upstream
            if target is None:
                self._answer(400, b"not a proxy request", {})
                return
            parts = urlsplit(self.path)
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            seen = Seen(self.command, parts.path, parts.query, absolute)
            proxy.record(seen)
            if proxy.refuse(seen):
                self._answer(500, INTERNAL_ERROR, {"Content-Type": "application/xml"})
                return
            status = proxy.answer(seen)
            if status is not None:
                body = _error(status, *(proxy.said or ()))
                self._answer(status, body, {"Content-Type": "application/xml"})
                return
            proxy.before(seen)
            upstream = http.client.HTTPConnection(target.hostname or "", target.port, timeout=60)
            try:
                upstream.putrequest(self.command, path, skip_host=True, skip_accept_encoding=True)
                for name, value in self.headers.items():
                    if name.lower() not in _HOP_BY_HOP:
                        upstream.putheader(name, value)
                upstream.endheaders(body or None)
                response = upstream.getresponse()
                data = response.read()
                headers = {
                    name: value
                    for name, value in response.getheaders()
                    if name.lower() not in _HOP_BY_HOP | {"transfer-encoding", "content-length"}
                }
                if self.command == "HEAD":  # no body, but the object's length
                    headers["Content-Length"] = response.getheader("Content-Length") or "0"
                self._answer(response.status, data, headers, cut=proxy.cut(seen))
            finally:
                upstream.close()

        def _answer(
            self, status: int, body: bytes, headers: dict[str, str], *, cut: bool = False
        ) -> None:
            self.send_response_only(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if self.command != "HEAD":
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body[: len(body) // 2] if cut else body)
            if cut:
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True

        def log_message(self, *_: object) -> None:
            pass

    return Handler


def _error(status: int, code: str = "", message: str = "") -> bytes:
    """An S3 error document for `status` (with `code` and `message`, if given)."""
    code = code or _CODES.get(status, "InternalError")
    message = message or f"{code} (answered by the test's proxy)"
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
        f"<Message>{message}</Message></Error>"
    ).encode()


def _pipe(one: socket.socket, other: socket.socket) -> None:
    """Copy bytes both ways until either side closes."""
    with selectors.DefaultSelector() as selector, other:
        selector.register(one, selectors.EVENT_READ, other)
        selector.register(other, selectors.EVENT_READ, one)
        while True:
            for key, _ in selector.select(timeout=60):
                source: socket.socket = key.fileobj  # type: ignore[assignment]
                data = source.recv(1 << 16)
                if not data:
                    return
                key.data.sendall(data)
