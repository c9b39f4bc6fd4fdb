"""The Migrations pages: the list, a migration's live progress and objects, its buttons,
and the form to start one, over the same use cases as the REST API."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import anyio
from cachetools import LRUCache
from eventsourcing.application import AggregateNotFoundError
from litestar import Controller, Response, get, post
from litestar.di import Provide
from litestar.response import Redirect, Template

from cstor.domain.exceptions import DomainError, InvalidRequest, NotFound
from cstor.domain.migration import STORAGE_CLASSES
from services.api.dashboard import Form, error_page, fragment, page
from services.api.deps import Services, provide_owner
from services.api.migrations import charts, commands, control, planning
from services.api.migrations.form import OVERWRITE_CHOICES, in_form_words, migration_request
from services.api.migrations.schemas import MigrationOut
from services.api.queries import OBJECT_STATUSES

FINISHED = frozenset({"completed", "failed", "cancelled"})
OBJECTS_PER_PAGE = 50

# What the buttons of a migration's page do; each answers 409 when the state forbids it.
MIGRATION_ACTIONS: dict[str, Callable[[Services, str, UUID], Awaitable[object]]] = {
    "pause": control.pause,
    "resume": control.resume,
    "cancel": control.cancel,
    "retry-failed": planning.retry_failed,
}
ACTION_NOTICES = {
    "pause": "Pausing: copying stops within seconds. Resume continues where it stopped.",
    "resume": "Resumed: copying continues where it stopped.",
    "cancel": "Cancelled: nothing more is copied; what was copied stays.",
    "retry-failed": "The failed objects are queued to be copied again.",
}


def is_finished(migration: MigrationOut) -> bool:
    return migration.status in FINISHED


def form_error(error: DomainError) -> str:
    """A refusal as the form shows it: the fields it names by their labels."""
    return in_form_words(error) if isinstance(error, InvalidRequest) else str(error)


class MigrationPages(Controller):
    """The migrations list, a migration's live progress and objects, and the form to start one."""

    path = "/"
    include_in_schema = False
    dependencies = {"owner": Provide(provide_owner)}
    exception_handlers = {Exception: error_page}

    @get(["/", "/migrations"])
    async def index(self, services: Services, owner: str) -> Template:
        """The migrations list, also at /migrations (the new-migration form's action)."""
        migrations = await services.read_models.migrations(owner)
        return page("migrations/index.html", nav="migrations", **_rows_context(migrations))

    @get("/migrations/rows")
    async def rows(self, services: Services, owner: str) -> Template:
        """The list's table body, polled every second while a migration is unfinished."""
        migrations = await services.read_models.migrations(owner)
        return fragment("migrations/_rows.html", **_rows_context(migrations))

    @get("/migrations/new")
    async def new(self, services: Services, owner: str) -> Template:
        return await _migration_form(services, owner, values={}, error="")

    @post("/migrations")
    async def create(self, services: Services, owner: str, data: Form) -> Response[Any]:
        try:
            created = await commands.create_migration(services, owner, migration_request(data))
        except DomainError as error:
            return await _migration_form(
                services, owner, values=data, error=form_error(error), status_code=422
            )
        return Redirect(f"/migrations/{created.id}", status_code=303)

    @post("/migrations/estimate")
    async def estimate(self, services: Services, owner: str, data: Form) -> Template:
        """What the form's migration would copy and skip, counted before anything is copied."""
        try:
            found = await planning.estimate_migration(services, owner, migration_request(data))
        except DomainError as error:
            return fragment("migrations/_estimate.html", estimate=None, error=form_error(error))
        return fragment("migrations/_estimate.html", estimate=found, error="")

    @get("/migrations/{migration_id:uuid}")
    async def detail(
        self,
        services: Services,
        owner: str,
        migration_id: UUID,
        status: str = "",
        cursor: str = "",
        done: str = "",
    ) -> Template:
        notice = ACTION_NOTICES.get(done, "")
        return await _detail_page(services, owner, migration_id, status, cursor, notice=notice)

    @post("/migrations/{migration_id:uuid}/{action:str}")
    async def act(
        self, services: Services, owner: str, migration_id: UUID, action: str
    ) -> Response[Any]:
        """Pause, resume, cancel or retry the failures, then back to the migration's page."""
        command = MIGRATION_ACTIONS.get(action)
        if command is None:
            raise NotFound(f"A migration cannot {action!r}.")
        try:
            await command(services, owner, migration_id)
        except NotFound:
            raise
        except DomainError as error:
            return await _detail_page(
                services, owner, migration_id, error=str(error), status_code=409
            )
        await _read_models_caught_up(services, owner, migration_id)
        return Redirect(f"/migrations/{migration_id}?done={action}", status_code=303)

    @get("/migrations/{migration_id:uuid}/progress")
    async def progress(self, services: Services, owner: str, migration_id: UUID) -> Template:
        """The live counts, polled every second until the migration finishes."""
        migration = await commands.get_migration(services, owner, migration_id)
        finished = is_finished(migration)
        return fragment(
            "migrations/_progress.html",
            # The last poll: the objects table below catches up once.
            trigger_event="migration-finished" if finished else None,
            migration=migration,
            finished=finished,
            **await _speed_context(services, migration),
        )

    @get("/migrations/{migration_id:uuid}/objects")
    async def objects(
        self,
        services: Services,
        owner: str,
        migration_id: UUID,
        status: str = "",
        cursor: str = "",
    ) -> Template:
        """One page of objects, for the status filter and the "next page" link."""
        migration = await commands.get_migration(services, owner, migration_id)
        context = await _objects_context(services, migration_id, status, cursor)
        return fragment("migrations/_objects.html", migration=migration, **context)


