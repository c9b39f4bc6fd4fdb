"""The api's view of the read models: `cstor.readmodel.queries`, remembered and shown.

The queries are `cstor.readmodel`'s; this adds what only the api needs: what each worker
remembers until the projector changes a migration's row (services.api.cache), the
cursors it hands out, and the REST shapes (services.api.migrations.schemas) it answers in.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg

from cstor.readmodel import MIGRATION_CHANGED, OBJECT_STATUSES, queries
from cstor.readmodel.records import Migration, ObjectEntry
from services.api.cache import NotifiedCache
from services.api.migrations.schemas import LimitsIn, MigrationOut, ObjectOut, ObjectPage

__all__ = ["OBJECT_STATUSES", "BadCursor", "ReadModels", "decode_cursor", "encode_cursor"]


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
        return [_migration(m) for m in await queries.migrations(self.pool, owner, limit)]

    async def migrations_page(
        self, owner: str, *, cursor: str | None = None, limit: int = 100
    ) -> tuple[list[MigrationOut], str | None]:
        """Migrations newest first, from after ``cursor``; and the cursor of the next page."""
        after = decode_cursor(cursor) if cursor else None
        page = await queries.migrations_page(self.pool, owner, after, limit)
        items = [_migration(m) for m in page.items]
        return items, encode_cursor(items[-1].created_at, items[-1].id) if page.more else None

    async def throughput(
        self, migration_id: UUID, start: datetime, end: datetime, bins: int
    ) -> list[int]:
        """Bytes copied in each of ``bins`` equal spans of time from ``start`` to ``end``.

        The last answer is remembered until the migration's row changes: asked again for
        the same span (a finished migration's end does not move), it is the same.
        """
        if self._charts is None:
            return await queries.throughput(self.pool, migration_id, start, end, bins)
        asked = (start, end, bins)

        async def read() -> tuple[tuple[Any, ...], list[int]]:
            return asked, await queries.throughput(self.pool, migration_id, start, end, bins)

        found = await self._charts.get(migration_id, read, matches=lambda kept: kept[0] == asked)
        assert found is not None  # read() always finds
        return found[1]

    async def unfinished_migrations_using(
        self, owner: str, connection_id: UUID
    ) -> list[tuple[str, str]]:
        """Name and status of each unfinished migration from or to the connection."""
        uses = await queries.unfinished_migrations_using(self.pool, owner, connection_id)
        return [(use.name, use.status) for use in uses]

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
        found = await queries.migration(self.pool, migration_id)
        return None if found is None else (found.owner, _migration(found))

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
        page = await queries.objects(
            self.pool, migration_id, status=status, prefix=prefix, after=cursor, limit=limit
        )
        return ObjectPage(items=[_object(o) for o in page.items], next_cursor=page.next_cursor)


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


def _migration(found: Migration) -> MigrationOut:
    limits = LimitsIn(
        bandwidth_bytes_per_second=found.limits.bandwidth_bytes_per_second,
        concurrent_objects=found.limits.concurrent_objects,
    )
    fields = {name: getattr(found, name) for name in _MIGRATION_OUT_FIELDS}
    return MigrationOut(**fields, limits=limits)


_MIGRATION_OUT_FIELDS = tuple(name for name in MigrationOut.__struct_fields__ if name != "limits")


def _object(entry: ObjectEntry) -> ObjectOut:
    return ObjectOut(
        key=entry.key,
        status=entry.status,
        size=entry.size,
        checksum=entry.checksum,
        error=entry.error,
        updated_at=entry.updated_at,
        reason=entry.reason,
    )
