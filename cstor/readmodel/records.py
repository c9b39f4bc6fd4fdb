"""What the read-model queries answer: frozen values, never database rows.

Their fields are the columns' names, so a reader sees at once which column a value is.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec


class Limits(msgspec.Struct, frozen=True, kw_only=True):
    """How much a migration may do at once (None: no limit), as it was asked."""

    bandwidth_bytes_per_second: int | None = None
    concurrent_objects: int | None = None


class Migration(msgspec.Struct, frozen=True, kw_only=True):
    """A migration's row: what it was asked for, its status and its totals so far."""

    id: UUID
    owner: str
    name: str
    status: str
    source_connection_id: UUID
    source_bucket: str
    source_prefix: str
    destination_connection_id: UUID
    destination_bucket: str
    destination_prefix: str
    planning_done: bool
    packets_planned: int
    packets_transferred: int
    objects_planned: int
    bytes_planned: int
    objects_copied: int
    bytes_copied: int
    objects_failed: int
    objects_skipped: int
    bytes_skipped: int
    overwrite: str
    sync_of: UUID | None
    error: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    storage_class: str | None
    limits: Limits


class MigrationUse(msgspec.Struct, frozen=True):
    """An unfinished migration from or to a connection: its name and status."""

    name: str
    status: str


class MigrationPage(msgspec.Struct, frozen=True):
    """Migrations newest first, and whether more follow the last of them."""

    items: list[Migration]
    more: bool


class ObjectEntry(msgspec.Struct, frozen=True, kw_only=True):
    """An object as the object search shows it."""

    key: str
    status: str
    size: int
    checksum: str
    error: str
    reason: str
    updated_at: datetime


class ObjectPage(msgspec.Struct, frozen=True):
    """Objects in key order, and the last key if more follow it (the next page's cursor)."""

    items: list[ObjectEntry]
    next_cursor: str | None


class ObjectReport(msgspec.Struct, frozen=True, kw_only=True):
    """An object's line of a migration's report; its fields are the report's columns."""

    key: str
    status: str
    size: int
    checksum: str
    error: str
    reason: str
    attempts: int
    updated_at: datetime


class FailedObject(msgspec.Struct, frozen=True):
    """A failed object as its migration planned it, to be retried."""

    key: str
    size: int
    etag: str
    version: int
