"""Liveness and readiness, for Kubernetes' probes and compose's healthchecks.

Live: the process's event loop answers. Ready: each of the service's checks passed
(Postgres answers ``SELECT 1``, the NATS connection is connected, and for the api the
relay is not too far behind). The api answers ``/healthz`` and ``/readyz`` itself; the
other services serve the same two paths on a small HTTP server of their own
(CSTOR_HEALTH_PORT, off at 0), answered by `serve_probes`. A body says which check
failed, in our words or the exception's class: never an error's text, which could name
a host or a user.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

import asyncpg
import msgspec
from nats.aio.client import Client as NATS

from cstor.settings import Settings

log = logging.getLogger(__name__)

Check = Callable[[], Awaitable[str | None]]
"""A readiness check: what it saw (None: "ok"), or it raises `NotReady` (or anything)."""

CHECK_TIMEOUT = 2.0
"""Seconds a check may take before it counts as failed (a probe's own timeout is 1-5 s)."""


class NotReady(Exception):
    """A check failed; the message, in our words, is what the probe's body says."""


class Answer(msgspec.Struct, frozen=True, kw_only=True):
    """A probe's body: ``ready``/``not ready``/``live``, the failed checks, what each saw."""

    status: str
    failed: list[str] = []
    checks: dict[str, str] = {}


LIVE = Answer(status="live")


async def readiness(checks: Mapping[str, Check], seconds: float = CHECK_TIMEOUT) -> Answer:
    """Run every check at once; ready only if each passed within ``seconds``."""
    results = await asyncio.gather(*(_run(check, seconds) for check in checks.values()))
    seen = dict(zip(checks, (text for text, _ in results), strict=True))
    failed = [name for name, (_, passed) in zip(checks, results, strict=True) if not passed]
    return Answer(status="not ready" if failed else "ready", failed=failed, checks=seen)


async def _run(check: Check, seconds: float) -> tuple[str, bool]:
    try:
        async with asyncio.timeout(seconds):
            return (await check() or "ok"), True
    except NotReady as error:
        return str(error), False
    except TimeoutError:
        return f"no answer in {seconds:g} s", False
    except Exception as error:
        return f"failed ({type(error).__name__})", False


def postgres_check(pool: asyncpg.Pool) -> Check:
    """Postgres answers ``SELECT 1`` on a connection of the service's pool."""

    async def check() -> None:
        await pool.fetchval("SELECT 1")

    return check


def nats_check(nc: NATS) -> Check:
    """The service's NATS connection is connected (not reconnecting, not closed)."""
    return connected_check(lambda: nc.is_connected)


def connected_check(is_connected: Callable[[], bool]) -> Check:
    """A NATS connection, maybe another process's, is connected by ``is_connected``."""

    async def check() -> None:
        if not is_connected():
            raise NotReady("not connected")

    return check


def service_checks(pool: asyncpg.Pool, nc: NATS) -> dict[str, Check]:
    """What every service needs to be ready: its Postgres pool and its NATS connection."""
    return {"postgres": postgres_check(pool), "nats": nats_check(nc)}


def service_probes(
    settings: Settings, pool: asyncpg.Pool, nc: NATS
) -> contextlib.AbstractAsyncContextManager[asyncio.Server | None]:
    """A service's probes on CSTOR_HEALTH_HOST:CSTOR_HEALTH_PORT, as long as it runs."""
    return serve_probes(settings.health_host, settings.health_port, service_checks(pool, nc))


ENCODER = msgspec.json.Encoder()


async def answer(path: str, checks: Mapping[str, Check]) -> tuple[int, bytes]:
    """The status and JSON body for a probe's path (404 for any other)."""
    if path == "/healthz":
        return 200, ENCODER.encode(LIVE)
    if path == "/readyz":
        result = await readiness(checks)
        return (200 if not result.failed else 503), ENCODER.encode(result)
    return 404, ENCODER.encode(Answer(status="not found"))


REASONS = {200: "OK", 404: "Not Found", 503: "Service Unavailable", 400: "Bad Request"}


@contextlib.asynccontextmanager
async def serve_probes(
    host: str, port: int, checks: Mapping[str, Check]
) -> AsyncIterator[asyncio.Server | None]:
    """Answer ``GET /healthz`` and ``GET /readyz`` on ``host:port`` (nothing at port 0).

    A minimal HTTP/1.1 server: one request per connection, closed after the answer,
    which is all a probe sends.
    """
    if port == 0:
        yield None
        return

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(CHECK_TIMEOUT * 2):
                status, body = await _respond(reader, checks)
            writer.write(
                f"HTTP/1.1 {status} {REASONS[status]}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass  # a client that sent nothing, or left: nothing to answer
        finally:
            writer.close()

    server = await asyncio.start_server(handle, host, port)
    log.info("health probes on http://%s:%d/healthz and /readyz", host, port)
    try:
        yield server
    finally:
        server.close()
        await server.wait_closed()


async def _respond(reader: asyncio.StreamReader, checks: Mapping[str, Check]) -> tuple[int, bytes]:
    request_line = await reader.readline()
    while (await reader.readline()) not in (b"\r\n", b"\n", b""):
        pass  # the headers: a probe's say nothing we need
    parts = request_line.decode("latin-1").split()
    if len(parts) != 3 or parts[0] != "GET":
        return 400, ENCODER.encode(Answer(status="bad request"))
    return await answer(parts[1].split("?", 1)[0], checks)