PAGES = [MigrationPages]


# The read models trail the event store by a moment. The page shown after a click waits
# that moment, or it would show the state from before the click (and a migration that
# looks finished stops refreshing itself).
READ_MODEL_WAIT_SECONDS = 3.0


async def _read_models_caught_up(services: Services, owner: str, migration_id: UUID) -> None:
    recorded = await anyio.to_thread.run_sync(services.migrations.get, migration_id)
    deadline = anyio.current_time() + READ_MODEL_WAIT_SECONDS
    while anyio.current_time() < deadline:
        shown = await services.read_models.migration(owner, migration_id)
        if shown is None or shown.status == recorded.status:
            return
        await anyio.sleep(0.1)


async def _detail_page(
    services: Services,
    owner: str,
    migration_id: UUID,
    status: str = "",
    cursor: str = "",
    *,
    notice: str = "",
    error: str = "",
    status_code: int = 200,
) -> Template:
    migration = await commands.get_migration(services, owner, migration_id)
    # The rest is read at once, not one after another: under load, each wait for Postgres
    # is also a wait for the event loop's turn (the page's p50 was four times the poll's).
    connections, objects, asked, speed = await asyncio.gather(
        services.connections.list(owner),
        _objects_context(services, migration_id, status, cursor),
        _asked_for(services, migration_id),
        _speed_context(services, migration),
    )
    names = {c.id: c.name for c in connections}
    return page(
        "migrations/detail.html",
        migration=migration,
        asked=asked,
        finished=is_finished(migration),
        source=names.get(migration.source_connection_id, "(deleted connection)"),
        destination=names.get(migration.destination_connection_id, "(deleted connection)"),
        notice=notice,
        error=error,
        status_code=status_code,
        **objects,
        **speed,
    )


# What migrations were asked for, by id. It is set once, by the request, and never
# changes, so it is remembered for good: loading the aggregate in a thread for every view
# of the page cost a tenth of an api worker's CPU under load (the thread handoffs most).
# It is read only after the page has checked that the migration is the user's.
_ASKED_FOR: LRUCache[UUID, dict[str, Any]] = LRUCache(maxsize=4096)


async def _asked_for(services: Services, migration_id: UUID) -> dict[str, Any]:
    """What the migration was asked for besides its route: filters, storage class, limits."""
    if (remembered := _ASKED_FOR.get(migration_id)) is not None:
        return remembered
    try:
        migration = await anyio.to_thread.run_sync(services.migrations.get, migration_id)
    except AggregateNotFoundError:
        # Known to the read models alone (as in the benchmark's seeded data): the store
        # records a migration before the read models can, so it never will be.
        asked: dict[str, Any] = {}
    else:
        asked = {
            "filters": migration.filters,
            "storage_class": migration.storage_class,
            "limits": migration.limits,
        }
    _ASKED_FOR[migration_id] = asked
    return asked


async def _speed_context(services: Services, migration: MigrationOut) -> dict[str, Any]:
    """Rate, ETA and the throughput chart of the progress card."""
    now = migration.finished_at or datetime.now(UTC)
    bytes_per_second = charts.rate(migration.bytes_copied, migration.started_at, now)
    left = max(migration.bytes_planned - migration.bytes_copied, 0)
    if is_finished(migration) or not migration.planning_done or migration.status == "paused":
        eta = "—"  # done, the total not known yet, or no end in sight until it resumes
    else:
        eta = charts.duration(charts.eta(left, bytes_per_second))
    chart = charts.throughput_svg([], 0)
    if migration.started_at is not None and migration.objects_copied > 0:
        bins = await services.read_models.throughput(
            migration.id, migration.started_at, now, charts.CHART_BINS
        )
        seconds = max((now - migration.started_at).total_seconds(), 1) / charts.CHART_BINS
        chart = charts.throughput_svg(bins, seconds)
    return {"rate": charts.per_second(bytes_per_second), "eta": eta, "chart": chart}


def _rows_context(migrations: list[MigrationOut]) -> dict[str, Any]:
    return {
        "migrations": migrations,
        "polling": not all(is_finished(m) for m in migrations),
    }


async def _objects_context(
    services: Services, migration_id: UUID, status: str, cursor: str
) -> dict[str, Any]:
    status = status if status in OBJECT_STATUSES else ""
    found = await services.read_models.objects(
        migration_id, status=status or None, cursor=cursor or None, limit=OBJECTS_PER_PAGE
    )
    return {"objects": found, "status": status, "cursor": cursor, "statuses": OBJECT_STATUSES}


async def _migration_form(
    services: Services,
    owner: str,
    *,
    values: Mapping[str, str],
    error: str,
    status_code: int = 200,
) -> Template:
    return page(
        "migrations/new.html",
        nav="new",
        connections=await services.connections.list(owner),
        storage_classes=STORAGE_CLASSES,
        overwrite_choices=OVERWRITE_CHOICES,
        values=values,
        error=error,
        status_code=status_code,
    )
