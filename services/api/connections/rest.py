"""REST API v1: connections (an S3 endpoint and its keys), for scripts and CI."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, delete, get, post, put
from litestar.di import Provide

from services.api.connections import commands
from services.api.connections.schemas import (
    ConnectionCreate,
    ConnectionOut,
    SecretRotate,
    connection_out,
)
from services.api.deps import Services, provide_owner


class ConnectionController(Controller):
    """S3 endpoints with their keys. The secret key is write-only."""

    path = "/api/v1/connections"
    tags = ["connections"]
    dependencies = {"owner": Provide(provide_owner)}

    @post("/", summary="Test and save a connection")
    async def create(self, services: Services, owner: str, data: ConnectionCreate) -> ConnectionOut:
        return connection_out(await commands.create_connection(services, owner, data))

    @get("/", summary="List connections")
    async def list_connections(self, services: Services, owner: str) -> list[ConnectionOut]:
        return [connection_out(c) for c in await services.connections.list(owner)]

    @get("/{connection_id:uuid}", summary="Get a connection")
    async def get_connection(
        self, services: Services, owner: str, connection_id: UUID
    ) -> ConnectionOut:
        return connection_out(await commands.connection_of(services, owner, connection_id))

    @put(
        "/{connection_id:uuid}/secret",
        summary="Rotate a connection's keys",
        description="The new keys are tested against the endpoint first; if they fail,"
        " the old ones stay. Omit access_key to keep the current one.",
    )
    async def rotate_secret(
        self, services: Services, owner: str, connection_id: UUID, data: SecretRotate
    ) -> ConnectionOut:
        return connection_out(await commands.rotate_secret(services, owner, connection_id, data))

    @delete(
        "/{connection_id:uuid}",
        summary="Delete a connection",
        description="Refused (409) while an unfinished migration uses the connection.",
    )
    async def delete_connection(self, services: Services, owner: str, connection_id: UUID) -> None:
        await commands.delete_connection(services, owner, connection_id)
