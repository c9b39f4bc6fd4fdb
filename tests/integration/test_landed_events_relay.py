"""Events earlier releases stored, in a real Postgres event store, reach the stream as the
landed release published them (tests/unit/data/landed_events.json: see test_event_schema)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import msgspec
import pytest
from eventsourcing.persistence import StoredEvent
from nats.aio.client import Client as NATS

from cstor import bus, contracts, stream
from cstor.app.migrations import Migrations
from cstor.settings import Settings
from cstor.store.migrations import migrate
from cstor.store.relay import OutboxRelay
from launcher.embedded import EmbeddedNats

LANDED: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent.parent / "unit" / "data" / "landed_events.json").read_text()
)


@pytest.fixture
async def store_and_bus(
    database_url: str, nats_server: EmbeddedNats
) -> AsyncIterator[tuple[Migrations, NATS]]:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    await migrate(pool)
    await pool.close()
    app = Migrations(Settings(database_url=database_url).eventsourcing_env())
    nc = await bus.connect(nats_server.url, "landed-events-test")
    await stream.ensure_stream(nc.jetstream(), "CSTOR")
    yield app, nc
    await nc.close()
    app.close()


async def test_events_stored_by_earlier_releases_are_published_as_the_landed_relay_did(
    store_and_bus: tuple[Migrations, NATS], database_url: str
) -> None:
    app, nc = store_and_bus
    # Given the stored events of three releases, byte for byte, in the event store
    stored = [
        StoredEvent(
            originator_id=UUID(row["originator_id"]),
            originator_version=row["originator_version"],
            topic=row["topic"],
            state=row["state"].encode(),
        )
        for row in LANDED
    ]
    positions = await asyncio.to_thread(app.recorder.insert_events, stored)
    assert positions is not None
    assert len(positions) == len(LANDED)
    # When the relay publishes the store's notification log
    stop = asyncio.Event()
    relay = asyncio.create_task(OutboxRelay(app, nc, database_url).run(stop))
    js = nc.jetstream()
    async with asyncio.timeout(30):
        while (await js.stream_info("CSTOR")).state.messages < len(LANDED):
            await asyncio.sleep(0.1)
    stop.set()
    await relay
    # Then each message is the one the landed outbox made of that event, at its position here
    for seq, (row, position) in enumerate(zip(LANDED, positions, strict=True), start=1):
        landed = contracts.decoder.decode(row["bus"])
        expected = contracts.encoder.encode(msgspec.structs.replace(landed, position=position))
        msg = await js.get_msg("CSTOR", seq)
        assert msg.data == expected, row["topic"]
        assert msg.subject == contracts.subject_of(landed)
