"""The read models' only readers: typed queries answering `records` values.

Each takes the pool (or a connection) it runs on; filtering to a user is the caller's
(the api checks a migration's owner before it shows any of its objects).
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from datetime import datetime
from typing import TypeAlias
from uuid import UUID

import asyncpg

from cstor.readmodel.records import (
    FailedObject,
    Limits,
    Migration,
    MigrationPage,
    MigrationUse,
    ObjectEntry,
    ObjectPage,
    ObjectReport,
)
from cstor.readmodel.tables import THROUGHPUT_SPANS

_LIMITS = Limits.__struct_fields__
_MIGRATION_FIELDS = tuple(name for name in Migration.__struct_fields__ if name != "limits")
_MIGRATION_COLUMNS = ", ".join(_MIGRATION_FIELDS + _LIMITS)
_ENTRY_COLUMNS = ", ".join(ObjectEntry.__struct_fields__)
_REPORT_COLUMNS = ", ".join(ObjectReport.__struct_fields__)

Queryable: TypeAlias = asyncpg.Pool | asyncpg.Connection
"""A pool, or a connection (in a transaction of the caller's)."""


async def migrations(db: Queryable, owner: str, limit: int = 100) -> list[Migration]:
    """The owner's newest migrations."""
    rows = await db.fetch(
        f"SELECT {_MIGRATION_COLUMNS} FROM migrations_view WHERE owner = $1"  # noqa: S608
        " ORDER BY created_at DESC LIMIT $2",
        owner,
        limit,
    )
    return [_migration(row) for row in rows]


async def migrations_page(
    db: Queryable, owner: str, after: tuple[datetime, UUID] | None, limit: int = 100
) -> MigrationPage:
    """The owner's migrations newest first, from after (created_at, id) ``after``."""
    params: list[object] = [owner, limit + 1]
    clause = ""
    if after is not None:
        params += list(after)
        clause = " AND (created_at, id) < ($3, $4)"
    rows = await db.fetch(
        f"SELECT {_MIGRATION_COLUMNS} FROM migrations_view WHERE owner = $1{clause}"  # noqa: S608
        " ORDER BY created_at DESC, id DESC LIMIT $2",
        *params,
    )
    return MigrationPage([_migration(row) for row in rows[:limit]], len(rows) > limit)


async def migration(db: Queryable, migration_id: UUID) -> Migration | None:
    """The migration's row, whoever owns it (the caller compares `Migration.owner`)."""
    row = await db.fetchrow(
        f"SELECT {_MIGRATION_COLUMNS} FROM migrations_view WHERE id = $1",  # noqa: S608
        migration_id,
    )
    return None if row is None else _migration(row)


async def unfinished_migrations_using(
    db: Queryable, owner: str, connection_id: UUID
) -> list[MigrationUse]:
    """The owner's migrations from or to the connection that have not ended, oldest first."""
    rows = await db.fetch(
        "SELECT name, status FROM migrations_view WHERE owner = $1"
        " AND $2 IN (source_connection_id, destination_connection_id)"
        " AND status NOT IN ('completed', 'failed', 'cancelled') ORDER BY created_at",
        owner,
        connection_id,
    )
    return [MigrationUse(row["name"], row["status"]) for row in rows]


async def throughput(
    db: Queryable, migration_id: UUID, start: datetime, end: datetime, bins: int
) -> list[int]:
    """Bytes copied in each of ``bins`` equal spans of time from ``start`` to ``end``.

    Read from the projector's series, in the longest span no longer than a bin: a few
    thousand rows at most, however many objects the migration has.
    """
    first, last = start.timestamp(), max(end.timestamp(), start.timestamp() + 1)
    span = max(s for s in THROUGHPUT_SPANS if s == 1 or s <= (last - first) / bins)
    rows = await db.fetch(
        "SELECT least(width_bucket(second, $3, $4, $5), $5) AS bin,"
        " sum(bytes)::bigint AS bytes FROM throughput_view"
        " WHERE migration_id = $1 AND span = $2 AND second >= $6 AND second < $7"
        " GROUP BY 1",
        migration_id,
        span,
        first,
        last,
        bins,
        int(first) - span,  # whole seconds, so that the primary key's index serves
        math.ceil(last),
    )
    totals = [0] * bins
    for row in rows:
        totals[max(row["bin"], 1) - 1] += row["bytes"]
    return totals


async def objects(
    db: Queryable,
    migration_id: UUID,
    *,
    status: str | None = None,
    prefix: str = "",
    after: str | None = None,
    limit: int = 100,
) -> ObjectPage:
    """The migration's objects in key order, from after the key ``after``."""
    clauses = ["migration_id = $1"]
    params: list[object] = [migration_id]
    if status:
        params.append(status)
        clauses.append(f"status = ${len(params)}")
    if prefix:
        params.append(prefix)
        clauses.append(f"starts_with(key, ${len(params)})")
    if after is not None:
        params.append(after)
        clauses.append(f"key > ${len(params)}")
    params.append(limit + 1)
    rows = await db.fetch(
        f"SELECT {_ENTRY_COLUMNS} FROM objects_view"  # noqa: S608
        f" WHERE {' AND '.join(clauses)} ORDER BY key LIMIT ${len(params)}",
        *params,
    )
    items = [ObjectEntry(**dict(row)) for row in rows[:limit]]
    return ObjectPage(items, items[-1].key if len(rows) > limit else None)


async def report(
    pool: asyncpg.Pool, migration_id: UUID, rows_per_fetch: int
) -> AsyncIterator[list[ObjectReport]]:
    """Every object of the migration in key order, ``rows_per_fetch`` at a time, read from
    a server-side cursor (never the whole migration in memory), in one snapshot."""
    async with pool.acquire() as conn, conn.transaction(readonly=True):
        cursor = await conn.cursor(
            f"SELECT {_REPORT_COLUMNS} FROM objects_view"  # noqa: S608
            " WHERE migration_id = $1 ORDER BY key",
            migration_id,
        )
        while rows := await cursor.fetch(rows_per_fetch):
            yield [ObjectReport(**dict(row)) for row in rows]


async def failed_objects(db: Queryable, migration_id: UUID) -> list[FailedObject]:
    """The migration's failed objects in key order, at the version of their failure."""
    rows = await db.fetch(
        "SELECT key, size, etag, version FROM objects_view"
        " WHERE migration_id = $1 AND status = 'failed' ORDER BY key",
        migration_id,
    )
    return [FailedObject(*row) for row in rows]


def _migration(row: asyncpg.Record) -> Migration:
    limits = Limits(**{name: row[name] for name in _LIMITS})
    return Migration(**{name: row[name] for name in _MIGRATION_FIELDS}, limits=limits)
