"""The Connections pages: the list, the form that tests and saves a new one, and a
connection's page (its buckets, new keys, deleting it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

import msgspec
from litestar import Controller, Response, get, post
from litestar.di import Provide
from litestar.response import Redirect, Template

from cstor.domain.exceptions import DomainError, InvalidRequest, NotFound
from services.api.connections import commands
from services.api.connections.presets import PROVIDERS
from services.api.connections.schemas import ConnectionCreate, SecretRotate
from services.api.dashboard import Form, error_page, page
from services.api.deps import Services, provide_owner
from services.api.forms import convert_form, labelled

LABELS = {
    "name": "Name",
    "endpoint": "Endpoint URL",
    "region": "Region",
    "provider": "Provider",
    "access_key": "Access key",
    "secret_key": "Secret key",
}


def form_fields(form: Mapping[str, str], into: type[msgspec.Struct]) -> dict[str, str]:
    """The form's fields of ``into`` that are not blank (blank ones take their defaults),
    trimmed, but for the secret: it is taken as typed."""
    return {
        name: value if name == "secret_key" else value.strip()
        for name, value in form.items()
        if name in into.__struct_fields__ and value.strip()
    }


def in_form_words(error: DomainError) -> str:
    """A refusal as the form shows it: the fields it names by their labels."""
    return labelled(error, LABELS) if isinstance(error, InvalidRequest) else str(error)


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
            request = convert_form(form_fields(data, ConnectionCreate), ConnectionCreate)
            created = await commands.create_connection(services, owner, request)
        except DomainError as error:
            return await _connections_page(
                services, owner, values=data, error=in_form_words(error), status_code=422
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
            keys = convert_form(form_fields(data, SecretRotate), SecretRotate)
            await commands.rotate_secret(services, owner, connection_id, keys)
        except NotFound:
            raise
        except DomainError as error:
            return await _connection_page(
                services, owner, connection_id, error=in_form_words(error), status_code=422
            )
        return Redirect(f"/connections/{connection_id}?rotated=1", status_code=303)

    @post("/{connection_id:uuid}/delete")
    async def delete(self, services: Services, owner: str, connection_id: UUID) -> Response[Any]:
        try:
            await commands.delete_connection(services, owner, connection_id)
        except NotFound:
            raise
        except DomainError as error:
            return await _connection_page(
                services, owner, connection_id, error=str(error), status_code=409
            )
        return Redirect("/connections", status_code=303)


async def _connection_page(
    services: Services,
    owner: str,
    connection_id: UUID,
    *,
    error: str = "",
    notice: str = "",
    status_code: int = 200,
) -> Template:
    connection = await commands.connection_of(services, owner, connection_id)
    buckets: list[Any] = []
    buckets_error = ""
    try:
        buckets = await commands.list_buckets(services, owner, connection_id)
    except DomainError as failure:
        buckets_error = str(failure)
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
