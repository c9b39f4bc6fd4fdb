"""The CSV report opens safely in a spreadsheet: a text cell that would run as a formula
(it starts with =, +, -, @, a tab or a carriage return) gets a leading ', as OWASP
advises; the JSON report keeps every value exact."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest
from cryptography.fernet import Fernet
from litestar.testing import AsyncTestClient

from cstor.settings import Settings
from launcher.embedded import EmbeddedS3
from services.api.app import create_app
from tests.readmodel_rows import record_migration
from tests.sessions import sign_up
from tests.stack import RunningCstor, s3_client_for

# Keys a spreadsheet would run, as both kinds of S3 server keep them: rclone serve s3
# stores keys as file names; moto keeps any key, tabs and carriage returns too.
FORMULA_KEYS_RCLONE = ["=1+1.txt", "+x", "-y", "@z", "=cmd|' /C calc'!A0"]
FORMULA_KEYS_MOTO = ["\tx=1+1", "\r=2+2"]
PLAIN_KEYS = ["plain.txt", "a=b.txt", "x-y@z"]  # a formula sign inside a key is harmless


def csv_rows(cstor: RunningCstor, migration_id: str) -> list[dict[str, str]]:
    response = cstor.api.get(f"/api/v1/migrations/{migration_id}/report.csv")
    assert response.status_code == 200, response.text
    return list(csv.DictReader(io.StringIO(response.text, newline="")))


def json_rows(cstor: RunningCstor, migration_id: str) -> list[dict[str, Any]]:
    response = cstor.api.get(f"/api/v1/migrations/{migration_id}/report.json")
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()
    return rows


def migrate_keys(cstor: RunningCstor, server: EmbeddedS3, dest: EmbeddedS3, keys: list[str],
                 make_bucket: Callable[[EmbeddedS3], str]) -> str:  # fmt: skip
    """Put one object per key on ``server``, migrate them to ``dest``; the migration id."""
    source_bucket, dest_bucket = make_bucket(server), make_bucket(dest)
    for key in keys:
        s3_client_for(server).put_object(Bucket=source_bucket, Key=key, Body=key.encode())
    migration_id = cstor.migrate(
        cstor.connect(server, "source"), source_bucket, cstor.connect(dest, "dest"), dest_bucket
    )
    state = cstor.wait_finished(migration_id)
    assert state["status"] == "completed", state
    assert state["objects_copied"] == len(keys), state
    return migration_id


def test_keys_that_are_formulas_are_text_in_the_csv_and_exact_in_the_json(
    cstor: RunningCstor,
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    moto_s3: EmbeddedS3,
    make_bucket: Callable[[EmbeddedS3], str],
) -> None:
    # Given objects whose keys a spreadsheet would run, migrated between real S3 servers
    on_rclone = migrate_keys(
        cstor, s3_source, s3_destination, FORMULA_KEYS_RCLONE + PLAIN_KEYS, make_bucket
    )
    on_moto = migrate_keys(cstor, moto_s3, moto_s3, FORMULA_KEYS_MOTO, make_bucket)

    for migration_id, keys in ((on_rclone, FORMULA_KEYS_RCLONE), (on_moto, FORMULA_KEYS_MOTO)):
        # When the CSV report is downloaded
        rows = csv_rows(cstor, migration_id)

        # Then each such key starts with a ' and reads as text, the rest as they are
        reported = {row["key"] for row in rows}
        assert {"'" + key for key in keys} <= reported
        assert not any(row["key"].startswith(("=", "+", "-", "@", "\t", "\r")) for row in rows)
        assert all(row["status"] == "copied" for row in rows)
        # And every checksum is still the checksum, a number still a number
        assert all(row["checksum"].startswith("md5:") for row in rows)
        assert all(row["size"].isdigit() for row in rows)

        # And the JSON report gives the keys exactly as the store holds them
        assert {row["key"] for row in json_rows(cstor, migration_id)} >= set(keys)

    assert {row["key"] for row in csv_rows(cstor, on_rclone)} >= set(PLAIN_KEYS)


@pytest.fixture
async def client(database_url: str, nats_url: str) -> AsyncIterator[AsyncTestClient[Any]]:
    settings = Settings(
        database_url=database_url, nats_url=nats_url, secret_key=Fernet.generate_key().decode()
    )
    async with AsyncTestClient(app=create_app(settings)) as client:
        await sign_up(client)
        yield client


async def test_every_text_column_is_made_safe_not_only_the_key(
    client: AsyncTestClient[Any], database_url: str
) -> None:
    # Given a failed object whose error, reason and checksum (as a store might word them)
    # start with formula signs, in the read model the projector writes
    owner = str((await client.get("/api/v1/me")).json()["id"])
    migration_id = await record_migration(database_url, owner, status="failed")
    error, reason, checksum = '=HYPERLINK("http://127.0.0.1/","x")', "@SUM(A1)", "-1+2"
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "INSERT INTO objects_view (id, migration_id, key, status, size, etag, checksum,"
            " error, reason, version, updated_at)"
            " VALUES ($1, $2, '+key', 'failed', 5, '', $3, $4, $5, 1, now())",
            uuid.uuid4(), migration_id, checksum, error, reason,
        )  # fmt: skip
    finally:
        await conn.close()

    # When both reports are downloaded
    response = await client.get(f"/api/v1/migrations/{migration_id}/report.csv")
    (row,) = csv.DictReader(io.StringIO(response.text))
    (exact,) = (await client.get(f"/api/v1/migrations/{migration_id}/report.json")).json()

    # Then every text cell of the CSV is text, and the JSON is exact
    assert (row["key"], row["error"], row["reason"], row["checksum"]) == (
        "'+key", "'" + error, "'" + reason, "'" + checksum,
    )  # fmt: skip
    assert (row["status"], row["size"]) == ("failed", "5")
    assert (exact["key"], exact["error"], exact["reason"], exact["checksum"]) == (
        "+key", error, reason, checksum,
    )  # fmt: skip
