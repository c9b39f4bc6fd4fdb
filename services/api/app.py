"""The api's composition root: the Litestar app, its adapters, and the outbox relay."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator
from http import HTTPStatus
from pathlib import Path
from typing import Any

from litestar import Litestar, Request, Response
from litestar.config.csrf import CSRFConfig
from litestar.contrib.jinja import JinjaTemplateEngine
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.plugins.htmx import HTMXPlugin
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig

from cstor import bus, readmodel
from cstor.accounts import Accounts
from cstor.app.migrations import Migrations
from cstor.connections import ConnectionStore
from cstor.relay import OutboxRelay
from cstor.secret_store import SecretStoreError, secret_store_for
from cstor.settings import Settings
from cstor.store.migrations import migrate
from services.api.accounts import ACCOUNT_CONTROLLERS
from services.api.admin import admin_router
from services.api.auth import provide_user
from services.api.bucket_pages import BucketPages
from services.api.credential_cache import CredentialCache
from services.api.deps import Services
from services.api.edge import MAX_BODY_BYTES, refuse_hostile_input
from services.api.openapi import DocumentedProblems, openapi_config, swagger_assets
from services.api.pages import PAGES
from services.api.queries import ReadModels
from services.api.reports import ReportController
from services.api.rest import ConnectionController, MigrationController

log = logging.getLogger(__name__)

WEB = Path(__file__).resolve().parents[2] / "web"


def create_app(settings: Settings, *, relay: bool = True) -> Litestar:
    """The api: REST under /api/v1, the dashboard under /, OpenAPI at /schema."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        pool = await readmodel.create_pool(settings.database_url, min_size=1, max_size=8)
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
        if relay:
            nc = await bus.connect(settings.nats_url, "cstor-api-relay")
            js = nc.jetstream()
            await bus.ensure_stream(js, settings.stream_name)
            outbox = OutboxRelay(migrations, nc, settings.database_url, settings.stream_name)
            tasks.append(asyncio.create_task(outbox.run(stop)))
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
            ConnectionController,
            MigrationController,
            *ACCOUNT_CONTROLLERS,
            ReportController,
            admin_router(settings),
            *PAGES,
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
        exception_handlers={Exception: _unexpected_error},
        # Input no handler could store is refused before any handler parses it (edge.py).
        before_request=refuse_hostile_input,
        request_max_body_size=MAX_BODY_BYTES,
    )


def _no_template_reload(engine: JinjaTemplateEngine) -> None:
    engine.engine.auto_reload = False


def _services(request: Request) -> Services:  # type: ignore[type-arg]
    services: Services = request.app.state.services
    return services


def _unexpected_error(request: Request, error: Exception) -> Response:  # type: ignore[type-arg]
    """Errors as problem details (RFC 9457): HTTP errors keep their message; anything else
    is logged, never shown as a trace."""
    if isinstance(error, HTTPException):
        return problem(error.status_code, error.detail, headers=error.headers, extra=error.extra)
    if isinstance(error, SecretStoreError):  # e.g. AWS Secrets Manager unreachable or denying
        log.warning("%s %s: %s", request.method, request.url.path, error)
        return problem(503, str(error))
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return problem(500, "Something went wrong on our side; it has been logged.")


def problem(
    status: int,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    extra: Any = None,
) -> Response[dict[str, Any]]:
    """An ``application/problem+json`` answer: type, title, status and a readable detail."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if extra:
        body["errors"] = extra
    return Response(
        body,
        status_code=status,
        headers=headers,
        media_type="application/problem+json",
    )
