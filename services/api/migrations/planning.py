"""A migration planned before and after it runs: its estimate (a dry run), and its failures
queued again."""

from __future__ import annotations

from uuid import UUID

import anyio
from eventsourcing.persistence import IntegrityError

from cstor import s3
from cstor.app.results import RetryObject
from cstor.decisions import Scope, estimate, filters_from_dict
from cstor.domain.exceptions import Conflict, InvalidRequest
from cstor.domain.route import Route
from cstor.readmodel import queries
from services.api.connections.commands import connection_endpoint, usable_endpoint
from services.api.deps import Services
from services.api.migrations.commands import get_migration
from services.api.migrations.request import CheckedMigration, check_migration
from services.api.migrations.schemas import EstimateOut, MigrationCreate

# A conservative nominal rate for estimates: per-object overhead plus bytes at line rate.
NOMINAL_OBJECTS_PER_SECOND = 300.0
NOMINAL_BYTES_PER_SECOND = 100.0 * 1024 * 1024


def scope_of(checked: CheckedMigration) -> Scope:
    data = checked.request
    return Scope(
        route=Route.of(data),
        overwrite=data.overwrite,
        filters=filters_from_dict(checked.filters),
    )


async def estimate_migration(services: Services, owner: str, data: MigrationCreate) -> EstimateOut:
    """List both sides and count what would be copied and skipped, recording nothing.

    The request is checked as create checks it: an estimate of a migration that would be
    refused would be a figure for something that cannot happen.
    """
    checked = check_migration(data)
    scope = scope_of(checked)
    source = await usable_endpoint(services, owner, data.source_connection_id, "source")
    destination = await usable_endpoint(
        services, owner, data.destination_connection_id, "destination"
    )
    try:
        counts = await anyio.to_thread.run_sync(estimate, scope, source, destination)
    except s3.S3Error as error:
        raise InvalidRequest(f"The estimate could not list the buckets: {error}") from None
    # A migration's bandwidth limit slows it down.
    limit = checked.limits.get("bandwidth_bytes_per_second", NOMINAL_BYTES_PER_SECOND)
    seconds = max(
        counts["objects_to_copy"] / NOMINAL_OBJECTS_PER_SECOND,
        counts["bytes_to_copy"] / min(NOMINAL_BYTES_PER_SECOND, limit),
    )
    return EstimateOut(**counts, estimated_seconds=round(seconds, 1))


async def retry_failed(services: Services, owner: str, migration_id: UUID) -> int:
    """Queue a completed migration's failed objects again, as the source has them now."""
    await get_migration(services, owner, migration_id)  # 404 unless it is theirs
    migration = await anyio.to_thread.run_sync(services.migrations.get, migration_id)
    failed = await queries.failed_objects(services.read_models.pool, migration_id)
    if not failed:
        raise Conflict(f"Migration {migration_id} has no failed objects to retry.")
    source = await connection_endpoint(services, migration.source_connection_id)

    def current(key: str, size: int, etag: str, version: int) -> RetryObject:
        # A failure may have been a changed or missing source: retry what is there now.
        for page in s3.list_pages(source, migration.source_bucket, key, side="source"):
            if page[0].key == key:
                return RetryObject(key, page[0].size, page[0].etag, version)
            break
        return RetryObject(key, size, etag, version)

    def retry() -> int:
        objects = [current(f.key, f.size, f.etag, f.version) for f in failed]
        return services.migrations.retry_failed(migration_id, objects)

    try:
        return await anyio.to_thread.run_sync(retry)
    except IntegrityError:  # (a MigrationStateError is a Conflict already)
        raise Conflict("The failures changed while retrying them; try again.") from None
    except s3.S3Error as error:  # the source is listed for what it holds now
        raise InvalidRequest(f"The failed objects cannot be retried: {error}") from None
