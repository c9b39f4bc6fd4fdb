"""One schema, migrated at start by whichever process comes first (cstor.store.migrations)."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import psycopg
import pytest
from cryptography.fernet import Fernet

from cstor.settings import Settings
from cstor.store import baseline
from cstor.store.migrations import MIGRATIONS, migrate
from launcher.embedded import EmbeddedNats
from launcher.stack import ServiceProcesses

# Every table cstor reads or writes, the event store's too.
TABLES = {
    "api_tokens",
    "connections",
    "cstor_events",
    "dead_letters",
    "delivery_failures",
    "migrations_view",
    "objects_view",
    "projector_position",
    "relay_position",
    "schema_migrations",
    "session_flashes",
    "sessions",
    "sign_in_failures",
    "throughput_view",
    "transfer_bandwidth",
    "transfer_upload_parts",
    "transfer_uploads",
    "users",
}
TRIGGERS = {"api_tokens_ended", "migrations_view_changed", "sessions_ended"}

# Tables as a cstor from before some of the ADD COLUMNs made them.
OLDER_TABLES = """
CREATE TABLE connections (
    id uuid PRIMARY KEY,
    owner text NOT NULL,
    name text NOT NULL,
    endpoint text NOT NULL,
    region text NOT NULL,
    access_key text NOT NULL,
    secret_ciphertext bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE transfer_uploads (
    object_id text PRIMARY KEY,
    bucket text NOT NULL,
    key text NOT NULL,
    upload_id text NOT NULL,
    part_size bigint NOT NULL,
    source_etag text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO connections (id, owner, name, endpoint, region, access_key, secret_ciphertext)
VALUES ('00000000-0000-0000-0000-000000000001', 'someone', 'old', 'http://127.0.0.1:1',
        'us-east-1', 'AKEY', '\\x00');
INSERT INTO transfer_uploads (object_id, bucket, key, upload_id, part_size, source_etag)
VALUES ('o1', 'b', 'k', 'u1', 5242880, 'e');
"""


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    yield pool
    await pool.close()


async def tables(pool: asyncpg.Pool) -> set[str]:
    rows = await pool.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {row["tablename"] for row in rows}


async def triggers(pool: asyncpg.Pool) -> set[str]:
    rows = await pool.fetch("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")
    return {row["tgname"] for row in rows}


async def ledger(pool: asyncpg.Pool) -> list[int]:
    rows = await pool.fetch("SELECT number FROM schema_migrations ORDER BY number")
    return [row["number"] for row in rows]


def test_the_migrations_are_numbered_one_after_another() -> None:
    assert [m.number for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    assert all(m.description and m.sql.strip() for m in MIGRATIONS)


async def test_a_new_database_gets_every_table_and_a_second_run_changes_nothing(
    pool: asyncpg.Pool,
) -> None:
    # Given an empty database
    assert await tables(pool) == set()

    # When it is migrated, then migrated again
    first = await migrate(pool)
    second = await migrate(pool)

    # Then the first run applied every migration, and made every table and trigger
    assert first == [m.number for m in MIGRATIONS]
    assert await tables(pool) == TABLES
    assert await triggers(pool) >= TRIGGERS
    # And the second found them all recorded and applied nothing
    assert second == []
    assert await ledger(pool) == first


async def test_processes_migrating_at_once_apply_each_migration_once(database_url: str) -> None:
    # Given five processes' pools on one empty database
    pools = [await asyncpg.create_pool(database_url, min_size=1, max_size=1) for _ in range(5)]
    try:
        # When they all migrate at the same moment
        applied = await asyncio.gather(*(migrate(p) for p in pools))

        # Then one applied every migration, the others none, and each is recorded once
        assert sorted(applied, key=len) == [[]] * 4 + [[m.number for m in MIGRATIONS]]
        assert await ledger(pools[0]) == [m.number for m in MIGRATIONS]
        assert await tables(pools[0]) == TABLES
    finally:
        for p in pools:
            await p.close()


async def test_a_database_made_before_numbered_migrations_upgrades(pool: asyncpg.Pool) -> None:
    # Given a database made by a cstor from before numbered migrations: the landed schema
    # (7683ca0) with no ledger, over tables older still, holding rows
    await pool.execute(OLDER_TABLES)
    await pool.execute(baseline.SQL)
    await pool.execute("DROP TABLE transfer_bandwidth")  # as if that cstor predated it too

    # When it is migrated
    applied = await migrate(pool)

    # Then migration 1 was recorded as applied, and every table is there
    assert applied == [m.number for m in MIGRATIONS]
    assert await tables(pool) == TABLES
    # And the older tables have their later columns, with the rows they held
    row = await pool.fetchrow("SELECT secret_arn, secret_ciphertext FROM connections")
    assert row is not None
    assert row["secret_arn"] is None
    assert row["secret_ciphertext"] == b"\x00"
    nullable = await pool.fetchval(
        "SELECT is_nullable FROM information_schema.columns"
        " WHERE table_name = 'connections' AND column_name = 'secret_ciphertext'"
    )
    assert nullable == "YES"
    assert await pool.fetchval("SELECT checksum_algorithm FROM transfer_uploads") == ""
    # And migrating again changes nothing
    assert await migrate(pool) == []


@pytest.mark.parametrize("service", ["planner", "transfer", "projector"])
def test_any_one_service_started_alone_makes_every_table(
    service: str, database_url: str, nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    # Given an empty database, and only one service (not the api) started on it
    settings = Settings(
        database_url=database_url,
        nats_url=nats_server.url,
        data_dir=tmp_path,
        secret_key=Fernet.generate_key().decode(),
    )
    processes = ServiceProcesses(settings)
    process = processes.start_one(service, service)
    try:
        # When it has started
        found = _wait_for_ledger(database_url, process, tmp_path / "logs" / f"{service}.log")
    finally:
        processes.stop()

    # Then every table the others read is there, the event store's too, and the
    # connections, which only the api made before
    assert found >= TABLES


def _wait_for_ledger(database_url: str, process: subprocess.Popen[bytes], log: Path) -> set[str]:
    """The database's tables once every migration is recorded (30 s at most)."""
    deadline = time.monotonic() + 30
    with psycopg.connect(database_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"the service exited:\n{log.read_text()[-3000:]}")
            if conn.execute("SELECT to_regclass('schema_migrations')").fetchone() != (None,):
                count = conn.execute("SELECT count(*) FROM schema_migrations").fetchone()
                if count == (len(MIGRATIONS),):
                    rows = conn.execute(
                        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                    ).fetchall()
                    return {row[0] for row in rows}
            time.sleep(0.2)
    pytest.fail(f"no migration recorded within 30 s:\n{log.read_text()[-3000:]}")
