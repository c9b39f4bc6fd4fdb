"""The connections' use cases: test an endpoint and its keys against S3, then save them.

They raise the domain's errors (cstor.domain.exceptions), never HTTP ones: the api says
once what each is answered with (services.api.problems).
"""

from __future__ import annotations

from uuid import UUID

from cstor import s3
from cstor.domain.exceptions import Conflict, InvalidRequest, NotFound, Unavailable
from cstor.secrets.store import SecretStoreError
from cstor.store.connections import Connection
from services.api.buckets.schemas import BucketOut
from services.api.connections.presets import PresetError, endpoint_for
from services.api.connections.schemas import ConnectionCreate, SecretRotate
from services.api.deps import Services


async def connection_of(services: Services, owner: str, connection_id: UUID) -> Connection:
    """The owner's connection; NotFound if it is not theirs (or does not exist)."""
    found = await services.connections.get(owner, connection_id)
    if found is None:
        raise NotFound(f"Connection {connection_id} does not exist.")
    return found


async def create_connection(services: Services, owner: str, data: ConnectionCreate) -> Connection:
    """Test the endpoint and keys, then save the connection (its secret encrypted)."""
    try:
        url = endpoint_for(data.provider, data.region, data.endpoint)
    except PresetError as error:
        raise InvalidRequest(str(error), field=error.field) from None
    endpoint = s3.Endpoint(
        url=url,
        region=data.region,
        access_key=data.access_key,
        secret_key=data.secret_key,
    )
    try:
        await s3.check_access(endpoint, side=s3.connection_side(data.name))
    except s3.S3Error as error:
        raise InvalidRequest(f"Connection test failed: {error}") from None
    try:
        return await services.connections.create(
            owner=owner,
            name=data.name,
            endpoint=endpoint.url,
            region=data.region,
            access_key=data.access_key,
            secret_key=data.secret_key,
        )
    except SecretStoreError as error:
        raise Unavailable(f"The connection was not saved: {error}") from None


async def rotate_secret(
    services: Services, owner: str, connection_id: UUID, data: SecretRotate
) -> Connection:
    """Test the new keys against the connection's endpoint, then replace the old ones."""
    current = await connection_of(services, owner, connection_id)
    access_key = data.access_key or current.access_key
    endpoint = s3.Endpoint(
        url=current.endpoint,
        region=current.region,
        access_key=access_key,
        secret_key=data.secret_key,
    )
    try:
        await s3.check_access(endpoint, side=s3.connection_side(current.name))
    except s3.S3Error as error:
        raise InvalidRequest(f"The new keys were not saved: {error}") from None
    try:
        rotated = await services.connections.rotate_secret(
            owner, connection_id, access_key=access_key, secret_key=data.secret_key
        )
    except SecretStoreError as error:
        raise Unavailable(f"The new keys were not saved: {error}") from None
    if rotated is None:
        raise NotFound(f"Connection {connection_id} does not exist.")
    return rotated


async def list_buckets(services: Services, owner: str, connection_id: UUID) -> list[BucketOut]:
    """The buckets the connection's keys can see."""
    connection = await connection_of(services, owner, connection_id)
    endpoint = await connection_endpoint(services, connection_id)
    try:
        buckets = await s3.list_buckets(endpoint, side=s3.connection_side(connection.name))
    except s3.S3Error as error:
        raise InvalidRequest(f"The buckets could not be listed: {error}") from None
    return [BucketOut(name=b.name, created_at=b.created_at) for b in buckets]


async def delete_connection(services: Services, owner: str, connection_id: UUID) -> None:
    """Delete a connection no unfinished migration uses."""
    found = await connection_of(services, owner, connection_id)
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
        raise Unavailable(f"The connection was not deleted: {error}") from None


async def connection_endpoint(services: Services, connection_id: UUID) -> s3.Endpoint:
    """The connection's endpoint with its secret; Unavailable if the secret store fails."""
    try:
        return await services.connections.endpoint(connection_id)
    except SecretStoreError as error:
        raise Unavailable(str(error)) from None


async def usable_endpoint(
    services: Services, owner: str, connection_id: UUID, role: str
) -> s3.Endpoint:
    """The endpoint of a connection a request names (as the ``role`` connection); an
    InvalidRequest, not NotFound, if it is not theirs: the request is what is wrong."""
    return (await usable_connection(services, owner, connection_id, role))[1]


async def usable_connection(
    services: Services, owner: str, connection_id: UUID, role: str
) -> tuple[Connection, s3.Endpoint]:
    """`usable_endpoint`, and the connection it is of."""
    found = await services.connections.get(owner, connection_id)
    if found is None:
        which = f"The {role} connection" if role else "The connection"
        raise InvalidRequest(f"{which} {connection_id} does not exist.")
    return found, await connection_endpoint(services, connection_id)
