"""The Buckets pages: each connection's buckets, and a scan of one (count, bytes, prefixes)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, get
from litestar.di import Provide
from litestar.exceptions import ClientException, NotFoundException
from litestar.response import Template

from cstor.connections import Connection
from cstor.domain.bucket_names import check_bucket_name
from cstor.domain.exceptions import InvalidRequest
from services.api import commands, planning
from services.api.deps import Services, provide_owner
from services.api.pages import error_page, fragment, page


class BucketPages(Controller):
    """Listing a bucket can take a while, so the pages load their listings after they show."""

    path = "/buckets"
    include_in_schema = False
    dependencies = {"owner": Provide(provide_owner)}
    exception_handlers = {Exception: error_page}

    @get("/")
    async def index(self, services: Services, owner: str) -> Template:
        """Every connection, each with its buckets (fetched by the page, one connection each)."""
        connections = await services.connections.list(owner)
        return page("buckets/index.html", nav="buckets", connections=connections)

    @get("/{connection_id:uuid}")
    async def buckets(self, services: Services, owner: str, connection_id: UUID) -> Template:
        """One connection's buckets, as links to their scans."""
        connection = await _connection(services, owner, connection_id)
        try:
            found = await commands.list_buckets(services, owner, connection_id)
        except ClientException as error:
            return fragment("buckets/_list.html", connection=connection, error=str(error.detail))
        return fragment("buckets/_list.html", connection=connection, buckets=found, error="")

    @get("/{connection_id:uuid}/{bucket:str}")
    async def bucket(
        self, services: Services, owner: str, connection_id: UUID, bucket: str, prefix: str = ""
    ) -> Template:
        """A bucket's page: its scan (or one prefix's) loads once the page shows."""
        connection = await _connection(services, owner, connection_id)
        try:
            check_bucket_name(bucket, "bucket")
        except InvalidRequest as error:
            raise commands.refused(error, source="path") from None
        return page(
            "buckets/bucket.html",
            nav="buckets",
            connection=connection,
            bucket=bucket,
            prefix=prefix,
            parent=_parent(prefix),
        )

    @get("/{connection_id:uuid}/{bucket:str}/scan")
    async def scan(
        self, services: Services, owner: str, connection_id: UUID, bucket: str, prefix: str = ""
    ) -> Template:
        """Count the objects and bytes under the prefix, and by the next level of prefixes."""
        connection = await _connection(services, owner, connection_id)
        context: dict[str, Any] = {"connection": connection, "bucket": bucket, "prefix": prefix}
        try:
            found = await planning.scan_bucket(services, owner, connection_id, bucket, prefix)
        except ClientException as error:
            return fragment("buckets/_scan.html", scan=None, error=str(error.detail), **context)
        return fragment("buckets/_scan.html", scan=found, error="", **context)


async def _connection(services: Services, owner: str, connection_id: UUID) -> Connection:
    found = await services.connections.get(owner, connection_id)
    if found is None:
        raise NotFoundException(f"Connection {connection_id} does not exist.")
    return found


def _parent(prefix: str) -> str | None:
    """The prefix one level up (``"a/b/"`` → ``"a/"``), or None at the bucket's top."""
    if not prefix:
        return None
    head, _, _ = prefix.rstrip("/").rpartition("/")
    return head + "/" if head else ""
