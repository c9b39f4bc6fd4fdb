"""The Buckets pages: each connection's buckets, and a scan of one (count, bytes, prefixes)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, Request, get
from litestar.di import Provide
from litestar.response import Template

from cstor.domain.bucket_names import check_bucket_name
from cstor.domain.exceptions import DomainError
from services.api.buckets.scan import scan_bucket
from services.api.connections.commands import connection_of, list_buckets
from services.api.dashboard import error_page, fragment, page
from services.api.deps import Services, provide_owner


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

    @get("/choices/{list_id:str}")
    async def choices(
        self, services: Services, owner: str, list_id: str, request: Request[Any, Any, Any]
    ) -> Template:
        """The buckets of the connection chosen in the new-migration form, as a <datalist>
        for its bucket field (list_id: "source_bucket-choices" or "destination_…")."""
        side = list_id.removesuffix("_bucket-choices")
        if side not in ("source", "destination"):
            return fragment(
                "buckets/_choices.html", list_id="", buckets=[], error=f"no form field {list_id!r}"
            )
        chosen = request.query_params.get(f"{side}_connection_id", "")
        context: dict[str, Any] = {
            "list_id": list_id,
            "buckets": [],
            "error": "",
            "connection_chosen": bool(chosen),
        }
        if not chosen:
            return fragment("buckets/_choices.html", **context)
        try:
            context["buckets"] = await list_buckets(services, owner, UUID(chosen))
        except ValueError:
            context["error"] = f"{chosen!r} is not a connection id"
        except DomainError as error:
            context["error"] = str(error)
        return fragment("buckets/_choices.html", **context)

    @get("/{connection_id:uuid}")
    async def buckets(self, services: Services, owner: str, connection_id: UUID) -> Template:
        """One connection's buckets, as links to their scans."""
        connection = await connection_of(services, owner, connection_id)
        try:
            found = await list_buckets(services, owner, connection_id)
        except DomainError as error:
            return fragment("buckets/_list.html", connection=connection, error=str(error))
        return fragment("buckets/_list.html", connection=connection, buckets=found, error="")

    @get("/{connection_id:uuid}/{bucket:str}")
    async def bucket(
        self, services: Services, owner: str, connection_id: UUID, bucket: str, prefix: str = ""
    ) -> Template:
        """A bucket's page: its scan (or one prefix's) loads once the page shows."""
        connection = await connection_of(services, owner, connection_id)
        check_bucket_name(bucket, "bucket")
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
        connection = await connection_of(services, owner, connection_id)
        context: dict[str, Any] = {"connection": connection, "bucket": bucket, "prefix": prefix}
        try:
            found = await scan_bucket(services, owner, connection_id, bucket, prefix)
        except DomainError as error:
            return fragment("buckets/_scan.html", scan=None, error=str(error), **context)
        return fragment("buckets/_scan.html", scan=found, error="", **context)


def _parent(prefix: str) -> str | None:
    """The prefix one level up (``"a/b/"`` → ``"a/"``), or None at the bucket's top."""
    if not prefix:
        return None
    head, _, _ = prefix.rstrip("/").rpartition("/")
    return head + "/" if head else ""
