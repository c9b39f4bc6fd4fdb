"""Folds events into the read models, each event applied exactly once: their only writer.

A batch is applied in one transaction together with the stream position it reaches,
so a redelivered batch is recognised and skipped. Object rows also carry the
aggregate version, so even a duplicate published outside the stream's dedupe window
cannot count an object twice.

The projector service runs `project` from the bus (and, for a batch that keeps failing,
`fold` event by event); ``cstor rebuild-read-models`` runs `empty` and `fold` from the
event store, then `move_position`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import asyncpg

from cstor import contracts
from cstor.readmodel import batch, writes
from cstor.readmodel.writes import empty, move_position
from cstor.store import locks

T = TypeVar("T")

__all__ = ["empty", "fold", "move_position", "project", "unapplied"]


async def project(conn: asyncpg.Connection, events: Sequence[tuple[int, contracts.Event]]) -> int:
    """Apply events not yet applied, in one transaction; return how many were new.

    Each event comes with its stream sequence, the position the read models reach with it.
    """
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
    position = await writes.position(conn)
    return [(seq, item) for seq, item in items if seq > position]


async def fold(conn: asyncpg.Connection, events: Sequence[contracts.Event]) -> None:
    """Apply events to the read-model rows, in order; the caller's transaction commits."""
    events = list(events)
    folded = batch.Batch(objects=await writes.load_objects(conn, batch.object_ids(events)))
    for event in events:
        if isinstance(event, batch.OBJECT_EVENTS):
            batch.apply(folded, event)
        elif isinstance(event, contracts.MigrationRequested):
            await writes.migration_requested(conn, event)
        else:
            await writes.migration_changed(conn, event)
    await writes.save(conn, folded)
