"""REST polish: problem details, presets, buckets, key rotation, guarded deletes and
paging through migrations; in-process on real Postgres, NATS and S3 servers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest
from cryptography.fernet import Fernet
from litestar.testing import AsyncTestClient

from cstor import contracts
from cstor.secrets.cipher import SecretCipher
from cstor.settings import Settings
from launcher.embedded import EmbeddedS3
from services.api.app import create_app
from services.api.connections.presets import PresetError, endpoint_for
from tests.connection_forms import connection_body
from tests.readmodel_rows import migration_event, record_events, record_migration
from tests.sessions import PASSWORD, sign_up

Client = AsyncTestClient[Any]


@pytest.fixture
def secret_key() -> str:
    """The application key the connections' secrets are encrypted with."""
    return Fernet.generate_key().decode()


@pytest.fixture
async def client(database_url: str, nats_url: str, secret_key: str) -> AsyncIterator[Client]:
    """The api in-process, a user signed in, REST called with their token."""
    settings = Settings(database_url=database_url, nats_url=nats_url, secret_key=secret_key)
    async with AsyncTestClient(app=create_app(settings)) as client:
        email = await sign_up(client)
        token = await client.post("/api/v1/tokens", json={"name": "t"}, auth=(email, PASSWORD))
        client.headers["Authorization"] = f"Bearer {token.json()['token']}"
        yield client


