"""One schema, migrated at start by whichever process comes first (cstor.store.migrations)."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import UUID

import asyncpg
import nats
import psycopg
import pytest
from cryptography.fernet import Fernet
from eventsourcing.persistence import ProgrammingError
from nats.js.errors import NotFoundError
from psycopg import sql

from cstor.app.migrations import Migrations
from cstor.settings import Settings
from cstor.store import baseline
from cstor.store.migrations import MIGRATIONS, migrate
from launcher.embedded import EmbeddedNats, EmbeddedPostgres
from launcher.stack import ServiceProcesses
from tests.stack import create_database

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


# The event store's shape, as the catalog has it: columns, indexes, storage options, the
# composite type and the function the library makes beside its table.
EVENT_STORE_SHAPE = (
    "SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns"
    " WHERE table_name = 'cstor_events' ORDER BY ordinal_position",
    "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'cstor_events' ORDER BY 1",
    "SELECT reloptions FROM pg_class WHERE relname = 'cstor_events'",
    "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
    " WHERE attrelid = 'stored_event_uuid'::regclass ORDER BY attnum",
    "SELECT proname, prosrc FROM pg_proc WHERE proname = 'es_insert_events_uuid'",
)


def library_made(database_url: str) -> Migrations:
    """The application as the landed cstor opened it: the library making its tables."""
    env = Settings(database_url=database_url).eventsourcing_env() | {"CREATE_TABLE": "yes"}
    return Migrations(env)


def event_store_shape(database_url: str) -> list[list[tuple[object, ...]]]:
    with psycopg.connect(database_url) as conn:
        return [conn.execute(query).fetchall() for query in EVENT_STORE_SHAPE]


def request(app: Migrations, name: str) -> UUID:
    return app.request(
        name=name, owner="o", source_connection_id=uuid.uuid4(), source_bucket="a",
        source_prefix="", destination_connection_id=uuid.uuid4(), destination_bucket="b",
        destination_prefix="",
    )  # fmt: skip


async def test_the_event_store_is_made_as_the_library_makes_it(
    pool: asyncpg.Pool, database_url: str, embedded_postgres: EmbeddedPostgres
) -> None:
    # Given one database migrated, and another whose event store the library made
    await migrate(pool)
    other = create_database(embedded_postgres)
    try:
        library_made(other).close()

        # Then the two event stores are alike, down to the catalog
        migrated, made = event_store_shape(database_url), event_store_shape(other)
        assert all(migrated), "every part of the event store is there"
        assert migrated == made
    finally:
        with psycopg.connect(embedded_postgres.url, autocommit=True) as conn:
            name = other.rsplit("/", 1)[1]
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


_LANDED_LEDGER = (
    baseline.SQL
    + """
CREATE TABLE schema_migrations (
    number integer PRIMARY KEY,
    description text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO schema_migrations (number, description)
VALUES (1, 'the schema as it was before numbered migrations');
"""
)


async def test_an_event_store_the_library_made_upgrades_with_its_events(
    pool: asyncpg.Pool, database_url: str
) -> None:
    # Given a database of the landed cstor: migration 1 recorded, and an event store the
    # library made at start, holding a migration
    await pool.execute(_LANDED_LEDGER)
    landed = library_made(database_url)
    try:
        kept = request(landed, "kept")
    finally:
        landed.close()

    # When it is migrated
    applied = await migrate(pool)

    # Then only the event store's migration was applied, over what was there
    assert applied == [2]
    # And today's application, which makes no tables, reads the old migration and writes
    app = Migrations(Settings(database_url=database_url).eventsourcing_env())
    try:
        assert app.get(kept).name == "kept"
        added = request(app, "added")
        assert app.get(added).name == "added"
    finally:
        app.close()


def test_the_application_does_not_make_the_event_store(database_url: str) -> None:
    # Given an empty database, not migrated
    # When today's application is opened on it and asked for its events
    app = Migrations(Settings(database_url=database_url).eventsourcing_env())
    try:
        with pytest.raises(ProgrammingError, match="cstor_events"):
            app.notifications(0, 10)
    finally:
        app.close()

    # Then it made no table: the schema is the migrations' alone
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT to_regclass('cstor_events')").fetchone() == (None,)


SERVICE_CONSUMERS = {
    "planner": {"planner", "planner-completion"},
    "transfer": {"transfer"},
    "projector": {"projector"},
}


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
    log = tmp_path / "logs" / f"{service}.log"
    try:
        # When it has started
        found = _wait_for_ledger(database_url, process, log)
        # Then it goes on to consume the stream, its event store open: nothing else had
        # to start before it
        _wait_for_consumers(nats_server.url, SERVICE_CONSUMERS[service], process, log)
    finally:
        processes.stop()

    # And every table the others read is there, the event store's too, and the
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


def _wait_for_consumers(
    nats_url: str, durables: set[str], process: subprocess.Popen[bytes], log: Path
) -> None:
    """Wait until the stream has the service's durable consumers (30 s at most)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the service exited:\n{log.read_text()[-3000:]}")
        if durables <= asyncio.run(_consumers(nats_url)):
            return
        time.sleep(0.2)
    pytest.fail(f"no consumer {sorted(durables)} within 30 s:\n{log.read_text()[-3000:]}")


async def _consumers(nats_url: str) -> set[str]:
    nc = await nats.connect(nats_url)
    try:
        return {info.name for info in await nc.jetstream().consumers_info("CSTOR")}
    except NotFoundError:
        return set()
    finally:
        await nc.close()
