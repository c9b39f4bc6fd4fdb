"""A migration's use cases: check a request against the real endpoints, record it, read it.

They raise the domain's errors (cstor.domain.exceptions), never HTTP ones: the api says
once what each is answered with (services.api.problems).
"""

from __future__ import annotations

from uuid import UUID

import anyio
import msgspec
from eventsourcing.application import AggregateNotFoundError

from cstor import s3
from cstor.domain.exceptions import Conflict, InvalidRequest, NotFound
from cstor.domain.migration import Migration
from cstor.domain.planning import IF_DIFFERENT
from cstor.domain.route import Route
from services.api.connections.commands import usable_endpoint
from services.api.deps import Services
from services.api.migrations.request import check_migration
from services.api.migrations.schemas import FiltersIn, LimitsIn, MigrationCreate, MigrationOut


async def create_migration(
    services: Services, owner: str, data: MigrationCreate, *, sync_of: UUID | None = None
) -> MigrationOut:
    """Check the filters and that both buckets can be reached, then record the request."""
    checked = check_migration(data)
    for role, connection_id, bucket in (
        ("source", data.source_connection_id, data.source_bucket),
        ("destination", data.destination_connection_id, data.destination_bucket),
    ):
        endpoint = await usable_endpoint(services, owner, connection_id, role)
        try:
            await s3.check_access(endpoint, bucket, side=role)
        except s3.S3Error as error:
            raise InvalidRequest(f"The {role} bucket {bucket!r} cannot be used: {error}") from None
    name = data.name or f"{data.source_bucket} → {data.destination_bucket}"
    migration_id = await anyio.to_thread.run_sync(
        lambda: services.migrations.request(
            name=name,
            owner=owner,
            **Route.of(data).fields(),
            overwrite=data.overwrite,
            filters=checked.filters,
            sync_of=sync_of,
            storage_class=data.storage_class,
            limits=checked.limits,
        )
    )
    return await get_migration(services, owner, migration_id)


async def sync_again(services: Services, owner: str, migration_id: UUID) -> MigrationOut:
    """Run a finished migration again as a new one that copies only new or changed objects."""
    previous = await get_migration(services, owner, migration_id)
    if previous.status not in (Migration.COMPLETED, Migration.FAILED):
        raise Conflict(f"Migration {migration_id} is {previous.status}; sync it once it ends.")
    migration = await anyio.to_thread.run_sync(services.migrations.get, migration_id)
    request = MigrationCreate(
        **migration.route.fields(),
        name=f"{migration.name} (sync)",
        overwrite=IF_DIFFERENT,
        filters=msgspec.convert(migration.filters, FiltersIn),
        storage_class=migration.storage_class,
        limits=msgspec.convert(migration.limits, LimitsIn),
    )
    return await create_migration(services, owner, request, sync_of=migration_id)


async def get_migration(services: Services, owner: str, migration_id: UUID) -> MigrationOut:
    """The read model's view, or, before the projector has caught up, the event store's."""
    found = await services.read_models.migration(owner, migration_id)
    if found is not None:
        return found
    try:
        migration = await anyio.to_thread.run_sync(services.migrations.get, migration_id)
    except AggregateNotFoundError:
        migration = None
    if migration is None or migration.owner != owner:
        raise NotFound(f"Migration {migration_id} does not exist.")
    return _from_aggregate(migration)


def _from_aggregate(migration: Migration) -> MigrationOut:
    return MigrationOut(
        id=migration.id,
        name=migration.name,
        status=migration.status,
        **migration.route.fields(),
        planning_done=migration.status not in (Migration.REQUESTED, Migration.PLANNING),
        objects_planned=0,
        bytes_planned=0,
        objects_copied=0,
        bytes_copied=0,
        objects_failed=0,
        error=migration.error,
        created_at=migration.created_on,
        started_at=None,
        finished_at=migration.finished_at,
        updated_at=migration.modified_on,
        storage_class=migration.storage_class,
        limits=msgspec.convert(migration.limits, LimitsIn),
    )
