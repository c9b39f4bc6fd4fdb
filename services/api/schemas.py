"""Request and response bodies of the REST API (msgspec structs, documented in OpenAPI)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Bucket = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
Prefix = Annotated[str, msgspec.Meta(max_length=1024)]


class ConnectionCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A new connection; it is tested against the endpoint before it is saved."""

    name: Name
    endpoint: Annotated[str, msgspec.Meta(pattern=r"^https?://[^\s/]+(/.*)?$", max_length=2048)]
    access_key: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    secret_key: Annotated[str, msgspec.Meta(min_length=1, max_length=512)]  # write-only
    region: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] = "us-east-1"


class ConnectionOut(msgspec.Struct, frozen=True, kw_only=True):
    """A saved connection. The secret key is never returned."""

    id: UUID
    name: str
    endpoint: str
    region: str
    access_key: str
    created_at: datetime


class MigrationCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Copy a source bucket (or a prefix of it) to a destination bucket."""

    source_connection_id: UUID
    source_bucket: Bucket
    destination_connection_id: UUID
    destination_bucket: Bucket
    source_prefix: Prefix = ""
    destination_prefix: Prefix = ""
    name: Annotated[str, msgspec.Meta(max_length=200)] = ""


class MigrationOut(msgspec.Struct, frozen=True, kw_only=True):
    """A migration's status and totals, as the projector last recorded them."""

    id: UUID
    name: str
    status: str
    source_connection_id: UUID
    source_bucket: str
    source_prefix: str
    destination_connection_id: UUID
    destination_bucket: str
    destination_prefix: str
    planning_done: bool
    objects_planned: int
    bytes_planned: int
    objects_copied: int
    bytes_copied: int
    objects_failed: int
    error: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime


class ObjectOut(msgspec.Struct, frozen=True, kw_only=True):
    """One object of a migration: its status, size, verified checksum, or error."""

    key: str
    status: str
    size: int
    checksum: str
    error: str
    updated_at: datetime


class ObjectPage(msgspec.Struct, frozen=True, kw_only=True):
    """A page of objects in key order; pass ``next_cursor`` as ``cursor`` for the next."""

    items: list[ObjectOut]
    next_cursor: str | None
