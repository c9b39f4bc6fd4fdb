"""Folds events into the read models, each event applied exactly once.

A batch is applied in one transaction together with the stream position it reaches,
so a redelivered batch is recognised and skipped. Object rows also carry the
aggregate version, so even a duplicate published outside the stream's dedupe window
cannot count an object twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

import asyncpg

from cstor import contracts
from cstor.domain import transfer
from cstor.readmodel import THROUGHPUT_SPANS
from cstor.store import locks

POSITION_NAME = "projector"
T = TypeVar("T")


@dataclass
class _ObjectRow:
    id: UUID
    migration_id: UUID
    key: str
    status: str
    size: int
    etag: str
    checksum: str
    error: str
    attempts: int
    reason: str
    version: int
    updated_at: datetime


@dataclass
class _Totals:
    objects_planned: int = 0
    bytes_planned: int = 0
    objects_copied: int = 0
    bytes_copied: int = 0
    objects_failed: int = 0
    objects_skipped: int = 0
    bytes_skipped: int = 0
    packets_transferred: int = 0
    updated_at: datetime | None = None


@dataclass
class _Batch:
    objects: dict[UUID, _ObjectRow]
    changed: set[UUID] = field(default_factory=set)
    totals: dict[UUID, _Totals] = field(default_factory=lambda: defaultdict(_Totals))
    # Bytes copied by (migration, span, start of the span): the throughput chart's series.
    throughput: dict[tuple[UUID, int, int], int] = field(default_factory=lambda: defaultdict(int))


async def project(conn: asyncpg.Connection, events: Sequence[tuple[int, contracts.Event]]) -> int:
    """Apply events not yet applied, in one transaction; return how many were new."""
    async with conn.transaction():
        fresh = await unapplied(conn, events)
        if not fresh:
            return 0
        await fold(conn, [event for _, event in fresh])
        await move_position(conn, fresh[-1][0])
        return len(fresh)


async def unapplied(
    conn: asyncpg.Connection, items: Sequence[tuple[int, T]]
) -> list[tuple[int, T]]:
    """The items after the projector's position, in the caller's transaction.

    The transaction first takes `locks.READ_MODEL_REBUILD` shared: while
    ``cstor rebuild-read-models`` holds it, the projector waits, and then reads the position
    the rebuild left.
    """
    await conn.execute("SELECT pg_advisory_xact_lock_shared($1)", locks.READ_MODEL_REBUILD)
    position = await conn.fetchval(
        "INSERT INTO projector_position (name, position) VALUES ($1, 0) "
        "ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING position",
        POSITION_NAME,
    )
    return [(seq, item) for seq, item in items if seq > position]


async def move_position(conn: asyncpg.Connection, position: int) -> None:
    """Record how far the read models are, with their rows (the caller's transaction)."""
    await conn.execute(
        "INSERT INTO projector_position (name, position) VALUES ($1, $2)"
        " ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position",
        POSITION_NAME,
        position,
    )


async def fold(conn: asyncpg.Connection, events: Sequence[contracts.Event]) -> None:
    """Apply events to the read-model rows, in order; the caller's transaction commits."""
    batch = _Batch(objects=await _load_objects(conn, list(events)))
    for event in events:
        await _apply(conn, batch, event)
    await _save(conn, batch)


async def _load_objects(
    conn: asyncpg.Connection, events: list[contracts.Event]
) -> dict[UUID, _ObjectRow]:
    ids = [
        e.object_id
        for e in events
        if isinstance(
            e,
            contracts.ObjectPlanned
            | contracts.ObjectCopied
            | contracts.ObjectFailed
            | contracts.ObjectRetried,
        )
    ]
    for e in events:
        if isinstance(e, contracts.PacketPlanned):
            ids += [transfer.object_id(e.migration_id, s.key) for s in e.skipped]
    if not ids:
        return {}
    rows = await conn.fetch("SELECT * FROM objects_view WHERE id = ANY($1::uuid[])", ids)
    return {row["id"]: _ObjectRow(**dict(row)) for row in rows}


async def _apply(conn: asyncpg.Connection, batch: _Batch, event: contracts.Event) -> None:
    match event:
        case contracts.ObjectPlanned():
            _object_planned(batch, event)
        case contracts.ObjectCopied() | contracts.ObjectFailed():
            _object_outcome(batch, event)
        case contracts.ObjectRetried():
            _object_retried(batch, event)
        case contracts.PacketPlanned():
            _packet_planned(batch, event)
        case contracts.PacketTransferred():
            totals = batch.totals[event.migration_id]
            totals.packets_transferred += 1
            totals.updated_at = event.occurred_at
        case contracts.MigrationRequested():
            await _migration_requested(conn, event)
        case _:
            await _migration_changed(conn, event)


def _object_planned(batch: _Batch, event: contracts.ObjectPlanned) -> None:
    if event.object_id in batch.objects:
        return
    batch.objects[event.object_id] = _ObjectRow(
        id=event.object_id,
        migration_id=event.migration_id,
        key=event.key,
        status="planned",
        size=event.size,
        etag=event.etag,
        checksum="",
        error="",
        reason="",
        attempts=0,
        version=event.version,
        updated_at=event.occurred_at,
    )
    batch.changed.add(event.object_id)
    totals = batch.totals[event.migration_id]
    totals.objects_planned += 1
    totals.bytes_planned += event.size
    totals.updated_at = event.occurred_at


def _object_retried(batch: _Batch, event: contracts.ObjectRetried) -> None:
    """A failed object queued again: planned once more, no longer counted as failed."""
    row = batch.objects.get(event.object_id)
    if row is None or row.version >= event.version:
        return
    if row.status == "failed":
        batch.totals[event.migration_id].objects_failed -= 1
    row.status, row.error, row.version = "planned", "", event.version
    row.updated_at = event.occurred_at
    batch.changed.add(row.id)


def _packet_planned(batch: _Batch, event: contracts.PacketPlanned) -> None:
    """Skipped objects ride in their packet's event; each becomes a row, counted once."""
    totals = batch.totals[event.migration_id]
    for skipped in event.skipped:
        object_id = transfer.object_id(event.migration_id, skipped.key)
        if object_id in batch.objects:
            continue
        batch.objects[object_id] = _ObjectRow(
            id=object_id,
            migration_id=event.migration_id,
            key=skipped.key,
            status="skipped",
            size=skipped.size,
            etag="",
            checksum="",
            error="",
            reason=skipped.reason,
            attempts=0,
            version=0,
            updated_at=event.occurred_at,
        )
        batch.changed.add(object_id)
        totals.objects_skipped += 1
        totals.bytes_skipped += skipped.size
        totals.updated_at = event.occurred_at


def _object_outcome(batch: _Batch, event: contracts.ObjectCopied | contracts.ObjectFailed) -> None:
    row = batch.objects.get(event.object_id)
    # An object's planned event always precedes its outcome on the stream; an outcome at or
    # below the row's version was applied already (a duplicate), so it is not counted again.
    if row is None or row.version >= event.version:
        return
    totals = batch.totals[event.migration_id]
    if isinstance(event, contracts.ObjectCopied):
        row.status, row.size, row.checksum, row.error = "copied", event.size, event.checksum, ""
        totals.objects_copied += 1
        totals.bytes_copied += event.size
        second = int(event.occurred_at.timestamp())
        for span in THROUGHPUT_SPANS:
            batch.throughput[(event.migration_id, span, second - second % span)] += event.size
    else:
        row.status, row.error, row.attempts = (
            "failed",
            f"{event.reason}: {event.message}",
            event.attempts,
        )
        totals.objects_failed += 1
    row.version = event.version
    row.updated_at = event.occurred_at
    totals.updated_at = event.occurred_at
    batch.changed.add(row.id)


async def _migration_requested(
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


async def _migration_changed(conn: asyncpg.Connection, event: contracts.Event) -> None:
    sets: dict[str, Any] = {"updated_at": event.occurred_at}
    match event:
        case contracts.MigrationPlanningStarted():
            sets |= {"status": "planning", "started_at": event.occurred_at}
        case contracts.MigrationPlanned():
            sets |= {"planning_done": True, "packets_planned": event.packets}
            # Planning may finish while copying is paused: a paused migration stays paused.
            await conn.execute(
                "UPDATE migrations_view SET status = 'running'"
                " WHERE id = $1 AND status <> 'paused'",
                event.migration_id,
            )
        case contracts.MigrationCompleted():
            sets |= {"status": "completed", "finished_at": event.occurred_at}
        case contracts.MigrationPaused():
            sets |= {"status": "paused"}
        case contracts.MigrationResumed():
            sets |= {"status": event.status}
        case contracts.MigrationCancelled():
            sets |= {"status": "cancelled", "finished_at": event.occurred_at}
        case contracts.MigrationRetryRequested():
            sets |= {"status": "running", "finished_at": None, "packets_planned": event.packets}
        case contracts.MigrationFailed():
            sets |= {
                "status": "failed",
                "finished_at": event.occurred_at,
                "error": f"{event.reason}: {event.message}",
            }
        case _:
            return
    assignments = ", ".join(f"{column} = ${n}" for n, column in enumerate(sets, start=2))
    await conn.execute(
        f"UPDATE migrations_view SET {assignments} WHERE id = $1",  # noqa: S608
        event.migration_id,
        *sets.values(),
    )


async def _save(conn: asyncpg.Connection, batch: _Batch) -> None:
    if batch.changed:
        await conn.executemany(
            "INSERT INTO objects_view (id, migration_id, key, status, size, etag, checksum,"
            " error, attempts, version, updated_at, reason)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
            " ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, size = EXCLUDED.size,"
            " checksum = EXCLUDED.checksum, error = EXCLUDED.error,"
            " attempts = EXCLUDED.attempts, version = EXCLUDED.version,"
            " updated_at = EXCLUDED.updated_at",
            [
                (
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
                for r in (batch.objects[i] for i in batch.changed)
            ],
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
