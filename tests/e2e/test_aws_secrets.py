"""With CSTOR_SECRETS_BACKEND=aws-secrets-manager, connection secrets live in AWS Secrets
Manager (here a real moto_server) and Postgres keeps only their ARNs: created with the
connection, replaced on rotation, deleted with it, and found nowhere else."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import boto3
import httpx
import msgspec
import psycopg
import pytest
from botocore.exceptions import ClientError
from cryptography.fernet import Fernet

from cstor import bus
from cstor.app.migrations import Migrations
from cstor.domain.migration import Migration
from cstor.domain.planning import PacketLimits
from cstor.secrets.aws import AwsSecretsManager
from cstor.secrets.cipher import SecretCipher
from cstor.secrets.store import EncryptedColumn, SecretStoreError, secret_store_for
from cstor.settings import Settings, SettingsError
from cstor.store.connections import ConnectionStore
from cstor.store.migrations import migrate
from launcher.embedded import EmbeddedS3, free_port, start_moto
from services.planner.service import Planner
from tests.connection_forms import connection_body
from tests.launcher_cli import run_cstor
from tests.leak_scan import LOG_FORMATS, every_log_as_text, every_row_as_text, every_stream_message
from tests.stack import RunningCstor, s3_client_for, start_cstor


def aws_settings(endpoint: str, **overrides: Any) -> dict[str, Any]:
    """Settings that keep secrets in the Secrets Manager at `endpoint`, under a fresh prefix."""
    return {
        "secrets_backend": "aws-secrets-manager",
        "secrets_manager_endpoint": endpoint,
        "secrets_manager_access_key": "testing",
        "secrets_manager_secret_key": "testing",
        "secrets_manager_prefix": f"cstor-test/{uuid.uuid4().hex[:8]}/",
        **overrides,
    }


def secrets_manager_client(endpoint: str) -> Any:
    """A boto3 client for the Secrets Manager that moto_server serves beside S3."""
    return boto3.client(
        "secretsmanager",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def secret_values(endpoint: str, prefix: str) -> dict[str, str]:
    """Every secret under the prefix, by name, as Secrets Manager holds it."""
    client = secrets_manager_client(endpoint)
    listed = client.list_secrets(Filters=[{"Key": "name", "Values": [prefix]}])["SecretList"]
    return {
        s["Name"]: client.get_secret_value(SecretId=s["ARN"])["SecretString"]
        for s in listed
        if s["Name"].startswith(prefix)
    }


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    await migrate(pool)
    yield pool
    await pool.close()


def store_for(pool: asyncpg.Pool, endpoint: str, **overrides: Any) -> ConnectionStore:
    """A connection store as the services build it, keeping secrets at `endpoint`."""
    settings = Settings(secret_key=Fernet.generate_key().decode(), **aws_settings(endpoint))
    return ConnectionStore(pool, secret_store_for(msgspec.structs.replace(settings, **overrides)))


async def row_text(pool: asyncpg.Pool, connection_id: uuid.UUID) -> str:
    text = await pool.fetchval("SELECT t::text FROM connections AS t WHERE id = $1", connection_id)
    return str(text)


# The store, against moto_server ---------------------------------------------------------


async def test_create_rotate_delete_keep_the_secret_in_secrets_manager(
    pool: asyncpg.Pool, moto_s3: EmbeddedS3
) -> None:
    # Given connections whose secrets go to Secrets Manager
    store = store_for(pool, moto_s3.endpoint)
    assert isinstance(store.secrets, AwsSecretsManager)
    prefix = store.secrets.prefix

    # When a connection is created
    created = await store.create(
        owner="o",
        name="c",
        endpoint="http://127.0.0.1:1",
        region="us-east-1",
        access_key="ACCESS",
        secret_key="first-secret-value",
    )

    # Then Secrets Manager holds the secret, and Postgres only its ARN
    name = f"{prefix}{created.id}"
    assert secret_values(moto_s3.endpoint, prefix) == {name: "first-secret-value"}
    row = await pool.fetchrow(
        "SELECT secret_ciphertext, secret_arn FROM connections WHERE id = $1", created.id
    )
    assert row["secret_ciphertext"] is None
    assert row["secret_arn"].startswith("arn:aws:secretsmanager:")
    assert name in row["secret_arn"]
    assert "first-secret-value" not in await row_text(pool, created.id)
    assert (await store.endpoint(created.id)).secret_key == "first-secret-value"

    # When its secret is rotated
    rotated = await store.rotate_secret(
        "o", created.id, access_key="ACCESS2", secret_key="second-secret-value"
    )

    # Then the same secret holds the new value, and the services read the new one
    assert rotated is not None
    assert rotated.access_key == "ACCESS2"
    assert secret_values(moto_s3.endpoint, prefix) == {name: "second-secret-value"}
    assert (await store.endpoint(created.id)).secret_key == "second-secret-value"
    assert "second-secret-value" not in await row_text(pool, created.id)

    # When the connection is deleted
    assert await store.delete("o", created.id)

    # Then so is its secret
    assert secret_values(moto_s3.endpoint, prefix) == {}
    with pytest.raises(ClientError, match="ResourceNotFound"):
        secrets_manager_client(moto_s3.endpoint).get_secret_value(SecretId=row["secret_arn"])


async def test_a_secret_kept_in_postgres_before_the_switch_is_read_then_moved(
    pool: asyncpg.Pool, moto_s3: EmbeddedS3
) -> None:
    # Given a connection saved while secrets were kept in Postgres
    key = Fernet.generate_key().decode()
    before = ConnectionStore(pool, EncryptedColumn(SecretCipher(key)))
    saved = await before.create(
        owner="o",
        name="old",
        endpoint="http://127.0.0.1:1",
        region="us-east-1",
        access_key="ACCESS",
        secret_key="kept-in-postgres",
    )

    # When cstor is switched to Secrets Manager (same application key)
    after = store_for(pool, moto_s3.endpoint, secret_key=key)
    assert isinstance(after.secrets, AwsSecretsManager)

    # Then the old secret is still read, and rotating it moves it to Secrets Manager
    assert (await after.endpoint(saved.id)).secret_key == "kept-in-postgres"
    await after.rotate_secret("o", saved.id, access_key="ACCESS", secret_key="now-in-aws")
    row = await pool.fetchrow(
        "SELECT secret_ciphertext, secret_arn FROM connections WHERE id = $1", saved.id
    )
    assert row["secret_ciphertext"] is None
    assert row["secret_arn"]
    assert secret_values(moto_s3.endpoint, after.secrets.prefix) == {
        f"{after.secrets.prefix}{saved.id}": "now-in-aws"
    }
    # And switching back says plainly where the secret is, rather than failing obscurely
    with pytest.raises(SecretStoreError, match="CSTOR_SECRETS_BACKEND=aws-secrets-manager"):
        await before.endpoint(saved.id)


async def test_an_unreachable_secrets_manager_is_a_clear_error_and_saves_nothing(
    pool: asyncpg.Pool,
) -> None:
    # Given a Secrets Manager endpoint where nothing listens
    store = store_for(pool, f"http://127.0.0.1:{free_port()}")

    # When a connection is created
    with pytest.raises(SecretStoreError) as raised:
        await store.create(
            owner="o",
            name="c",
            endpoint="http://127.0.0.1:1",
            region="us-east-1",
            access_key="ACCESS",
            secret_key="never-stored-secret",
        )

    # Then the error says what happened, is worth retrying, and no connection was saved
    assert "could not be reached" in str(raised.value)
    assert raised.value.transient
    assert "never-stored-secret" not in str(raised.value)
    assert await pool.fetchval("SELECT count(*) FROM connections") == 0


@pytest.fixture
def moto_with_iam() -> Iterator[tuple[EmbeddedS3, str, str]]:
    """A moto_server of its own that checks IAM, and the keys of a user with no permissions."""
    with start_moto(free_port()) as server:
        # From now on moto answers 2 requests unchecked (to make the user and its key).
        httpx.post(f"{server.endpoint}/moto-api/reset-auth", content=b"2").raise_for_status()
        iam = boto3.client(
            "iam",
            endpoint_url=server.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        iam.create_user(UserName="nobody")
        key = iam.create_access_key(UserName="nobody")["AccessKey"]
        yield server, key["AccessKeyId"], key["SecretAccessKey"]


@pytest.mark.parametrize("keys", ["without permission", "unknown"])
async def test_a_refusing_secrets_manager_is_a_clear_error(
    pool: asyncpg.Pool, moto_with_iam: tuple[EmbeddedS3, str, str], keys: str
) -> None:
    # Given keys for Secrets Manager that have no permission, or that it does not know
    server, access_key, secret_key = moto_with_iam
    if keys == "unknown":
        access_key, secret_key = "UNKNOWNKEYID", "unknown-secret"
    store = store_for(
        pool,
        server.endpoint,
        secrets_manager_access_key=access_key,
        secrets_manager_secret_key=secret_key,
    )

    # When a connection is created
    with pytest.raises(SecretStoreError) as raised:
        await store.create(
            owner="o",
            name="c",
            endpoint="http://127.0.0.1:1",
            region="us-east-1",
            access_key="ACCESS",
            secret_key="refused-secret-value",
        )

    # Then the error names the refusal and what to check, and not the secret
    message = str(raised.value)
    assert "refused CreateSecret" in message
    assert "IAM policy" in message
    assert not raised.value.transient
    assert "refused-secret-value" not in message
    assert await pool.fetchval("SELECT count(*) FROM connections") == 0


async def test_rotate_key_re_encrypts_what_postgres_holds_and_says_what_it_leaves(
    pool: asyncpg.Pool, database_url: str, moto_s3: EmbeddedS3
) -> None:
    # Given a connection saved in Postgres under the old key, and one in Secrets Manager
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    details = {"endpoint": "http://127.0.0.1:1", "region": "us-east-1", "access_key": "A"}
    in_postgres = await ConnectionStore(pool, EncryptedColumn(SecretCipher(old))).create(
        owner="o", name="pg", secret_key="secret-in-postgres", **details
    )
    in_aws = await store_for(pool, moto_s3.endpoint, secret_key=old).create(
        owner="o", name="aws", secret_key="secret-in-aws", **details
    )

    # When `cstor rotate-key` runs, set to keep secrets in Secrets Manager, with the new key
    env = {
        **os.environ,
        "CSTOR_SECRET_KEY": f"{new},{old}",
        **{f"CSTOR_{k.upper()}": v for k, v in aws_settings(moto_s3.endpoint).items()},
    }
    result = await asyncio.to_thread(
        run_cstor, "rotate-key", "--database-url", database_url, env=env
    )

    # Then it re-encrypts the one and says why it leaves the other alone
    assert result.returncode == 0, result.stderr
    assert "1 connection secrets are now encrypted with the first key" in result.stdout
    assert "1 connection secrets are kept in AWS Secrets Manager" in result.stdout
    # And the new key alone now reads both
    after = store_for(pool, moto_s3.endpoint, secret_key=new)
    assert (await after.endpoint(in_postgres.id)).secret_key == "secret-in-postgres"
    assert (await after.endpoint(in_aws.id)).secret_key == "secret-in-aws"


def test_an_unknown_secrets_backend_is_named_in_a_plain_error() -> None:
    with pytest.raises(SettingsError, match="'vault' - at CSTOR_SECRETS_BACKEND"):
        Settings.from_env({"CSTOR_SECRETS_BACKEND": "vault"})


async def test_planning_fails_plainly_if_a_secret_is_gone_and_waits_if_unreachable(
    pool: asyncpg.Pool, database_url: str, moto_s3: EmbeddedS3
) -> None:
    # Given a migration requested between two connections whose secrets are in Secrets Manager
    store = store_for(pool, moto_s3.endpoint)
    details = {"endpoint": "http://127.0.0.1:1", "region": "us-east-1", "access_key": "A"}
    source = await store.create(owner="o", name="s", secret_key="planner-secret-1", **details)
    dest = await store.create(owner="o", name="d", secret_key="planner-secret-2", **details)
    app = Migrations(Settings(database_url=database_url).eventsourcing_env())
    request = {
        "name": "m",
        "owner": "o",
        "source_connection_id": uuid.UUID(str(source.id)),  # asyncpg has its own UUID
        "source_bucket": "b",
        "source_prefix": "",
        "destination_connection_id": uuid.UUID(str(dest.id)),
        "destination_bucket": "b",
        "destination_prefix": "",
    }
    limits = PacketLimits(max_bytes=1 << 20, max_objects=10)
    try:
        # When Secrets Manager cannot be reached while it is planned
        unreachable = store_for(pool, f"http://127.0.0.1:{free_port()}")
        waiting = app.request(**request)
        with pytest.raises(bus.TransientError, match="could not be reached"):
            await Planner(app, unreachable, limits).plan(waiting)
        # Then the request is retried later, not failed
        assert app.get(waiting).status == Migration.PLANNING

        # When the source's secret was deleted from Secrets Manager behind cstor's back
        arn = await pool.fetchval("SELECT secret_arn FROM connections WHERE id = $1", source.id)
        secrets_manager_client(moto_s3.endpoint).delete_secret(
            SecretId=arn, ForceDeleteWithoutRecovery=True
        )
        failing = app.request(**request)
        await Planner(app, store, limits).plan(failing)

        # Then the migration fails with a reason that says what to do, and no secret
        migration = app.get(failing)
        assert migration.status == Migration.FAILED
        assert migration.error.startswith("secret-unavailable: ")
        assert "rotate the connection's secret" in migration.error
        assert "planner-secret" not in migration.error
    finally:
        app.close()


# The whole stack ------------------------------------------------------------------------


@pytest.fixture
def cstor(
    database_url: str, nats_url: str, tmp_path: Path, moto_s3: EmbeddedS3, log_format: str
) -> Iterator[RunningCstor]:
    # Secrets in Secrets Manager (moto), so the stack's settings depend on moto's endpoint.
    settings = aws_settings(moto_s3.endpoint)
    yield from start_cstor(database_url, nats_url, tmp_path, log_format=log_format, **settings)


@pytest.mark.parametrize("log_format", LOG_FORMATS)
def test_a_migration_with_secrets_in_secrets_manager_leaves_them_nowhere_else(
    cstor: RunningCstor,
    database_url: str,
    moto_s3: EmbeddedS3,
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    make_bucket: Callable[[EmbeddedS3], str],
) -> None:
    prefix = cstor.settings.secrets_manager_prefix
    # Given two connections, saved by cstor set to keep secrets in Secrets Manager
    source_bucket, dest_bucket = make_bucket(s3_source), make_bucket(s3_destination)
    for n in range(5):
        s3_client_for(s3_source).put_object(Bucket=source_bucket, Key=f"k{n}", Body=b"x" * n)
    source_id = cstor.connect(s3_source, "source")
    dest_id = cstor.connect(s3_destination, "destination")

    # When a migration runs between them, and the source's secret is rotated
    migration_id = cstor.migrate(source_id, source_bucket, dest_id, dest_bucket)
    assert cstor.wait_finished(migration_id)["status"] == "completed"
    rotated = cstor.api.put(
        f"/api/v1/connections/{source_id}/secret", json={"secret_key": s3_source.secret_key}
    )
    assert rotated.status_code == 200, rotated.text

    # Then the objects were copied with the secrets read from Secrets Manager
    listed = s3_client_for(s3_destination).list_objects_v2(Bucket=dest_bucket)
    assert sorted(o["Key"] for o in listed["Contents"]) == [f"k{n}" for n in range(5)]
    assert secret_values(moto_s3.endpoint, prefix) == {
        f"{prefix}{source_id}": s3_source.secret_key,
        f"{prefix}{dest_id}": s3_destination.secret_key,
    }
    sm = secrets_manager_client(moto_s3.endpoint)
    versions = sm.list_secret_version_ids(SecretId=f"{prefix}{source_id}")["Versions"]
    assert len(versions) == 2  # the rotation wrote a new version
    # And Postgres holds only their ARNs
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT secret_ciphertext, secret_arn FROM connections").fetchall()
    assert [ciphertext for ciphertext, _ in rows] == [None, None]
    assert all(arn.startswith("arn:aws:secretsmanager:") for _, arn in rows)

    # And neither secret is anywhere a person or a process could read
    database = every_row_as_text(database_url).encode()
    stream = asyncio.run(every_stream_message(cstor.settings.nats_url, cstor.settings.stream_name))
    logs = every_log_as_text(cstor.settings.data_dir, cstor.settings.log_format).encode()
    answers = b"".join(
        cstor.api.get(path).content
        for path in [
            "/api/v1/connections",
            f"/api/v1/connections/{source_id}",
            f"/api/v1/connections/{source_id}/buckets",
            f"/api/v1/migrations/{migration_id}",
            f"/api/v1/migrations/{migration_id}/report.json",
        ]
    )
    answers += rotated.content
    for secret in (s3_source.secret_key, s3_destination.secret_key):
        for where, text in (
            ("the database", database),
            ("the NATS stream", stream),
            ("the logs", logs),
            ("the API", answers),
        ):
            assert secret.encode() not in text, f"a secret key leaked into {where}"

    # When the finished migration's connections are deleted
    for connection_id in (source_id, dest_id):
        deleted = cstor.api.delete(f"/api/v1/connections/{connection_id}")
        assert deleted.status_code == 204, deleted.text

    # Then so are their secrets
    assert secret_values(moto_s3.endpoint, prefix) == {}


@pytest.fixture
def cstor_without_secrets_manager(
    database_url: str, nats_url: str, tmp_path: Path, log_format: str
) -> Iterator[RunningCstor]:
    settings = aws_settings(f"http://127.0.0.1:{free_port()}")
    yield from start_cstor(database_url, nats_url, tmp_path, log_format=log_format, **settings)


@pytest.mark.parametrize("log_format", LOG_FORMATS)
def test_an_unreachable_secrets_manager_answers_503_with_a_reason(
    cstor_without_secrets_manager: RunningCstor, s3_source: EmbeddedS3
) -> None:
    cstor = cstor_without_secrets_manager
    # When a connection is added while Secrets Manager cannot be reached
    response = cstor.api.post(
        "/api/v1/connections",
        json=connection_body(s3_source, "source"),
    )

    # Then the answer says so as a problem, with no trace and no secret, and nothing is saved
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    detail = response.json()["detail"]
    assert detail.startswith("The connection was not saved: AWS Secrets Manager")
    assert "could not be reached" in detail
    assert "Traceback" not in response.text
    assert s3_source.secret_key not in response.text
    assert cstor.api.get("/api/v1/connections").json() == []
    logs = every_log_as_text(cstor.settings.data_dir, cstor.settings.log_format).encode()
    assert s3_source.secret_key.encode() not in logs
