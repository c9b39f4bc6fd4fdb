"""Read models for the benches, made as the projector makes them: by folding events.

The benches time what the api reads, so they need migrations of many objects in the
read models. They do not write the tables themselves: they hand a migration's events
(requested, planning, each object planned and its outcome, planned, completed) to
`cstor.readmodel.projection.fold`, a batch a transaction, as the projector does with the
bus's deliveries. What they read is then what the projector would have written.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from cstor import contracts
from cstor.domain import transfer
from cstor.readmodel.projection import fold
from cstor.readmodel.tables import READ_MODELS

OBJECTS_PER_BATCH = 10_000  # objects per transaction: 10,000 rows, 20,000 events
SIZE = 4096


@dataclass
class Feed:
    """The projection on one connection, and how many events it was given (their positions)."""

    conn: asyncpg.Connection
    sequence: int = 0  # the last event's position

    def event(
        self, kind: type[contracts.Event], migration_id: uuid.UUID, at: datetime, **fields: Any
    ) -> contracts.Event:
        """The next event, numbered as the store would number it."""
        self.sequence += 1
        return kind(
            event_id=uuid.uuid4(),
            migration_id=migration_id,
            occurred_at=at,
            position=self.sequence,
            **fields,
        )

    async def project(self, events: list[contracts.Event]) -> None:
        """Fold the events in one transaction, as the projector folds a batch. The
        projector's position is left alone: these events are on no stream, and a bench
        may seed while the projector of a running stack follows the real one."""
        async with self.conn.transaction():
            await fold(self.conn, events)


@dataclass(frozen=True)
class Objects:
    """A migration's objects: how many, and each one's key, outcome and time."""

    count: int
    key: Callable[[int], str]
    outcome: Callable[[int], str]  # copied, failed, or planned (no outcome yet)
    at: Callable[[int], datetime]


async def migration(
    feed: Feed, owner: str, name: str, requested_at: datetime, started_at: datetime
) -> uuid.UUID:
    """A migration requested and being planned (no objects yet)."""
    migration_id = uuid.uuid4()
    requested = feed.event(
        contracts.MigrationRequested,
        migration_id,
        requested_at,
        name=name,
        owner=owner,
        source_connection_id=uuid.uuid4(),
        source_bucket="src",
        source_prefix="",
        destination_connection_id=uuid.uuid4(),
        destination_bucket="dst",
        destination_prefix="",
    )
    started = feed.event(contracts.MigrationPlanningStarted, migration_id, started_at)
    await feed.project([requested, started])
    return migration_id


async def planned(
    feed: Feed, migration_id: uuid.UUID, done_at: datetime, objects: Objects | None = None
) -> None:
    """Its objects planned, each with its outcome, then its planning done (it runs)."""
    count = objects.count if objects is not None else 0
    for start in range(0, count, OBJECTS_PER_BATCH):
        assert objects is not None
        numbers = range(start, min(start + OBJECTS_PER_BATCH, count))
        await feed.project(list(_object_events(feed, migration_id, objects, numbers)))
    done = feed.event(
        contracts.MigrationPlanned,
        migration_id,
        done_at,
        packets=1,
        objects=count,
        bytes=count * SIZE,
    )
    await feed.project([done])


async def completed(feed: Feed, migration_id: uuid.UUID, at: datetime) -> None:
    """It ended: completed, failures or none."""
    await feed.project(
        [feed.event(contracts.MigrationCompleted, migration_id, at, copied=0, failed=0)]
    )


def _object_events(
    feed: Feed, migration_id: uuid.UUID, objects: Objects, numbers: range
) -> Iterator[contracts.Event]:
    packet_id = uuid.uuid4()
    for n in numbers:
        key, at, outcome = objects.key(n), objects.at(n), objects.outcome(n)
        object_id = transfer.object_id(migration_id, key)
        yield feed.event(
            contracts.ObjectPlanned,
            migration_id,
            at,
            object_id=object_id,
            key=key,
            size=SIZE,
            etag="etag",
            packet_id=packet_id,
            version=1,
        )
        if outcome == "copied":
            yield feed.event(
                contracts.ObjectCopied,
                migration_id,
                at,
                object_id=object_id,
                size=SIZE,
                checksum=f"md5:{n:032x}",
                version=2,
            )
        elif outcome == "failed":
            yield feed.event(
                contracts.ObjectFailed,
                migration_id,
                at,
                object_id=object_id,
                reason="SlowDown",
                message="after 3 attempts",
                attempts=3,
                version=2,
            )


async def analyze(conn: asyncpg.Connection) -> None:
    """Fresh statistics for the planner, as autovacuum would gather them in a while."""
    await conn.execute("; ".join(f"ANALYZE {table}" for table in READ_MODELS))
