"""The api's composition root: the Litestar app, its adapters, and the outbox relay."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from litestar import Litestar, Request
from litestar.config.csrf import CSRFConfig
from litestar.contrib.jinja import JinjaTemplateEngine
from litestar.di import Provide
from litestar.plugins.htmx import HTMXPlugin
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig

from cstor import bus, health, stream
from cstor.app.migrations import Migrations
from cstor.secrets.store import secret_store_for
from cstor.settings import Settings
from cstor.store.connections import ConnectionStore
from cstor.store.migrations import migrate
from cstor.store.pool import create_pool
from cstor.store.relay import OutboxRelay
from services.api.accounts.pages import PAGE_CONTROLLERS
from services.api.accounts.rest import REST_CONTROLLERS
from services.api.accounts.store import Accounts
from services.api.admin import admin_router
from services.api.auth import provide_user
from services.api.buckets.pages import BucketPages
from services.api.buckets.rest import BucketController
from services.api.connections.pages import ConnectionPages
from services.api.connections.rest import ConnectionController
from services.api.credential_cache import CredentialCache
from services.api.dashboard import answer_any_error
from services.api.deps import Services
from services.api.edge import MAX_BODY_BYTES, refuse_hostile_input
from services.api.migrations.pages import MigrationPages
from services.api.migrations.reports import ReportController
from services.api.migrations.rest import MigrationController
from services.api.openapi import DocumentedProblems, openapi_config, swagger_assets
from services.api.probes import ProbeController, relay_check
from services.api.queries import ReadModels

log = logging.getLogger(__name__)

WEB = Path(__file__).resolve().parents[2] / "web"


def create_app(
    settings: Settings, *, relay: bool = True, nats_connected: Callable[[], bool] | None = None
) -> Litestar:
    """The api: REST under /api/v1, the dashboard under /, OpenAPI at /schema.

    Without its relay (a worker process), the api has no NATS connection of its own:
    ``nats_connected`` tells its readiness whether the relay's process's is connected.
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        pool = await create_pool(settings.database_url, min_size=1, max_size=8)
        await migrate(pool)
        migrations = Migrations(settings.eventsourcing_env())
        credentials = CredentialCache(settings.database_url)
        await credentials.start()
        read_models = ReadModels(pool, settings.database_url)
        read_models.start()
        app.state.services = Services(
            migrations=migrations,
            connections=ConnectionStore(pool, secret_store_for(settings)),
            read_models=read_models,
            accounts=Accounts(pool),
            credentials=credentials,
        )
        stop = asyncio.Event()
        tasks = []
        nc = None
        checks: dict[str, health.Check] = {"postgres": health.postgres_check(pool)}
        if nats_connected is not None:
            checks["nats"] = health.connected_check(nats_connected)
        if relay:
            nc = await bus.connect(settings.nats_url, "cstor-api-relay")
            checks["nats"] = health.nats_check(nc)
            js = nc.jetstream()
            await stream.ensure_stream(js, settings.stream_name, stream.StreamLimits.of(settings))
            outbox = OutboxRelay(migrations, nc, settings.database_url, settings.stream_name, "api")
            tasks.append(asyncio.create_task(outbox.run(stop)))
        checks["relay"] = relay_check(pool, settings.stream_name, settings.relay_max_lag)
        app.state.checks = checks
        try:
            yield
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            if nc is not None:
                await nc.drain()
            await credentials.close()
            await read_models.close()
            await pool.close()
            migrations.close()

    return Litestar(
        route_handlers=[
            ProbeController,
            ConnectionController,
            BucketController,
            MigrationController,
            *REST_CONTROLLERS,
            *PAGE_CONTROLLERS,
            ReportController,
            admin_router(settings),
            MigrationPages,
            ConnectionPages,
            BucketPages,
            create_static_files_router(path="/static", directories=[WEB / "static"]),
            swagger_assets(),
        ],
        dependencies={
            "services": Provide(_services, sync_to_thread=False),
            # Controllers add "owner" (deps.provide_owner), which needs this "user".
            "user": Provide(provide_user),
        },
        # Form posts carry a token that must match a cookie only this site can set.
        # REST is exempt: it changes things only with an API token, never a cookie.
        csrf_config=CSRFConfig(
            secret=hashlib.sha256(b"cstor-csrf:" + settings.secret_key.encode()).hexdigest(),
            cookie_httponly=True,
            cookie_samesite="lax",
            exclude=["^/api/"],
        ),
        lifespan=[lifespan],
        plugins=[HTMXPlugin(), DocumentedProblems()],
        template_config=TemplateConfig(
            directory=WEB / "templates",
            engine=JinjaTemplateEngine,
            # Templates change with a release, not while it runs: Jinja's default checked
            # each template file's mtime on every render (3% of a worker's CPU under load).
            engine_callback=_no_template_reload,
        ),
        openapi_config=openapi_config(),
        # Every error as problem details, each kind with its status (services.api.problems);
        # a browser's wrong path or method outside /api/ as the dashboard's error page.
        exception_handlers={Exception: answer_any_error},
        # Input no handler could store is refused before any handler parses it (edge.py).
        before_request=refuse_hostile_input,
        request_max_body_size=MAX_BODY_BYTES,
        # The process's logging is cstor's (cstor.runtime: CSTOR_LOG_FORMAT), as in every
        # service; Litestar's own would replace the root logger's handler with its format.
        logging_config=None,
    )


def _no_template_reload(engine: JinjaTemplateEngine) -> None:
    engine.engine.auto_reload = False


def _services(request: Request) -> Services:  # type: ignore[type-arg]
    services: Services = request.app.state.services
    return services
