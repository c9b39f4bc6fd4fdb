"""A migration's request and answers in the REST API (msgspec structs, documented in OpenAPI).

The dashboard's form becomes the same MigrationCreate (services.api.migrations.form), so
one struct is the schema of both.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

from cstor.domain.migration import LIMITS
from cstor.domain.planning import IF_DIFFERENT, Overwrite
from services.api.edge import BIGINT

Bucket = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
Prefix = Annotated[str, msgspec.Meta(max_length=1024)]


# A key is at most 1024 bytes, so a longer pattern matches none; a thousand patterns is
# more than a person writes, and each costs the planner a match per listed key.
Globs = Annotated[
    list[Annotated[str, msgspec.Meta(max_length=1024)]], msgspec.Meta(max_length=1000)
]
Instant = Annotated[str, msgspec.Meta(max_length=64)]


class FiltersIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Which source objects a migration covers, besides its prefix (all optional)."""

    # Glob patterns on the key below the source prefix.
    include: Globs = msgspec.field(default_factory=list)
    exclude: Globs = msgspec.field(default_factory=list)
    min_size: Annotated[int, msgspec.Meta(ge=0, le=BIGINT)] | None = None
    max_size: Annotated[int, msgspec.Meta(ge=0, le=BIGINT)] | None = None
    modified_after: Instant | None = None  # ISO 8601, e.g. 2024-01-31T00:00:00Z
    modified_before: Instant | None = None


class LimitsIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How much a migration may do at once, counted across every transfer replica.

    ``bandwidth_bytes_per_second``: the bytes all its copies move per second together;
    ``concurrent_objects``: how many of its objects are copied at the same time. None (the
    default) sets no limit; a limit is a whole number from 1 to the most in
    cstor.domain.migration.LIMITS. Those bounds are checked with the rest of the request
    (services.api.migrations.request), not here, so that create, estimate and the form
    refuse a limit alike: a 422 naming it.
    """

    bandwidth_bytes_per_second: (
        Annotated[
            int,
            msgspec.Meta(
                description=f"bytes per second, from 1 to {LIMITS['bandwidth_bytes_per_second']:,}"
            ),
        ]
        | None
    ) = None
    concurrent_objects: (
        Annotated[
            int,
            msgspec.Meta(description=f"from 1 to {LIMITS['concurrent_objects']:,}"),
        ]
        | None
    ) = None


class MigrationCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Copy a source bucket (or a prefix of it) to a destination bucket."""

    source_connection_id: UUID
    source_bucket: Bucket
    destination_connection_id: UUID
    destination_bucket: Bucket
    source_prefix: Prefix = ""
    destination_prefix: Prefix = ""
    name: Annotated[str, msgspec.Meta(max_length=200)] = ""
    overwrite: Overwrite = IF_DIFFERENT
    filters: FiltersIn = msgspec.field(default_factory=FiltersIn)
    # The copies' S3 storage class (STANDARD_IA, GLACIER_IR, ...); None: the destination's default.
    storage_class: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    limits: LimitsIn = LimitsIn()


class EstimateOut(msgspec.Struct, frozen=True, kw_only=True):
    """What a migration would do, counted before anything is copied (a dry run)."""

    objects_to_copy: int
    bytes_to_copy: int
    objects_to_skip: int
    bytes_to_skip: int
    estimated_seconds: float


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
    objects_skipped: int = 0
    bytes_skipped: int = 0
    overwrite: str = "if-different"
    sync_of: UUID | None = None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    storage_class: str | None = None
    limits: LimitsIn = LimitsIn()


class ObjectOut(msgspec.Struct, frozen=True, kw_only=True):
    """One object of a migration: its status, size, verified checksum, or error."""

    key: str
    status: str
    size: int
    checksum: str
    error: str
    updated_at: datetime
    reason: str = ""


class ObjectPage(msgspec.Struct, frozen=True, kw_only=True):
    """A page of objects in key order; pass ``next_cursor`` as ``cursor`` for the next."""

    items: list[ObjectOut]
    next_cursor: str | None
