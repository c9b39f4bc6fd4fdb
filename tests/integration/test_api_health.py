"""The api's probes, /healthz and /readyz, on a real Postgres and nats-server: no token,
a small body naming what failed, and the relay's lag among the checks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from cryptography.fernet import Fernet
from litestar.testing import AsyncTestClient

from cstor.app.migrations import Migrations
from cstor.app.results import PlanTotals
from cstor.domain.planning import PacketDraft, PlannedObject
from cstor.settings import Settings
from launcher.embedded import EmbeddedNats
from services.api.app import create_app
from tests.given import Given

Client = AsyncTestClient[Any]


def record_migration(app: Migrations, objects: int) -> None:
    """A requested, planned migration of ``objects`` objects: objects + 3 events."""
    migration = app.get(Given(app).planning())
    packet = PacketDraft(planned=[PlannedObject(f"k{n}", n, "etag") for n in range(objects)])
    app.plan_packet(migration, 0, packet, PlanTotals(packets=1, objects=objects))


async def wait_for_status(client: Client, path: str, status: int) -> dict[str, Any]:
    async with asyncio.timeout(20):
        while (answer := await client.get(path)).status_code != status:
            await asyncio.sleep(0.2)
    body: dict[str, Any] = answer.json()
    return body


@pytest.fixture
async def api_without_relay(database_url: str, nats_url: str) -> AsyncIterator[Client]:
    """An api worker's process (no relay) that tolerates a lag of 5 events."""
    settings = Settings(
        database_url=database_url,
        nats_url=nats_url,
        secret_key=Fernet.generate_key().decode(),
        relay_max_lag=5,
    )
    async with AsyncTestClient(app=create_app(settings, relay=False)) as client:
        yield client


async def test_ready_with_the_relay_caught_up(visitor: Client) -> None:
    # Given the api with its relay, Postgres and NATS up, nobody signed in
    services = visitor.app.state.services
    await asyncio.to_thread(record_migration, services.migrations, 4)

    # When a probe asks, with no token, once the relay has published them (it is ready
    # meanwhile too: a few events behind is within the lag allowed)
    async with asyncio.timeout(20):
        while (body := await wait_for_status(visitor, "/readyz", 200))["checks"][
            "relay"
        ] != "0 events behind":
            await asyncio.sleep(0.2)

    # Then it is ready, and the relay has published all 7 events
    assert body["failed"] == []
    assert body["checks"] == {"postgres": "ok", "nats": "ok", "relay": "0 events behind"}
    live = await visitor.get("/healthz")
    assert (live.status_code, live.json()) == (200, {"status": "live", "failed": [], "checks": {}})
    assert (await visitor.get("/api/v1/health")).json() == {"status": "ok"}  # kept as it was


async def test_not_ready_while_the_relay_lags(api_without_relay: Client) -> None:
    # Given an api whose relay does not run, and 13 events in the store
    services = api_without_relay.app.state.services
    await asyncio.to_thread(record_migration, services.migrations, 10)

    # When a probe asks
    answer = await api_without_relay.get("/readyz")

    # Then it is not ready, saying how far behind the relay is, and still live
    assert answer.status_code == 503
    assert answer.json()["failed"] == ["relay"]
    assert answer.json()["checks"]["relay"] == "13 events behind (at most 5)"
    assert (await api_without_relay.get("/healthz")).status_code == 200


async def test_not_ready_while_nats_is_stopped(visitor: Client, nats_server: EmbeddedNats) -> None:
    # Given a ready api
    await wait_for_status(visitor, "/readyz", 200)

    # When its nats-server stops
    nats_server.stop()
    try:
        body = await wait_for_status(visitor, "/readyz", 503)

        # Then it is not ready, naming NATS, and still live
        assert body["failed"] == ["nats"]
        assert (await visitor.get("/healthz")).status_code == 200
    finally:
        nats_server.start()
    await wait_for_status(visitor, "/readyz", 200)


async def test_probes_are_not_in_the_api_schema(visitor: Client) -> None:
    paths = (await visitor.get("/schema/openapi.json")).json()["paths"]
    assert "/healthz" not in paths
    assert "/readyz" not in paths
