"""Whole-object GETs and PUTs, and CopyObject, over HTTP/1.1 signed with SigV4, on the loop.

The small-object data path. A 16 KiB copy is two requests, and what they cost is
the client's own work per request: obstore, which copied them before, spent about
0.6 ms of CPU per object, most of it handing each request between its Rust threads
and asyncio (docs/http_stacks.md: 0.673 ms, this client 0.370). Here a
request is one write and a read or two on a kept-alive connection, signed in a
few microseconds with a signing key made once a day (`bench/datapath.py`
measures both). Bodies go unsigned (UNSIGNED-PAYLOAD): a PUT carries its
Content-MD5, which the store checks, and the copier checks the ETag it returns.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import time
from collections import deque
from typing import NamedTuple
from urllib.parse import quote, urlsplit

from cstor.s3.control import Endpoint
from cstor.s3.errors import S3Error, Site, from_answer, from_transport
from cstor.s3.network import WIRE, proxy_for, tls_context
from cstor.s3.transport import CONNECT_TIMEOUT

_BLANKS = re.compile("[ \t]+")
_UNSIGNED = "UNSIGNED-PAYLOAD"
_NO_BODY = frozenset({204, 304})


def object_path(bucket: str, key: str) -> str:
    """`/bucket/key`, percent-encoded as S3 signs and expects it (path style)."""
    return "/" + quote(f"{bucket}/{key}", safe="/~")


class Response(NamedTuple):
    status: int
    headers: dict[str, str]
    """Lower-case names; a repeated header's values joined with ", "."""
    body: bytes


class _Closed(Exception):
    """A kept-alive connection the server had already closed; the request was not answered."""


