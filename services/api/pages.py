"""The HTMX dashboard: server-rendered pages over the same use cases as the REST API."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode, urlsplit
from uuid import UUID

import anyio
import msgspec
from cachetools import LRUCache
from eventsourcing.application import AggregateNotFoundError
from litestar import Controller, Request, Response, get, post
from litestar.di import Provide
from litestar.enums import RequestEncodingType
from litestar.exceptions import ClientException, HTTPException, NotFoundException
from litestar.params import Body
from litestar.plugins.htmx import HTMXTemplate
from litestar.response import Redirect, Template

from cstor.domain.migration import STORAGE_CLASSES
from cstor.presets import PROVIDERS
from services.api import charts, commands, control, migration_form, planning
from services.api.auth import NotSignedIn
from services.api.deps import Services, provide_owner
from services.api.queries import OBJECT_STATUSES
from services.api.schemas import ConnectionCreate, MigrationCreate, MigrationOut, SecretRotate

log = logging.getLogger(__name__)

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
Struct = TypeVar("Struct", bound=msgspec.Struct)

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

CONNECTION_LABELS = {
    "name": "Name",
    "endpoint": "Endpoint URL",
    "region": "Region",
    "provider": "Provider",
    "access_key": "Access key",
    "secret_key": "Secret key",
}


# Formatting, handed to every template -----------------------------------------------

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def human_bytes(count: int) -> str:
    """A byte count in binary units: ``12582912`` → ``"12.0 MiB"``."""
    value, unit = float(count), 0
    while value >= 1024 and unit < len(_UNITS) - 1:
        value, unit = value / 1024, unit + 1
    return f"{count} B" if unit == 0 else f"{value:.1f} {_UNITS[unit]}"


def percent(done: int, total: int) -> str:
    """How much of ``total`` is done, rounded down so 100% means all of it."""
    return f"{done * 100 // total}%" if total > 0 else "0%"


def when(moment: datetime | None) -> str:
    """A timestamp in UTC to the second, or a dash for one that has not happened."""
    return "—" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def elapsed(start: datetime | None, end: datetime | None) -> str:
    """How long from ``start`` to ``end`` (or now): ``"3m 07s"``."""
    if start is None:
        return "—"
    seconds = int(((end or datetime.now(UTC)) - start).total_seconds())
    hours, rest = divmod(max(seconds, 0), 3600)
    return f"{hours}h {rest // 60:02d}m" if hours else f"{rest // 60}m {rest % 60:02d}s"


def query(**params: str) -> str:
    """A query string of the non-blank parameters, ``?`` included: ``"?status=failed"``."""
    present = {name: value for name, value in params.items() if value}
    return "?" + urlencode(present) if present else ""


TEMPLATE_FUNCTIONS = {
    "human_bytes": human_bytes,
    "percent": percent,
    "when": when,
    "elapsed": elapsed,
    "query": query,
    "iso": datetime.fromisoformat,
}


def page(name: str, *, status_code: int = 200, **context: Any) -> Template:
    """A whole page rendered from ``web/templates``."""
    return Template(
        template_name=name, context=TEMPLATE_FUNCTIONS | context, status_code=status_code
    )


def fragment(name: str, *, trigger_event: str | None = None, **context: Any) -> HTMXTemplate:
    """Part of a page, swapped in by htmx (which fires ``trigger_event`` once it has settled)."""
    return HTMXTemplate(
        template_name=name,
        context=TEMPLATE_FUNCTIONS | context,
        trigger_event=trigger_event,
        after="settle" if trigger_event else None,
    )


def is_finished(migration: MigrationOut) -> bool:
    return migration.status in FINISHED


# Forms --------------------------------------------------------------------------------


def convert_form(form: Mapping[str, str], into: type[Struct], labels: Mapping[str, str]) -> Struct:
    """The form as a request struct; blank fields take their defaults, errors read as prose."""
    fields = {
        name: value if name == "secret_key" else value.strip()
        for name, value in form.items()
        if name in into.__struct_fields__ and value.strip()
    }
    try:
        return msgspec.convert(fields, into)
    except msgspec.ValidationError as error:
        raise commands.Unprocessable(explain(error, labels)) from None


def migration_request(form: Mapping[str, str]) -> MigrationCreate:
    """The new-migration form as the API's request; errors name the form's fields."""
    try:
        return msgspec.convert(migration_form.request_fields(form), MigrationCreate)
    except msgspec.ValidationError as error:
        raise commands.Unprocessable(explain(error, migration_form.LABELS)) from None


def explain(error: msgspec.ValidationError, labels: Mapping[str, str]) -> str:
    """Turn msgspec's ``Expected ... - at `$.field``` into a sentence about the form's field."""
    text = str(error)
    found = re.search(r"`\$\.(?:\w+\.)*(\w+)`|required field `(\w+)`", text)
    if found is None:
        return f"The form could not be read: {text}"
    label = labels.get(found[1] or found[2], found[1] or found[2])
    if "required field" in text:
        return f"{label} is required."
    if "UUID" in text:
        return f"Choose a {label.lower()}."
    if "regex" in text:
        return f"{label} must be a URL starting with http:// or https://."
    if "length <=" in text:
        return f"{label} is too long."
    return f"{label} is not valid."


# Errors -------------------------------------------------------------------------------


def error_page(request: Request[Any, Any, Any], error: Exception) -> Response[Any]:
    """Errors as a page in the layout: HTTP errors keep their message, the rest are logged."""
    if isinstance(error, NotSignedIn):
        target = "/sign-in" + query(next=_current_page(request))
        if request.headers.get("hx-request"):
            # A poll or a fragment: send the whole page to sign-in, not just the fragment.
            return Response(b"", status_code=401, headers={"HX-Redirect": target})
        return Redirect(target, status_code=303)
    if isinstance(error, HTTPException):
        return page("error.html", status_code=error.status_code, detail=error.detail)
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=error)
    detail = "Something went wrong on our side; it has been logged."
    return page("error.html", status_code=500, detail=detail)


def _current_page(request: Request[Any, Any, Any]) -> str:
    """The page to come back to after signing in (for a fragment, the page it is part of)."""
    if request.headers.get("hx-current-url"):
        url = urlsplit(request.headers["hx-current-url"])
        return url.path + (f"?{url.query}" if url.query else "")
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


# Pages --------------------------------------------------------------------------------


class MigrationPages(Controller):
    """The migrations list, a migration's live progress and objects, and the form to start one."""

    path = "/"
    include_in_schema = False
    dependencies = {"owner": Provide(provide_owner)}
    exception_handlers = {Exception: error_page}

    @get("/")
    async def index(self, services: Services, owner: str) -> Template:
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
        except ClientException as error:
            return await _migration_form(
                services,
                owner,
                values=data,
                error=migration_form.in_form_words(str(error.detail)),
                status_code=422,
            )
        return Redirect(f"/migrations/{created.id}", status_code=303)

    @post("/migrations/estimate")
    async def estimate(self, services: Services, owner: str, data: Form) -> Template:
        """What the form's migration would copy and skip, counted before anything is copied."""
        try:
            found = await planning.estimate_migration(services, owner, migration_request(data))
        except ClientException as error:
            error_text = migration_form.in_form_words(str(error.detail))
            return fragment("migrations/_estimate.html", estimate=None, error=error_text)
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
            raise NotFoundException(f"A migration cannot {action!r}.")
        try:
            await command(services, owner, migration_id)
        except ClientException as error:
            if error.status_code == 404:
                raise
            return await _detail_page(
                services, owner, migration_id, error=str(error.detail), status_code=409
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


class ConnectionPages(Controller):
    """Connections: the list, and the form that tests and saves a new one."""

    path = "/connections"
    include_in_schema = False
    dependencies = {"owner": Provide(provide_owner)}
    exception_handlers = {Exception: error_page}

    @get("/")
    async def index(self, services: Services, owner: str) -> Template:
        return await _connections_page(services, owner, values={}, error="")

    @post("/")
    async def create(self, services: Services, owner: str, data: Form) -> Response[Any]:
        try:
            request = convert_form(data, ConnectionCreate, CONNECTION_LABELS)
            created = await commands.create_connection(services, owner, request)
        except ClientException as error:
            return await _connections_page(
                services,
                owner,
                values=data,
                error=migration_form.in_form_words(str(error.detail), CONNECTION_LABELS),
                status_code=422,
            )
        return Redirect(f"/connections/{created.id}?added=1", status_code=303)

    @get("/{connection_id:uuid}")
    async def detail(
        self,
        services: Services,
        owner: str,
        connection_id: UUID,
        rotated: bool = False,
        added: bool = False,
    ) -> Template:
        notice = ""
        if added:
            notice = "The connection works and is saved."
        elif rotated:
            notice = "The new keys work and replaced the old ones."
        return await _connection_page(services, owner, connection_id, notice=notice)

    @post("/{connection_id:uuid}/secret")
    async def rotate(
        self, services: Services, owner: str, connection_id: UUID, data: Form
    ) -> Response[Any]:
        try:
            keys = convert_form(data, SecretRotate, CONNECTION_LABELS)
            await commands.rotate_secret(services, owner, connection_id, keys)
        except ClientException as error:
            if error.status_code == 404:
                raise
            return await _connection_page(
                services, owner, connection_id, error=str(error.detail), status_code=422
            )
        return Redirect(f"/connections/{connection_id}?rotated=1", status_code=303)

    @post("/{connection_id:uuid}/delete")
    async def delete(self, services: Services, owner: str, connection_id: UUID) -> Response[Any]:
        try:
            await commands.delete_connection(services, owner, connection_id)
        except ClientException as error:
            if error.status_code == 404:
                raise
            return await _connection_page(
                services, owner, connection_id, error=str(error.detail), status_code=409
            )
        return Redirect("/connections", status_code=303)


PAGES = [MigrationPages, ConnectionPages]


async def _connection_page(
    services: Services,
    owner: str,
    connection_id: UUID,
    *,
    error: str = "",
    notice: str = "",
    status_code: int = 200,
) -> Template:
    connection = await services.connections.get(owner, connection_id)
    if connection is None:
        raise NotFoundException(f"Connection {connection_id} does not exist.")
    buckets: list[Any] = []
    buckets_error = ""
    try:
        buckets = await commands.list_buckets(services, owner, connection_id)
    except ClientException as failure:
        buckets_error = str(failure.detail)
    return page(
        "connections/detail.html",
        nav="connections",
        connection=connection,
        buckets=buckets,
        buckets_error=buckets_error,
        error=error,
        notice=notice,
        status_code=status_code,
    )


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
        values=values,
        error=error,
        status_code=status_code,
    )


async def _connections_page(
    services: Services,
    owner: str,
    *,
    values: Mapping[str, str],
    error: str,
    status_code: int = 200,
) -> Template:
    # The secret is never sent back, not even to the user who just typed it; nor is an
    # endpoint URL with a user and password in it (refused for that reason).
    kept = {
        name: value
        for name, value in values.items()
        if name != "secret_key" and not (name == "endpoint" and "@" in value)
    }
    return page(
        "connections/index.html",
        nav="connections",
        connections=await services.connections.list(owner),
        providers=PROVIDERS,
        values=kept,
        error=error,
        status_code=status_code,
    )
