"""Read-model queries for the api and the dashboard."""

from __future__ import annotations

import base64
import math
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg

from cstor.readmodel import MIGRATION_CHANGED, THROUGHPUT_SPANS
from services.api.cache import NotifiedCache
from services.api.schemas import LimitsIn, MigrationOut, ObjectOut, ObjectPage

OBJECT_STATUSES = ("planned", "copied", "failed", "skipped")


class ReadModels:
    """What users see of migrations: the projector's tables, filtered to their owner.

    With ``database_url``, a migration's row is remembered until the projector changes
    it (services.api.cache): the progress poll, the page and the REST calls each read it.
    """

    def __init__(self, pool: asyncpg.Pool, database_url: str = "") -> None:
        self.pool = pool
        self._rows: NotifiedCache[UUID, tuple[str, MigrationOut]] | None = None
        # A finished migration's chart, asked again and again with the same span of time.
        self._charts: NotifiedCache[UUID, tuple[tuple[Any, ...], list[int]]] | None = None
        if database_url:
            self._rows = NotifiedCache(database_url, MIGRATION_CHANGED, _migration_named)
            self._charts = NotifiedCache(database_url, MIGRATION_CHANGED, _migration_named)

    def start(self) -> None:
        for cache in (self._rows, self._charts):
            if cache is not None:
                cache.start()

    async def close(self) -> None:
        for cache in (self._rows, self._charts):
            if cache is not None:
                await cache.close()

    async def migrations(self, owner: str, limit: int = 100) -> list[MigrationOut]:
        rows = await self.pool.fetch(
            "SELECT * FROM migrations_view WHERE owner = $1 ORDER BY created_at DESC LIMIT $2",
            owner,
            limit,
        )
        return [_migration(row) for row in rows]

    async def migrations_page(
        self, owner: str, *, cursor: str | None = None, limit: int = 100
    ) -> tuple[list[MigrationOut], str | None]:
        """Migrations newest first, from after ``cursor``; and the cursor of the next page."""
        params: list[Any] = [owner, limit + 1]
        after = ""
        if cursor:
            created_at, migration_id = decode_cursor(cursor)
            params += [created_at, migration_id]
            after = " AND (created_at, id) < ($3, $4)"
        rows = await self.pool.fetch(
            f"SELECT * FROM migrations_view WHERE owner = $1{after}"  # noqa: S608
            " ORDER BY created_at DESC, id DESC LIMIT $2",
            *params,
        )
        items = [_migration(row) for row in rows[:limit]]
        more = len(rows) > limit
        return items, encode_cursor(items[-1].created_at, items[-1].id) if more else None

    async def throughput(
        self, migration_id: UUID, start: datetime, end: datetime, bins: int
    ) -> list[int]:
        """Bytes copied in each of ``bins`` equal spans of time from ``start`` to ``end``.

        Read from the projector's series, in the longest span no longer than a bin: a
        few thousand rows at most, however many objects the migration has. The last
        answer is remembered until the migration's row changes: asked again for the same
        span (a finished migration's end does not move), it is the same.
        """
        if self._charts is None:
            return await self._throughput(migration_id, start, end, bins)
        asked = (start, end, bins)

        async def read() -> tuple[tuple[Any, ...], list[int]]:
            return asked, await self._throughput(migration_id, start, end, bins)

        found = await self._charts.get(migration_id, read, matches=lambda kept: kept[0] == asked)
        assert found is not None  # read() always finds
        return found[1]

    async def _throughput(
        self, migration_id: UUID, start: datetime, end: datetime, bins: int
    ) -> list[int]:
        first, last = start.timestamp(), max(end.timestamp(), start.timestamp() + 1)
        span = max(s for s in THROUGHPUT_SPANS if s == 1 or s <= (last - first) / bins)
        rows = await self.pool.fetch(
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

    async def unfinished_migrations_using(
        self, owner: str, connection_id: UUID
    ) -> list[tuple[str, str]]:
        """Name and status of each unfinished migration from or to the connection."""
        rows = await self.pool.fetch(
            "SELECT name, status FROM migrations_view WHERE owner = $1"
            " AND $2 IN (source_connection_id, destination_connection_id)"
            " AND status NOT IN ('completed', 'failed', 'cancelled') ORDER BY created_at",
            owner,
            connection_id,
        )
        return [(row["name"], row["status"]) for row in rows]

    async def migration(self, owner: str, migration_id: UUID) -> MigrationOut | None:
        """The migration, if it is the owner's."""
        if self._rows is None:
            found = await self._owner_and_migration(migration_id)
        else:
            found = await self._rows.get(
                migration_id, lambda: self._owner_and_migration(migration_id)
            )
        return found[1] if found is not None and found[0] == owner else None

    async def _owner_and_migration(self, migration_id: UUID) -> tuple[str, MigrationOut] | None:
        row = await self.pool.fetchrow("SELECT * FROM migrations_view WHERE id = $1", migration_id)
        return None if row is None else (row["owner"], _migration(row))

    async def objects(
        self,
        migration_id: UUID,
        *,
        status: str | None = None,
        prefix: str = "",
        cursor: str | None = None,
        limit: int = 100,
    ) -> ObjectPage:
        """Objects in key order, from after ``cursor`` (the last key of the previous page)."""
        clauses = ["migration_id = $1"]
        params: list[Any] = [migration_id]
        if status:
            params.append(status)
            clauses.append(f"status = ${len(params)}")
        if prefix:
            params.append(prefix)
            clauses.append(f"starts_with(key, ${len(params)})")
        if cursor is not None:
            params.append(cursor)
            clauses.append(f"key > ${len(params)}")
        params.append(limit + 1)
        rows = await self.pool.fetch(
            f"SELECT key, status, size, checksum, error, reason, updated_at FROM objects_view"  # noqa: S608
            f" WHERE {' AND '.join(clauses)} ORDER BY key LIMIT ${len(params)}",
            *params,
        )
        items = [ObjectOut(**dict(row)) for row in rows[:limit]]
        next_cursor = items[-1].key if len(rows) > limit else None
        return ObjectPage(items=items, next_cursor=next_cursor)


class BadCursor(ValueError):
    """A cursor this api did not hand out."""


def encode_cursor(created_at: datetime, migration_id: UUID) -> str:
    raw = f"{created_at.isoformat()}|{migration_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    """The creation time (in UTC) and id a cursor of encode_cursor holds; BadCursor if it is
    not one: the time must name its zone and be a time Postgres and Python can both hold."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        text, _, migration_id = raw.partition("|")
        created_at = datetime.fromisoformat(text)
        if created_at.tzinfo is None:
            raise ValueError("a cursor's time names its zone")
        return created_at.astimezone(UTC), UUID(migration_id)
    except (ValueError, OverflowError) as error:  # UnicodeDecodeError is a ValueError
        raise BadCursor("cursor is not one this api handed out; start without one") from error


def _migration_named(payload: str) -> list[UUID]:
    try:
        return [UUID(payload)]
    except ValueError:
        return []


def _migration(row: asyncpg.Record) -> MigrationOut:
    limits = LimitsIn(**{name: row[name] for name in LimitsIn.__struct_fields__})
    fields = {name: row[name] for name in MigrationOut.__struct_fields__ if name != "limits"}
    return MigrationOut(**fields, limits=limits)