async def connect(client: Client, server: EmbeddedS3, name: str = "store") -> str:
    response = await client.post(
        "/api/v1/connections",
        json=connection_body(server, name),
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def owner_of(client: Client) -> str:
    return str((await client.get("/api/v1/me")).json()["id"])


def test_presets_derive_the_regional_endpoint() -> None:
    assert endpoint_for("aws", "eu-west-1", None) == "https://s3.eu-west-1.amazonaws.com"
    assert endpoint_for("lyve", "us-east-1", "") == "https://s3.us-east-1.lyvecloud.seagate.com"
    assert endpoint_for("custom", "us-east-1", "http://minio:9000/") == "http://minio:9000"
    with pytest.raises(PresetError, match="required for a custom endpoint"):
        endpoint_for("custom", "us-east-1", None)
    with pytest.raises(PresetError, match="not a region"):
        endpoint_for("aws", "Frankfurt", None)
    with pytest.raises(PresetError, match="leave the endpoint blank"):
        endpoint_for("lyve", "us-east-1", "https://elsewhere.example.com")


async def test_errors_are_problem_details_with_a_readable_detail(client: Client) -> None:
    # An unknown migration
    missing = await client.get(f"/api/v1/migrations/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    body = missing.json()
    assert body["type"] == "about:blank"
    assert body["title"] == "Not Found"
    assert body["status"] == 404
    assert "does not exist" in body["detail"]

    # A body that does not fit the schema names the field
    invalid = await client.post("/api/v1/connections", json={"name": "x"})
    assert invalid.status_code == 400
    assert invalid.headers["content-type"].startswith("application/problem+json")
    assert invalid.json()["title"] == "Bad Request"
    assert "access_key" in invalid.text

    # A custom endpoint without its URL is explained
    no_url = await client.post(
        "/api/v1/connections", json={"name": "x", "access_key": "a", "secret_key": "b"}
    )
    assert no_url.status_code == 422
    assert no_url.json()["detail"] == "Endpoint URL is required for a custom endpoint."


async def test_a_preset_is_tested_at_its_regional_endpoint(client: Client) -> None:
    # When an AWS connection is given only a region (these keys cannot work)
    response = await client.post(
        "/api/v1/connections",
        json={
            "name": "aws",
            "provider": "aws",
            "region": "eu-west-1",
            "access_key": "not-a-real-access-key",
            "secret_key": "not-a-real-secret",
        },
    )

    # Then it was tested at the region's endpoint, and refused with a reason
    assert response.status_code == 422
    assert "https://s3.eu-west-1.amazonaws.com" in response.json()["detail"]
    assert (await client.get("/api/v1/connections")).json() == []


async def test_a_connection_lists_its_buckets(
    client: Client, s3_source: EmbeddedS3, make_bucket: Callable[[EmbeddedS3], str]
) -> None:
    # Given a connection and a bucket on its server
    bucket = make_bucket(s3_source)
    connection_id = await connect(client, s3_source)

    # When its buckets are asked for
    response = await client.get(f"/api/v1/connections/{connection_id}/buckets")

    # Then the bucket is among them, by name
    assert response.status_code == 200
    assert bucket in [b["name"] for b in response.json()]
    # And the connection's page shows it too
    assert bucket in (await client.get(f"/connections/{connection_id}")).text


async def test_rotated_keys_are_tested_before_they_replace_the_old_ones(
    client: Client, database_url: str, secret_key: str, s3_source: EmbeddedS3, moto_s3: EmbeddedS3
) -> None:
    # Given a connection whose server accepts only its own keys
    connection_id = await connect(client, s3_source)

    # When new keys that the server refuses are offered
    refused = await client.put(
        f"/api/v1/connections/{connection_id}/secret", json={"secret_key": "wrong-secret-0001"}
    )

    # Then they are refused with the reason, and the old keys still work
    assert refused.status_code == 422
    assert "not saved" in refused.json()["detail"]
    assert "wrong-secret-0001" not in refused.text
    assert (await client.get(f"/api/v1/connections/{connection_id}/buckets")).status_code == 200

    # Given a connection to a server that takes any keys
    moto_id = await connect(client, moto_s3, "moto")

    # When both keys are rotated
    rotated = await client.put(
        f"/api/v1/connections/{moto_id}/secret",
        json={"access_key": "ROTATEDACCESSKEY", "secret_key": "rotated-secret-0002"},
    )

    # Then the connection carries the new access key, and the new secret is what is stored
    assert rotated.status_code == 200
    assert rotated.json()["access_key"] == "ROTATEDACCESSKEY"
    assert "rotated-secret-0002" not in rotated.text
    conn = await asyncpg.connect(database_url)
    stored = await conn.fetchval(
        "SELECT secret_ciphertext FROM connections WHERE id = $1", uuid.UUID(moto_id)
    )
    await conn.close()
    assert SecretCipher(secret_key).decrypt(stored) == "rotated-secret-0002"


async def test_a_connection_in_use_cannot_be_deleted_until_its_migration_ends(
    client: Client, database_url: str, s3_source: EmbeddedS3
) -> None:
    # Given a connection a running migration copies from
    connection_id = await connect(client, s3_source, "lyve-prod")
    migration_id = await record_migration(
        database_url,
        await owner_of(client),
        name="nightly photos",
        source_connection_id=uuid.UUID(connection_id),
    )

    # When it is deleted
    refused = await client.delete(f"/api/v1/connections/{connection_id}")

    # Then that is refused, naming the migration
    assert refused.status_code == 409
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "'nightly photos' (running)" in refused.json()["detail"]
    page = await client.post(f"/connections/{connection_id}/delete")
    assert page.status_code == 409
    assert "nightly photos" in page.text

    # When the migration has completed, the connection can go
    completed = migration_event(contracts.MigrationCompleted, migration_id, copied=0, failed=0)
    await record_events(database_url, completed)
    assert (await client.delete(f"/api/v1/connections/{connection_id}")).status_code == 204
    assert (await client.get(f"/api/v1/connections/{connection_id}")).status_code == 404


async def test_migrations_are_paged_newest_first_by_cursor(
    client: Client, database_url: str
) -> None:
    # Given five migrations
    owner = await owner_of(client)
    for n in range(5):
        await record_migration(database_url, owner, name=f"m{n}")

    # When they are read two at a time, following the Link header
    names: list[str] = []
    url: str | None = "/api/v1/migrations?limit=2"
    pages = 0
    while url is not None:
        response = await client.get(url)
        assert response.status_code == 200
        names += [m["name"] for m in response.json()]
        pages += 1
        link = response.headers.get("link")
        url = link.split(">")[0].lstrip("<") if link else None
        if url:
            assert response.headers["x-next-cursor"] in url

    # Then every migration comes once, in three pages
    assert pages == 3
    assert sorted(names) == [f"m{n}" for n in range(5)]
    assert len(set(names)) == 5

    # And a cursor it did not hand out is a clear 400
    bad = await client.get("/api/v1/migrations?cursor=not-a-cursor")
    assert bad.status_code == 400
    assert "cursor" in bad.json()["detail"]
