"""The api's use cases: validate a request against the real endpoints, then record it."""

from __future__ import annotations

import re
from uuid import UUID

import anyio
import msgspec
from eventsourcing.application import AggregateNotFoundError
from litestar.exceptions import ClientException, NotFoundException

from cstor import s3
from cstor.domain.exceptions import InvalidRequest
from cstor.domain.migration import Migration
from cstor.presets import PresetError, endpoint_for
from cstor.secret_store import SecretStoreError
from services.api.deps import Services
from services.api.migration_request import check_migration
from services.api.schemas import (
    BucketOut,
    ConnectionCreate,
    ConnectionOut,
    FiltersIn,
    LimitsIn,
    MigrationCreate,
    MigrationOut,
    SecretRotate,
)


class Unprocessable(ClientException):
    status_code = 422


def unprocessable_field(key: str, message: str, source: str = "body") -> Unprocessable:
    """A 422 naming the field: ``key: message`` as the detail, and in ``errors`` as Litestar
    names the fields of a 400 (key, the field's path; source: body, query or path)."""
    return Unprocessable(
        f"{key}: {message}", extra=[{"message": message, "key": key, "source": source}]
    )


def refused(error: InvalidRequest, source: str = "body") -> Unprocessable:
    """A domain refusal as a 422; its message's leading ``field:``, if any, names the field."""
    text = str(error)
    found = re.match(r"([\w.\[\]]+): (.+)", text, re.DOTALL)
    if found is None:
        return Unprocessable(text)
    return unprocessable_field(found[1], found[2], source)


class Conflict(ClientException):
    status_code = 409


class SecretStoreUnavailable(ClientException):
    """The secret store failed (unreachable, refused); a ClientException all the same, so
    the dashboard's forms show the message next to what the user typed."""

    status_code = 503


async def create_connection(
    services: Services, owner: str, data: ConnectionCreate
) -> ConnectionOut:
    """Test the endpoint and keys, then save the connection (its secret encrypted)."""
    try:
        url = endpoint_for(data.provider, data.region, data.endpoint)
    except PresetError as error:
        if error.field is not None:
            raise unprocessable_field(error.field, str(error)) from None
        raise Unprocessable(str(error)) from None
    endpoint = s3.Endpoint(
        url=url,
        region=data.region,
        access_key=data.access_key,
        secret_key=data.secret_key,
    )
    try:
        await s3.check_access(endpoint)
    except s3.S3Error as error:
        raise Unprocessable(f"Connection test failed: {error}") from None
    try:
        saved = await services.connections.create(
            owner=owner,
            name=data.name,
            endpoint=endpoint.url,
            region=data.region,
            access_key=data.access_key,
            secret_key=data.secret_key,
        )
    except SecretStoreError as error:
        raise SecretStoreUnavailable(f"The connection was not saved: {error}") from None
    return ConnectionOut(**{f: getattr(saved, f) for f in ConnectionOut.__struct_fields__})


async def rotate_secret(
    services: Services, owner: str, connection_id: UUID, data: SecretRotate
) -> ConnectionOut:
    """Test the new keys against the connection's endpoint, then replace the old ones."""
    current = await services.connections.get(owner, connection_id)
    if current is None:
        raise NotFoundException(f"Connection {connection_id} does not exist.")
    access_key = data.access_key or current.access_key
    endpoint = s3.Endpoint(
        url=current.endpoint,
        region=current.region,
        access_key=access_key,
        secret_key=data.secret_key,
    )
    try:
        await s3.check_access(endpoint)
    except s3.S3Error as error:
        raise Unprocessable(f"The new keys were not saved: {error}") from None
    try:
        rotated = await services.connections.rotate_secret(
            owner, connection_id, access_key=access_key, secret_key=data.secret_key
        )
    except SecretStoreError as error:
        raise SecretStoreUnavailable(f"The new keys were not saved: {error}") from None
    if rotated is None:
        raise NotFoundException(f"Connection {connection_id} does not exist.")
    return ConnectionOut(**{f: getattr(rotated, f) for f in ConnectionOut.__struct_fields__})


async def list_buckets(services: Services, owner: str, connection_id: UUID) -> list[BucketOut]:
    """The buckets the connection's keys can see."""
    if await services.connections.get(owner, connection_id) is None:
        raise NotFoundException(f"Connection {connection_id} does not exist.")
    endpoint = await connection_endpoint(services, connection_id)
    try:
        buckets = await s3.list_buckets(endpoint)
    except s3.S3Error as error:
        raise Unprocessable(f"The buckets could not be listed: {error}") from None
    return [BucketOut(name=b.name, created_at=b.created_at) for b in buckets]


async def delete_connection(services: Services, owner: str, connection_id: UUID) -> None:
    """Delete a connection no unfinished migration uses."""
    found = await services.connections.get(owner, connection_id)
    if found is None:
        raise NotFoundException(f"Connection {connection_id} does not exist.")
    users = await services.read_models.unfinished_migrations_using(owner, connection_id)
    if users:
        names = ", ".join(f"{name!r} ({status})" for name, status in users[:3])
        more = f" and {len(users) - 3} more" if len(users) > 3 else ""
        raise Conflict(
            f"Connection {found.name!r} is used by the migration {names}{more}. Delete it once"
            " that migration has finished, or cancel the migration first."
        )
    try:
        await services.connections.delete(owner, connection_id)
    except SecretStoreError as error:
        raise SecretStoreUnavailable(f"The connection was not deleted: {error}") from None


async def connection_endpoint(services: Services, connection_id: UUID) -> s3.Endpoint:
    """The connection's endpoint with its secret; a failing secret store answers 503."""
    try:
        return await services.connections.endpoint(connection_id)
    except SecretStoreError as error:
        raise SecretStoreUnavailable(str(error)) from None


async def create_migration(
    services: Services, owner: str, data: MigrationCreate, *, sync_of: UUID | None = None
) -> MigrationOut:
    """Check the filters and that both buckets can be reached, then record the request."""
    try:
        checked = check_migration(data)
    except InvalidRequest as error:
        raise refused(error) from None
    for role, connection_id, bucket in (
        ("source", data.source_connection_id, data.source_bucket),
        ("destination", data.destination_connection_id, data.destination_bucket),
    ):
        if await services.connections.get(owner, connection_id) is None:
            raise Unprocessable(f"The {role} connection {connection_id} does not exist.")
        endpoint = await connection_endpoint(services, connection_id)
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
        source_connection_id=migration.source_connection_id,
        source_bucket=migration.source_bucket,
        source_prefix=migration.source_prefix,
        destination_connection_id=migration.destination_connection_id,
        destination_bucket=migration.destination_bucket,
        destination_prefix=migration.destination_prefix,
        name=f"{migration.name} (sync)",
        overwrite="if-different",
        filters=msgspec.convert(migration.filters, FiltersIn),
        storage_class=getattr(migration, "storage_class", None),
        limits=msgspec.convert(getattr(migration, "limits", {}), LimitsIn),
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
        storage_class=migration.storage_class,
        limits=msgspec.convert(migration.limits, LimitsIn),
    )
