"""The api's use cases: validate a request against the real endpoints, then record it."""

from __future__ import annotations

from uuid import UUID

import anyio
from eventsourcing.application import AggregateNotFoundError
from litestar.exceptions import ClientException, NotFoundException

from cstor import s3
from cstor.domain.migration import Migration
from services.api.deps import Services
from services.api.schemas import ConnectionCreate, ConnectionOut, MigrationCreate, MigrationOut


class Unprocessable(ClientException):
    status_code = 422


async def create_connection(
    services: Services, owner: str, data: ConnectionCreate
) -> ConnectionOut:
    """Test the endpoint and keys, then save the connection (its secret encrypted)."""
    endpoint = s3.Endpoint(
        url=data.endpoint.rstrip("/"),
        region=data.region,
        access_key=data.access_key,
        secret_key=data.secret_key,
    )
    try:
        await s3.check_access(endpoint)
    except s3.S3Error as error:
        raise Unprocessable(f"Connection test failed: {error}") from None
    saved = await services.connections.create(
        owner=owner,
        name=data.name,
        endpoint=endpoint.url,
        region=data.region,
        access_key=data.access_key,
        secret_key=data.secret_key,
    )
    return ConnectionOut(**{f: getattr(saved, f) for f in ConnectionOut.__struct_fields__})


async def create_migration(services: Services, owner: str, data: MigrationCreate) -> MigrationOut:
    """Check both buckets can be reached, then record the request for the planner."""
    for role, connection_id, bucket in (
        ("source", data.source_connection_id, data.source_bucket),
        ("destination", data.destination_connection_id, data.destination_bucket),
    ):
        if await services.connections.get(owner, connection_id) is None:
            raise Unprocessable(f"The {role} connection {connection_id} does not exist.")
        endpoint = await services.connections.endpoint(connection_id)
        try:
            await s3.check_access(endpoint, bucket)
        except s3.S3Error as error:
            raise Unprocessable(f"The {role} bucket {bucket!r} cannot be used: {error}") from None
    name = data.name or f"{data.source_bucket} → {data.destination_bucket}"
    migration_id = await anyio.to_thread.run_sync(
        lambda: services.migrations.request(
            name=name,
            owner=owner,
            source_connection_id=data.source_connection_id,
            source_bucket=data.source_bucket,
            source_prefix=data.source_prefix,
            destination_connection_id=data.destination_connection_id,
            destination_bucket=data.destination_bucket,
            destination_prefix=data.destination_prefix,
        )
    )
    return await get_migration(services, owner, migration_id)


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
        raise NotFoundException(f"Migration {migration_id} does not exist.")
    return _from_aggregate(migration)


def _from_aggregate(migration: Migration) -> MigrationOut:
    return MigrationOut(
        id=migration.id,
        name=migration.name,
        status=migration.status,
        source_connection_id=migration.source_connection_id,
        source_bucket=migration.source_bucket,
        source_prefix=migration.source_prefix,
        destination_connection_id=migration.destination_connection_id,
        destination_bucket=migration.destination_bucket,
        destination_prefix=migration.destination_prefix,
        planning_done=migration.status not in (Migration.REQUESTED, Migration.PLANNING),
        objects_planned=0,
        bytes_planned=0,
        objects_copied=0,
        bytes_copied=0,
        objects_failed=0,
        error=getattr(migration, "error", ""),
        created_at=migration.created_on,
        started_at=None,
        finished_at=migration.finished_at,
        updated_at=migration.modified_on,
    )