class WireClient:
    """Sends signed requests to one endpoint over a pool of kept-alive connections."""

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        side: str = "",
        idle_connections: int = 1024,
        connect_timeout: float = WIRE.connect_timeout,
        timeout: float = WIRE.read_timeout,
    ) -> None:
        parts = urlsplit(endpoint.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) endpoint: {endpoint.url!r}")
        self.endpoint = endpoint
        self.side = side
        """"source" or "destination", as its failures name it ("" outside a copy)."""
        self._tls = parts.scheme == "https"
        self._hostname = parts.hostname
        self._port = parts.port or (443 if self._tls else 80)
        default_port = (self._tls and self._port == 443) or (not self._tls and self._port == 80)
        host = f"[{self._hostname}]" if ":" in self._hostname else self._hostname  # IPv6
        self._host = host if default_port else f"{host}:{self._port}"
        self._prefix = parts.path.rstrip("/")
        # Through a proxy, plain HTTP goes to it in absolute form; TLS through a CONNECT tunnel.
        self._proxy = proxy_for(endpoint.url)
        self._origin = f"http://{self._host}" if self._proxy and not self._tls else ""
        self._idle: deque[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = deque()
        # The pool only grows to the most requests ever in flight at once, which the
        # replica's concurrency already bounds; a cap below that (CSTOR_TRANSFER_CONCURRENCY
        # is 64 by default, and may be set higher) would close and reopen a connection
        # for every request beyond it.
        self._max_idle = idle_connections
        self._connect_timeout = connect_timeout
        self._timeout = timeout
        self._scope_day = ""
        self._signing_key = b""

    async def get(self, bucket: str, key: str, headers: dict[str, str]) -> Response:
        """GetObject; any status comes back (the caller knows what 404 or 412 means)."""
        return await self.request("GET", bucket, key, headers)

    async def put(
        self, bucket: str, key: str, headers: dict[str, str], body: bytes | memoryview
    ) -> Response:
        """PutObject; raises S3Error unless the store answers 200."""
        response = await self.request("PUT", bucket, key, headers, body)
        if response.status != 200:
            raise self.error(response, "writing", bucket, key)
        return response

    def site(self, bucket: str = "", key: str = "") -> Site:
        """This store's `key` in `bucket`, as its failures name it."""
        return Site(self.endpoint.url, self.side, bucket, key)

    def error(self, response: Response, what: str, bucket: str = "", key: str = "") -> S3Error:
        """The S3Error for an error answer to `what` (a verb) about `key` in `bucket`."""
        return from_answer(response.status, response.body, self.site(bucket, key), what)

    async def request(
        self,
        method: str,
        bucket: str,
        key: str,
        headers: dict[str, str],
        body: bytes | memoryview = b"",
    ) -> Response:
        """Sign and send one request for `key` in `bucket`; kept-alive connections the
        server has closed are skipped (the request goes on the next one, or a new one)."""
        site = self.site(bucket, key)
        doing = f"{site.doing(_VERBS.get(method, method))} at {site.store()}"
        head = self._head(method, object_path(bucket, key), headers, len(body))
        try:
            async with asyncio.timeout(self._timeout):
                while self._idle:
                    connection = self._idle.pop()
                    try:
                        return await self._exchange(connection, method, head, body)
                    except _Closed:
                        continue
                connection = await self._connect(site, _VERBS.get(method, method))
                return await self._exchange(connection, method, head, body)
        except TimeoutError as error:
            raise S3Error(
                "timeout", f"{doing} failed: it stopped answering", transient=True
            ) from error
        except (OSError, _Closed, asyncio.IncompleteReadError) as error:
            raise S3Error(
                "timeout", f"{doing} failed: it dropped the connection", transient=True
            ) from error
        except (ValueError, asyncio.LimitOverrunError) as error:  # not HTTP/1.x, or a length
            # that is not a number, or a header line longer than any store sends
            raise S3Error(
                "s3-error",
                f"{doing} failed: it answered something other than HTTP/1.x",
                transient=True,
            ) from error

    async def close(self) -> None:
        """Close the kept-alive connections."""
        writers = [writer for _, writer in self._idle]
        self._idle.clear()
        for writer in writers:
            writer.close()
        await asyncio.gather(*(w.wait_closed() for w in writers), return_exceptions=True)

    async def _connect(
        self, site: Site, what: str
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            async with asyncio.timeout(self._connect_timeout):
                if self._proxy is None:
                    return await asyncio.open_connection(
                        self._hostname,
                        self._port,
                        ssl=tls_context() if self._tls else None,
                        limit=1024 * 1024,
                    )
                return await self._through_proxy(site, what)
        except TimeoutError as error:
            raise S3Error(
                "unreachable",
                f"{site.doing(what)} at {site.store()} failed: {CONNECT_TIMEOUT.words}",
                transient=True,
            ) from error
        except OSError as error:  # no such name, refused, TLS (an SSLError is an OSError)
            raise from_transport(error, site, what) from error

    async def _through_proxy(
        self, site: Site, what: str
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A connection to the proxy; for TLS, tunnelled (CONNECT) to the store and secured."""
        assert self._proxy is not None
        reader, writer = await asyncio.open_connection(
            self._proxy.host, self._proxy.port, limit=1024 * 1024
        )
        if not self._tls:
            return reader, writer
        try:
            target = f"{self._hostname}:{self._port}"
            lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}"]
            if self._proxy.authorization:
                lines.append(f"Proxy-Authorization: {self._proxy.authorization}")
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            answer = await reader.readuntil(b"\r\n\r\n")
            status = answer.split(None, 2)[1:2]
            if status != [b"200"]:
                code = status[0].decode(errors="replace") if status else "?"
                raise S3Error(
                    "unreachable",
                    f"{site.doing(what)} at {site.store()} failed: the proxy would not connect "
                    "to it "
                    f"(HTTP {code})",
                    transient=True,
                )
            await writer.start_tls(tls_context(), server_hostname=self._hostname)
        except BaseException:
            writer.close()
            raise
        return reader, writer

    async def _exchange(
        self,
        connection: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        method: str,
        head: bytes,
        body: bytes | memoryview,
    ) -> Response:
        reader, writer = connection
        try:
            try:
                # One send for head and body: on loopback each send is most of a request's cost.
                writer.writelines((head, body) if body else (head,))
                await writer.drain()
                status_line = await reader.readuntil(b"\r\n")
            except (asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError) as error:
                raise _Closed from error
            response, keep = await _read_response(reader, status_line, method)
        except BaseException:
            writer.close()
            raise
        if keep and len(self._idle) < self._max_idle:
            self._idle.append(connection)
        else:
            writer.close()
        return response

    def _head(self, method: str, path: str, headers: dict[str, str], length: int) -> bytes:
        """The request line and signed headers (SigV4, unsigned payload, path style)."""
        path = self._prefix + path
        path, _, query = path.partition("?")
        amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        day = amz_date[:8]
        # Values go as given (a user's metadata keeps its blanks); the signature covers
        # them with runs of blanks folded, as SigV4 says and the store will do too.
        signed = {name.lower(): value.strip(" \t") for name, value in headers.items()}
        signed["host"] = self._host
        signed["x-amz-date"] = amz_date
        signed["x-amz-content-sha256"] = _UNSIGNED
        if method in ("PUT", "POST") or length:
            signed["content-length"] = str(length)
        names = sorted(signed)
        signed_names = ";".join(names)
        canonical = "\n".join(
            (
                method,
                path,
                _canonical_query(query),
                "".join(f"{name}:{_fold(signed[name])}\n" for name in names),
                signed_names,
                _UNSIGNED,
            )
        )
        region = self.endpoint.region
        scope = f"{day}/{region}/s3/aws4_request"
        to_sign = "\n".join(
            (
                "AWS4-HMAC-SHA256",
                amz_date,
                scope,
                hashlib.sha256(canonical.encode("latin-1")).hexdigest(),
            )
        )
        signature = hmac.new(self._key(day), to_sign.encode(), hashlib.sha256).hexdigest()
        signed["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={self.endpoint.access_key}/{scope}, "
            f"SignedHeaders={signed_names}, Signature={signature}"
        )
        target = f"{path}?{query}" if query else path
        lines = [f"{method} {self._origin}{target} HTTP/1.1"]
        lines.extend(f"{name}: {value}" for name, value in signed.items())
        if self._origin and self._proxy and self._proxy.authorization:
            lines.append(f"proxy-authorization: {self._proxy.authorization}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _key(self, day: str) -> bytes:
        if day != self._scope_day:
            key = ("AWS4" + self.endpoint.secret_key).encode()
            for part in (day, self.endpoint.region, "s3", "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._scope_day, self._signing_key = day, key
        return self._signing_key


_VERBS = {"GET": "reading", "PUT": "writing", "HEAD": "looking up", "DELETE": "deleting"}


def _fold(value: str) -> str:
    # Only ASCII blanks: str.split() would also split at U+00A0, a byte of UTF-8 text.
    return _BLANKS.sub(" ", value)


def _canonical_query(query: str) -> str:
    if not query:
        return ""
    pairs = sorted(tuple(item.partition("=")[::2]) for item in query.split("&"))
    return "&".join(f"{name}={value}" for name, value in pairs)


async def _read_response(
    reader: asyncio.StreamReader, status_line: bytes, method: str
) -> tuple[Response, bool]:
    """The response after its status line; and whether the connection may be kept."""
    parts = status_line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise ValueError(f"not an HTTP/1.x response: {status_line[:80]!r}")
    status = int(parts[1])
    raw = await reader.readuntil(b"\r\n\r\n")
    headers: dict[str, str] = {}
    for line in raw.decode("latin-1").split("\r\n"):
        name, colon, value = line.partition(":")
        if not colon:
            continue
        name, value = name.strip().lower(), value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    keep = headers.get("connection", "").lower() != "close" and parts[0] == b"HTTP/1.1"
    if method == "HEAD" or status in _NO_BODY or status < 200:
        body = b""
    elif "chunked" in headers.get("transfer-encoding", "").lower():
        body = await _read_chunked(reader)
    elif "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    else:
        body, keep = await reader.read(), False
    return Response(status, headers, body), keep


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            break
        chunks.append(await reader.readexactly(size))
        await reader.readexactly(2)
    # Trailers, if any, end with an empty line.
    while (await reader.readuntil(b"\r\n")) != b"\r\n":
        pass
    return b"".join(chunks)
