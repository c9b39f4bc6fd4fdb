"""REST API v1: migrations, for scripts and CI (OpenAPI at /schema)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.di import Provide
from litestar.exceptions import ValidationException
from litestar.params import Parameter

from cstor.domain.exceptions import InvalidRequest
from services.api.deps import Services, provide_owner
from services.api.migrations import commands, control, planning
from services.api.migrations.schemas import EstimateOut, MigrationCreate, MigrationOut, ObjectPage
from services.api.queries import OBJECT_STATUSES, BadCursor


class MigrationController(Controller):
    """Migrations: request one, follow its totals, page through its objects."""

    path = "/api/v1/migrations"
    tags = ["migrations"]
    dependencies = {"owner": Provide(provide_owner)}

    @post("/", summary="Start a migration")
    async def create(self, services: Services, owner: str, data: MigrationCreate) -> MigrationOut:
        return await commands.create_migration(services, owner, data)

    @post("/estimate", summary="Count what a migration would copy and skip (a dry run)")
    async def estimate(self, services: Services, owner: str, data: MigrationCreate) -> EstimateOut:
        return await planning.estimate_migration(services, owner, data)

    @post(
        "/{migration_id:uuid}/sync",
        summary="Run a finished migration again: only new or changed objects",
    )
    async def sync(self, services: Services, owner: str, migration_id: UUID) -> MigrationOut:
        return await commands.sync_again(services, owner, migration_id)

    @post("/{migration_id:uuid}/retry-failed", summary="Queue a migration's failed objects again")
    async def retry_failed(
        self, services: Services, owner: str, migration_id: UUID
    ) -> MigrationOut:
        await planning.retry_failed(services, owner, migration_id)
        return await commands.get_migration(services, owner, migration_id)

    @post("/{migration_id:uuid}/pause", summary="Pause copying (takes effect within seconds)")
    async def pause(self, services: Services, owner: str, migration_id: UUID) -> MigrationOut:
        return await control.pause(services, owner, migration_id)

    @post("/{migration_id:uuid}/resume", summary="Resume a paused migration where it stopped")
    async def resume(self, services: Services, owner: str, migration_id: UUID) -> MigrationOut:
        return await control.resume(services, owner, migration_id)

    @post("/{migration_id:uuid}/cancel", summary="Cancel a migration; what was copied stays")
    async def cancel(self, services: Services, owner: str, migration_id: UUID) -> MigrationOut:
        return await control.cancel(services, owner, migration_id)

    @get(
        "/",
        summary="List migrations, newest first",
        description="A page of migrations. When there are more, the answer's Link header"
        ' names the next page (rel="next"), and X-Next-Cursor holds its cursor.',
    )
    async def list_migrations(
        self,
        request: Request[Any, Any, Any],
        services: Services,
        owner: str,
        cursor: Annotated[
            str | None, Parameter(description="X-Next-Cursor of the last page")
        ] = None,
        limit: Annotated[int, Parameter(ge=1, le=1000)] = 100,
    ) -> Response[list[MigrationOut]]:
        try:
            items, next_cursor = await services.read_models.migrations_page(
                owner, cursor=cursor, limit=limit
            )
        except BadCursor as error:
            raise ValidationException(
                str(error), extra=[{"message": str(error), "key": "cursor", "source": "query"}]
            ) from None
        headers = {}
        if next_cursor is not None:
            following = urlencode({"cursor": next_cursor, "limit": limit})
            headers = {
                "Link": f'<{request.url.path}?{following}>; rel="next"',
                "X-Next-Cursor": next_cursor,
            }
        return Response(items, headers=headers)

    @get("/{migration_id:uuid}", summary="Get a migration's status and totals")
    async def get_migration(
        self, services: Services, owner: str, migration_id: UUID
    ) -> MigrationOut:
        return await commands.get_migration(services, owner, migration_id)

    @get("/{migration_id:uuid}/objects", summary="Page through a migration's objects by key")
    async def list_objects(
        self,
        services: Services,
        owner: str,
        migration_id: UUID,
        status: Annotated[str | None, Parameter(description="planned, copied or failed")] = None,
        prefix: Annotated[str, Parameter(description="only keys starting with this")] = "",
        cursor: Annotated[str | None, Parameter(description="next_cursor of the last page")] = None,
        limit: Annotated[int, Parameter(ge=1, le=1000)] = 100,
    ) -> ObjectPage:
        await commands.get_migration(services, owner, migration_id)  # 404 unless it is theirs
        if status is not None and status not in OBJECT_STATUSES:
            raise InvalidRequest(
                f"status must be one of {', '.join(OBJECT_STATUSES)}, not {status!r}."
            )
        return await services.read_models.objects(
            migration_id, status=status, prefix=prefix, cursor=cursor, limit=limit
        )
