"""Admin views: the consumers' dead letters (REST, a dashboard page) and a tiny metric.

An admin is a signed-up user whose email is in ``CSTOR_ADMIN_EMAILS``; everyone else
gets a 403. The metric (``GET /metrics``, Prometheus text) gives counts per consumer
only, nothing about any user's migrations, so it needs no sign-in: a scraper has none.
"""

from __future__ import annotations

from litestar import Controller, Response, Router, get
from litestar.di import Provide
from litestar.exceptions import PermissionDeniedException
from litestar.response import Template

from cstor.settings import Settings
from cstor.store import deadletters
from cstor.store.deadletters import DeadLetter
from services.api.accounts.store import User
from services.api.dashboard import error_page, page
from services.api.deps import Services

NOT_ADMIN = "Only cstor's admins may see this (CSTOR_ADMIN_EMAILS names them)."


def admin_router(settings: Settings) -> Router:
    """The admin endpoints and pages, for the admins `settings` names."""
    admins = settings.admins

    async def provide_admin(user: User) -> User:
        if user.email.lower() not in admins:
            raise PermissionDeniedException(NOT_ADMIN)
        return user

    return Router(
        path="/",
        route_handlers=[AdminController, AdminPages, metrics],
        dependencies={"admin": Provide(provide_admin)},
    )


class AdminController(Controller):
    """What an operator needs to see that users do not: events the consumers gave up on."""

    path = "/api/v1/admin"
    tags = ["admin"]

    @get(
        "/dead-letters",
        summary="List the dead letters: events a consumer could not apply and went past",
    )
    async def dead_letters(self, services: Services, admin: User) -> list[DeadLetter]:
        return await deadletters.listed(services.read_models.pool)


class AdminPages(Controller):
    """The dead letters as a page of the dashboard."""

    path = "/admin"
    include_in_schema = False
    exception_handlers = {Exception: error_page}

    @get("/dead-letters")
    async def dead_letters(self, services: Services, admin: User) -> Template:
        letters = await deadletters.listed(services.read_models.pool)
        return page("admin_dead_letters.html", nav="admin", dead_letters=letters)


@get("/metrics", include_in_schema=False, media_type="text/plain; version=0.0.4")
async def metrics(services: Services) -> Response[str]:
    """``cstor_dead_letters{consumer="..."} N``, from the dead-letter table."""
    counts = await deadletters.counts(services.read_models.pool)
    lines = [
        "# HELP cstor_dead_letters Events a consumer could not apply and went past.",
        "# TYPE cstor_dead_letters gauge",
        *(f'cstor_dead_letters{{consumer="{name}"}} {n}' for name, n in sorted(counts.items())),
    ]
    return Response("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")
