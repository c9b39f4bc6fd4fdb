"""Read models in a test database, for tests of what the api shows.

A migration's row is written straight in (the totals a test shows are set there, as no
run of events would give them so plainly); its objects, and what happens to it next, come
as their events, folded by the projection as the projector folds them.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import asyncpg

from cstor import contracts
from cstor.domain import transfer
from cstor.readmodel.projection import fold

E = TypeVar("E", bound=contracts.Event)


async def record_migration(database_url: str, owner: str, **columns: Any) -> uuid.UUID:
    """A migration as the projector would have written it to the read model."""
    now = datetime.now(UTC)
    row: dict[str, Any] = {
        "id": uuid.uuid4(),
        "owner": owner,
        "name": "photos",
        "status": "running",
        "source_connection_id": uuid.uuid4(),
        "source_bucket": "src",
        "source_prefix": "",
        "destination_connection_id": uuid.uuid4(),
        "destination_bucket": "dst",
        "destination_prefix": "",
        "planning_done": True,
        "objects_planned": 4,
        "bytes_planned": 24 * 1024 * 1024,
        "objects_copied": 1,
        "bytes_copied": 12 * 1024 * 1024,
        "objects_failed": 1,
        "created_at": now,
        "started_at": now - timedelta(minutes=3),
        "updated_at": now,
    } | columns
    names = ", ".join(row)
    places = ", ".join(f"${n}" for n in range(1, len(row) + 1))
    conn = await asyncpg.connect(database_url)
    try:
        sql = f"INSERT INTO migrations_view ({names}) VALUES ({places})"  # noqa: S608
        await conn.execute(sql, *row.values())
    finally:
        await conn.close()
    return uuid.UUID(str(row["id"]))


async def record_objects(database_url: str, migration_id: uuid.UUID, count: int) -> None:
    """Objects planned, then every third failed and the rest copied, as their events come
    to the projection (which adds them to the migration's totals too)."""
    packet_id = uuid.uuid4()
    events: list[contracts.Event] = []
    for n in range(count):
        key = f"photos/{n:03d}.jpg"
        object_id = transfer.object_id(migration_id, key)
        events.append(migration_event(contracts.ObjectPlanned, migration_id, object_id=object_id,
                                      key=key, size=2048 * n, etag="", packet_id=packet_id,
                                      version=1))  # fmt: skip
        if n % 3 == 0:
            events.append(migration_event(contracts.ObjectFailed, migration_id,
                                          object_id=object_id, reason="SlowDown",
                                          message="after 3 attempts", attempts=3,
                                          version=2))  # fmt: skip
        else:
            events.append(migration_event(contracts.ObjectCopied, migration_id,
                                          object_id=object_id, size=2048 * n,
                                          checksum=f"md5:{n:032x}", version=2))  # fmt: skip
    await record_events(database_url, *events)


async def record_events(database_url: str, *events: contracts.Event) -> None:
    """Events folded into the read models by the projection, in one transaction."""
    conn = await asyncpg.connect(database_url)
    try:
        async with conn.transaction():
            await fold(conn, list(events))
    finally:
        await conn.close()


def migration_event(kind: type[E], migration_id: uuid.UUID, **fields: Any) -> E:
    """An event of the migration's, as it happens now (on no stream: position 0)."""
    return kind(event_id=uuid.uuid4(), migration_id=migration_id, occurred_at=datetime.now(UTC),
                position=0, **fields)  # fmt: skip
