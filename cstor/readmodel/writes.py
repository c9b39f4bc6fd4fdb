"""The projection's statements: every write to the read-model tables is one of these.

They run in the caller's transaction (`projection.project` or a rebuild), which also
moves the projector's position, so that a batch's rows and its position commit together.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from cstor import contracts
from cstor.readmodel.batch import Batch, ObjectRow
from cstor.readmodel.tables import READ_MODELS

POSITION_NAME = "projector"


async def position(conn: asyncpg.Connection) -> int:
    """The projector's position, made 0 the first time (the row is then locked till commit)."""
    found: int = await conn.fetchval(
        "INSERT INTO projector_position (name, position) VALUES ($1, 0) "
        "ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING position",
        POSITION_NAME,
    )
    return found


async def move_position(conn: asyncpg.Connection, position: int) -> None:
    """Record how far the read models are, with their rows (the caller's transaction)."""
    await conn.execute(
        "INSERT INTO projector_position (name, position) VALUES ($1, $2)"
        " ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position",
        POSITION_NAME,
        position,
    )


async def empty(conn: asyncpg.Connection) -> None:
    """Delete every read-model row (not the position: the rebuild sets it)."""
    for table in READ_MODELS:
        await conn.execute(f"DELETE FROM {table}")  # noqa: S608 (names of our own)


async def load_objects(conn: asyncpg.Connection, ids: list[UUID]) -> dict[UUID, ObjectRow]:
    """The object rows of these ids that exist, by id."""
    if not ids:
        return {}
    rows = await conn.fetch(
        "SELECT id, migration_id, key, status, size, etag, checksum, error, attempts, reason,"
        " version, updated_at FROM objects_view WHERE id = ANY($1::uuid[])",
        ids,
    )
    return {row["id"]: ObjectRow(*row) for row in rows}


async def migration_requested(
    conn: asyncpg.Connection, event: contracts.MigrationRequested
) -> None:
    await conn.execute(
        "INSERT INTO migrations_view (id, owner, name, status, source_connection_id,"
        " source_bucket, source_prefix, destination_connection_id, destination_bucket,"
        " destination_prefix, created_at, updated_at, overwrite, sync_of, storage_class,"
        " bandwidth_bytes_per_second, concurrent_objects)"
        " VALUES ($1, $2, $3, 'requested', $4, $5, $6, $7, $8, $9, $10, $10, $11, $12, $13,"
        " $14, $15)"
        " ON CONFLICT (id) DO NOTHING",
        event.migration_id,
        event.owner,
        event.name,
        event.source_connection_id,
        event.source_bucket,
        event.source_prefix,
        event.destination_connection_id,
        event.destination_bucket,
        event.destination_prefix,
        event.occurred_at,
        event.overwrite,
        event.sync_of,
        event.storage_class,
        event.limits.bandwidth_bytes_per_second,
        event.limits.concurrent_objects,
    )


def _migration_sets(event: contracts.Event) -> dict[str, Any]:
    """The columns of a migration's row an event sets, besides updated_at (none: not one)."""
    match event:
        case contracts.MigrationPlanningStarted():
            return {"status": "planning", "started_at": event.occurred_at}
        case contracts.MigrationPlanned():
            return {"planning_done": True, "packets_planned": event.packets}
        case contracts.MigrationCompleted():
            return {"status": "completed", "finished_at": event.occurred_at}
        case contracts.MigrationPaused():
            return {"status": "paused"}
        case contracts.MigrationResumed():
            return {"status": event.status}
        case contracts.MigrationCancelled():
            return {"status": "cancelled", "finished_at": event.occurred_at}
        case contracts.MigrationRetryRequested():
            return {"status": "running", "finished_at": None, "packets_planned": event.packets}
        case contracts.MigrationFailed():
            return {
                "status": "failed",
                "finished_at": event.occurred_at,
                "error": f"{event.reason}: {event.message}",
            }
    return {}


async def migration_changed(conn: asyncpg.Connection, event: contracts.Event) -> None:
    """A migration's own event (not an object's): the columns of its row it sets."""
    sets = _migration_sets(event)
    if not sets:
        return
    if isinstance(event, contracts.MigrationPlanned):
        # Planning may finish while copying is paused: a paused migration stays paused.
        await conn.execute(
            "UPDATE migrations_view SET status = 'running' WHERE id = $1 AND status <> 'paused'",
            event.migration_id,
        )
    sets = {"updated_at": event.occurred_at} | sets
    assignments = ", ".join(f"{column} = ${n}" for n, column in enumerate(sets, start=2))
    await conn.execute(
        f"UPDATE migrations_view SET {assignments} WHERE id = $1",  # noqa: S608
        event.migration_id,
        *sets.values(),
    )


async def save(conn: asyncpg.Connection, batch: Batch) -> None:
    """Write what a batch changed: its object rows, throughput and migrations' totals."""
    if batch.changed:
        await conn.executemany(
            "INSERT INTO objects_view (id, migration_id, key, status, size, etag, checksum,"
            " error, attempts, version, updated_at, reason)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
            " ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, size = EXCLUDED.size,"
            " checksum = EXCLUDED.checksum, error = EXCLUDED.error,"
            " attempts = EXCLUDED.attempts, version = EXCLUDED.version,"
            " updated_at = EXCLUDED.updated_at",
            [_object_values(batch.objects[i]) for i in batch.changed],
        )
    if batch.throughput:
        await conn.executemany(
            "INSERT INTO throughput_view (migration_id, span, second, bytes)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT (migration_id, span, second)"
            " DO UPDATE SET bytes = throughput_view.bytes + EXCLUDED.bytes",
            [(*where, size) for where, size in batch.throughput.items()],
        )
    if batch.totals:
        await conn.executemany(
            "UPDATE migrations_view SET objects_planned = objects_planned + $2,"
            " bytes_planned = bytes_planned + $3, objects_copied = objects_copied + $4,"
            " bytes_copied = bytes_copied + $5, objects_failed = objects_failed + $6,"
            " packets_transferred = packets_transferred + $7,"
            " objects_skipped = objects_skipped + $9, bytes_skipped = bytes_skipped + $10,"
            " updated_at = GREATEST(updated_at, $8) WHERE id = $1",
            [
                (
                    mid,
                    t.objects_planned,
                    t.bytes_planned,
                    t.objects_copied,
                    t.bytes_copied,
                    t.objects_failed,
                    t.packets_transferred,
                    t.updated_at,
                    t.objects_skipped,
                    t.bytes_skipped,
                )
                for mid, t in batch.totals.items()
            ],
        )


def _object_values(r: ObjectRow) -> tuple[object, ...]:
    return (
        r.id,
        r.migration_id,
        r.key,
        r.status,
        r.size,
        r.etag,
        r.checksum,
        r.error,
        r.attempts,
        r.version,
        r.updated_at,
        r.reason,
    )
