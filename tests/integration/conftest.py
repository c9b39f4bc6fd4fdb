"""The api in-process (Litestar's test client, its lifespan running) on the session's
Postgres and a nats-server of the test's own: what the page and REST tests drive."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from cryptography.fernet import Fernet
from litestar.testing import AsyncTestClient

from cstor.settings import Settings
from launcher.embedded import EmbeddedS3
from services.api.app import create_app
from tests.connection_forms import add_connection
from tests.sessions import sign_up

Client = AsyncTestClient[Any]


@pytest.fixture
async def visitor(database_url: str, nats_url: str) -> AsyncIterator[Client]:
    """The api with its lifespan (schema, relay) running, nobody signed in."""
    settings = Settings(
        database_url=database_url, nats_url=nats_url, secret_key=Fernet.generate_key().decode()
    )
    async with AsyncTestClient(app=create_app(settings)) as client:
        yield client


@pytest.fixture
async def client(visitor: Client) -> Client:
    """The api with a user signed up, and so signed in, through the form."""
    await sign_up(visitor)
    return visitor


@pytest.fixture
async def owner(client: Client) -> str:
    """The signed-in user's id: what their migrations are recorded under."""
    return str((await client.get("/api/v1/me")).json()["id"])


@pytest.fixture
async def route_form(
    client: Client,
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    make_bucket: Callable[[EmbeddedS3], str],
) -> dict[str, str]:
    """Two connections added through the form (source, destination) and a new bucket on
    each: the route fields of a new-migration form."""
    return {
        "source_connection_id": await add_connection(client, s3_source, "source"),
        "source_bucket": make_bucket(s3_source),
        "destination_connection_id": await add_connection(client, s3_destination, "destination"),
        "destination_bucket": make_bucket(s3_destination),
    }
