"""The services' probes (cstor.health) against a real Postgres and nats-server: ready
when both answer, not ready naming the one that does not, live all the while."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import asyncpg
import httpx
import psycopg
import pytest
from nats.aio.client import Client as NATS
from psycopg import sql

from cstor import bus, health
from cstor.settings import Settings
from cstor.store.pool import create_pool
from launcher.embedded import EmbeddedNats, free_port


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, min_size=1, max_size=2)
    yield pool
    await pool.close()


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[NATS]:
    nc = await bus.connect(nats_url, "cstor-health-test")
    yield nc
    await nc.close()


@pytest.fixture
async def probes(pool: asyncpg.Pool, nc: NATS) -> AsyncIterator[str]:
    """A service's probes on a free port: their base URL."""
    settings = Settings(health_port=free_port())
    async with health.service_probes(settings, pool, nc):
        yield f"http://127.0.0.1:{settings.health_port}"


async def get(url: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.get(url)


async def wait_for_status(url: str, status: int, seconds: float = 15.0) -> httpx.Response:
    async with asyncio.timeout(seconds):
        while (answer := await get(url)).status_code != status:
            await asyncio.sleep(0.2)
    return answer


async def test_ready_when_postgres_and_nats_answer(probes: str) -> None:
    # Given a service's probes, Postgres and NATS both up
    # When Kubernetes asks
    live, ready = await get(probes + "/healthz"), await get(probes + "/readyz")

    # Then it is live and ready, each check passed
    assert (live.status_code, live.json()["status"]) == (200, "live")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready", "failed": [], "checks": {"postgres": "ok", "nats": "ok"}
    }  # fmt: skip
    assert (await get(probes + "/elsewhere")).status_code == 404


async def test_not_ready_while_nats_is_stopped(probes: str, nats_server: EmbeddedNats) -> None:
    # Given a ready service
    await wait_for_status(probes + "/readyz", 200)

    # When its nats-server stops
    nats_server.stop()
    try:
        ready = await wait_for_status(probes + "/readyz", 503)

        # Then it is not ready, naming NATS, and still live
        assert ready.json()["failed"] == ["nats"]
        assert ready.json()["checks"] == {"postgres": "ok", "nats": "not connected"}
        assert (await get(probes + "/healthz")).status_code == 200
    finally:
        nats_server.start()

    # And ready again once NATS is back and the connection reconnected
    await wait_for_status(probes + "/readyz", 200)


async def test_not_ready_while_postgres_is_unreachable(probes: str, database_url: str) -> None:
    # Given a ready service
    await wait_for_status(probes + "/readyz", 200)

    # When its database refuses every connection, and those it had are cut
    name = urlsplit(database_url).path.lstrip("/")
    admin_url = database_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(sql.Identifier(name))
        )
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                     [name])  # fmt: skip
    try:
        ready = await wait_for_status(probes + "/readyz", 503)

        # Then it is not ready, naming Postgres (no error text), and still live
        assert ready.json()["failed"] == ["postgres"]
        assert ready.json()["checks"]["nats"] == "ok"
        assert ready.json()["checks"]["postgres"].startswith("failed (")
        assert name not in ready.text
        assert (await get(probes + "/healthz")).status_code == 200
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true").format(
                    sql.Identifier(name)
                )
            )

    # And ready again once Postgres takes connections again
    await wait_for_status(probes + "/readyz", 200)


async def test_no_server_at_port_zero(pool: asyncpg.Pool, nc: NATS) -> None:
    # Given the default settings (CSTOR_HEALTH_PORT=0), Then no server is started
    async with health.service_probes(Settings(), pool, nc) as server:
        assert server is None
