"""Each user sees only their own connections, migrations, objects and tokens: another
user's id answers 404, through REST and on the pages alike."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from launcher.embedded import EmbeddedS3
from tests.connection_forms import connection_body
from tests.readmodel_rows import record_migration, record_objects
from tests.sessions import PASSWORD, forget, sign_up

Client = AsyncTestClient[Any]


@pytest.fixture
def client(visitor: Client) -> Client:
    """The api in-process, with nobody signed in (tests/integration/conftest.py)."""
    return visitor


async def token_for(client: Client, email: str) -> dict[str, str]:
    created = await client.post("/api/v1/tokens", json={"name": "t"}, auth=(email, PASSWORD))
    assert created.status_code == 201, created.text
    return {"Authorization": f"Bearer {created.json()['token']}"}


async def test_another_users_things_are_not_found_anywhere(
    client: Client, database_url: str, s3_source: EmbeddedS3
) -> None:
    # Given Alice, with a connection, a migration with objects, and a token
    alice_email = await sign_up(client)
    alice = await token_for(client, alice_email)
    alice_id = (await client.get("/api/v1/me", headers=alice)).json()["id"]
    connection = await client.post(
        "/api/v1/connections",
        headers=alice,
        json=connection_body(s3_source, "alice-store"),
    )
    assert connection.status_code == 201, connection.text
    connection_id = connection.json()["id"]
    migration_id = await record_migration(
        database_url, alice_id, name="alice-photos", source_connection_id=uuid.UUID(connection_id)
    )
    await record_objects(database_url, migration_id, 5)
    alice_token_id = (await client.get("/api/v1/tokens", headers=alice)).json()[0]["id"]

    # And Bob, signed in to the dashboard in the same browser after Alice left, with a token
    forget(client)
    bob_email = await sign_up(client)
    bob = await token_for(client, bob_email)

    # Then Bob's lists are empty
    assert (await client.get("/api/v1/connections", headers=bob)).json() == []
    assert (await client.get("/api/v1/migrations", headers=bob)).json() == []
    assert [t["name"] for t in (await client.get("/api/v1/tokens", headers=bob)).json()] == ["t"]
    home = await client.get("/")
    assert "alice-photos" not in home.text
    assert "alice-store" not in (await client.get("/connections")).text
    assert "alice-store" not in (await client.get("/migrations/new")).text

    # And each of Alice's ids is 404 to Bob, through REST
    for path in (
        f"/api/v1/connections/{connection_id}",
        f"/api/v1/connections/{connection_id}/buckets",
        f"/api/v1/migrations/{migration_id}",
        f"/api/v1/migrations/{migration_id}/objects",
        f"/api/v1/migrations/{migration_id}/report.csv",
        f"/api/v1/migrations/{migration_id}/report.json",
    ):
        response = await client.get(path, headers=bob)
        assert response.status_code == 404, path
        assert "alice" not in response.text
    assert (
        await client.delete(f"/api/v1/connections/{connection_id}", headers=bob)
    ).status_code == 404
    assert (await client.delete(f"/api/v1/tokens/{alice_token_id}", headers=bob)).status_code == 404

    # And on the pages
    for path in (
        f"/connections/{connection_id}",
        f"/migrations/{migration_id}",
        f"/migrations/{migration_id}/objects",
        f"/migrations/{migration_id}/progress",
    ):
        response = await client.get(path)
        assert response.status_code == 404, path
        assert "photos/000.jpg" not in response.text

    # And Bob cannot start a migration from Alice's connection
    refused = await client.post(
        "/api/v1/migrations",
        headers=bob,
        json={
            "source_connection_id": connection_id,
            "source_bucket": "anything",
            "destination_connection_id": connection_id,
            "destination_bucket": "anything",
        },
    )
    assert refused.status_code == 422
    assert "does not exist" in refused.json()["detail"]

    # While Alice still sees all of hers
    assert (
        await client.get(f"/api/v1/migrations/{migration_id}", headers=alice)
    ).status_code == 200
    objects = await client.get(f"/api/v1/migrations/{migration_id}/objects", headers=alice)
    assert len(objects.json()["items"]) == 5
    assert (await client.get("/api/v1/tokens", headers=alice)).json()[0]["id"] == alice_token_id
