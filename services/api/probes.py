"""The api's liveness and readiness, at /healthz and /readyz (cstor.health): no token, no
session, a small JSON body. Ready: Postgres and NATS answer, and the outbox relay is at
most CSTOR_RELAY_MAX_LAG events behind the store."""

from __future__ import annotations

from collections.abc import Mapping

import asyncpg
from litestar import Controller, Request, Response, get
from litestar.datastructures import State

from cstor import health
from cstor.store import relay


def relay_check(pool: asyncpg.Pool, stream_name: str, max_lag: int) -> health.Check:
    """The relay is at most ``max_lag`` events behind the store (its lag, when it is)."""

    async def check() -> str:
        behind = await relay.lag(pool, stream_name)
        if behind > max_lag:
            raise health.NotReady(f"{behind} events behind (at most {max_lag})")
        return f"{behind} events behind"

    return check


class ProbeController(Controller):
    """Kubernetes' probes: live while the loop answers, ready while every check passes."""

    include_in_schema = False

    @get("/healthz", cache=False)
    async def live(self, request: Request[object, object, State]) -> Response[bytes]:
        return await _answer(request, "/healthz")

    @get("/readyz", cache=False)
    async def ready(self, request: Request[object, object, State]) -> Response[bytes]:
        return await _answer(request, "/readyz")


async def _answer(request: Request[object, object, State], path: str) -> Response[bytes]:
    checks: Mapping[str, health.Check] = request.app.state.checks
    status, body = await health.answer(path, checks)
    return Response(body, status_code=status, media_type="application/json")
