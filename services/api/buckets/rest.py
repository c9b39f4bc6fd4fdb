"""REST API v1: the buckets a connection's keys can see, and a bucket's scan."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Controller, get
from litestar.di import Provide
from litestar.params import Parameter

from services.api.buckets.scan import scan_bucket
from services.api.buckets.schemas import BucketOut, ScanOut
from services.api.connections.commands import list_buckets
from services.api.deps import Services, provide_owner


class BucketController(Controller):
    """A connection's buckets: listed, and one counted by top-level prefix."""

    path = "/api/v1/connections/{connection_id:uuid}/buckets"
    tags = ["connections"]
    dependencies = {"owner": Provide(provide_owner)}

    @get("/", summary="List the buckets a connection's keys can see")
    async def list_buckets(
        self, services: Services, owner: str, connection_id: UUID
    ) -> list[BucketOut]:
        return await list_buckets(services, owner, connection_id)

    @get("/{bucket:str}/scan", summary="Count a bucket's objects and bytes, by top-level prefix")
    async def scan_bucket(
        self,
        services: Services,
        owner: str,
        connection_id: UUID,
        bucket: str,
        prefix: Annotated[str, Parameter(description="scan only keys under this")] = "",
    ) -> ScanOut:
        return await scan_bucket(services, owner, connection_id, bucket, prefix)
