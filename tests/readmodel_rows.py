"""Read models in a test database, for tests of what the api shows.

A migration's row and its objects' rows are written straight in (what a test shows needs
totals and errors no run of events would give so plainly); what happens to a migration
next comes as its events, folded by the projection as the projector folds them.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import asyncpg

from cstor import contracts
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
    """Objects in the read model: every third failed, the rest copied."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.executemany(
            "INSERT INTO objects_view (id, migration_id, key, status, size, etag, checksum,"
            " error, version, updated_at) VALUES ($1, $2, $3, $4, $5, '', $6, $7, 1, now())",
            [
                (
                    uuid.uuid4(),
                    migration_id,
                    f"photos/{n:03d}.jpg",
                    "failed" if n % 3 == 0 else "copied",
                    2048 * n,
                    "" if n % 3 == 0 else f"md5:{n:032x}",
                    "SlowDown after 3 attempts" if n % 3 == 0 else "",
                )
                for n in range(count)
            ],
        )
    finally:
        await conn.close()


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
