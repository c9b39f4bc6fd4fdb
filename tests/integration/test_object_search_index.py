"""The object search by key prefix reads only the keys under the prefix, whatever the
database's collation (Postgres in a container defaults to a language's, not "C")."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import psycopg
import pytest
from psycopg import sql

from cstor.store.migrations import migrate
from cstor.store.pool import create_pool
from launcher.embedded import EmbeddedPostgres
from services.api.queries import ReadModels

OBJECTS = 20_000


@pytest.fixture
async def language_collated_pool(
    embedded_postgres: EmbeddedPostgres,
) -> AsyncIterator[asyncpg.Pool]:
    """A pool on a new database whose default collation is not "C" (as en_US.utf8 is not)."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(embedded_postgres.url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE template0 LOCALE 'C.utf8'").format(
                sql.Identifier(name)
            )
        )
    pool = await create_pool(embedded_postgres.url_for(name), min_size=1, max_size=2)
    try:
        yield pool
    finally:
        await pool.close()
        with psycopg.connect(embedded_postgres.url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


# objects_view as it was made before its keys were collated as bytes.
OLD_OBJECTS_VIEW = """
CREATE TABLE objects_view (
    id uuid PRIMARY KEY, migration_id uuid NOT NULL, key text NOT NULL, status text NOT NULL,
    size bigint NOT NULL, etag text NOT NULL, checksum text NOT NULL DEFAULT '',
    error text NOT NULL DEFAULT '', reason text NOT NULL DEFAULT '',
    attempts integer NOT NULL DEFAULT 0, version integer NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX objects_view_by_key ON objects_view (migration_id, key);
"""


@pytest.mark.parametrize("made", ["new", "before"])
async def test_a_prefix_search_reads_only_the_keys_under_the_prefix(
    language_collated_pool: asyncpg.Pool, made: str
) -> None:
    # Given a migration of 20,000 objects, in a database collated by language, whose
    # read models are new or were made by an older cstor
    pool = language_collated_pool
    if made == "before":
        await pool.execute(OLD_OBJECTS_VIEW)
    await migrate(pool)
    migration_id = uuid.uuid4()
    now = datetime.now(UTC)
    await pool.copy_records_to_table(
        "objects_view",
        records=[
            (uuid.uuid4(), migration_id, f"{n % 100:02d}/img-{n:06d}", "copied", 1, "e", 1, now)
            for n in range(OBJECTS)
        ],
        columns=["id", "migration_id", "key", "status", "size", "etag", "version", "updated_at"],
    )
    await pool.execute("ANALYZE objects_view")

    # When the api searches near the end of the keys
    page = await ReadModels(pool).objects(migration_id, prefix="97/", limit=100)
    plan = "\n".join(
        row[0]
        for row in await pool.fetch(
            "EXPLAIN (ANALYZE) SELECT key FROM objects_view"
            " WHERE migration_id = $1 AND starts_with(key, $2) ORDER BY key LIMIT 101",
            migration_id,
            "97/",
        )
    )

    # Then it finds them in S3's order (bytes), reading the index from the prefix on
    # rather than every key before it
    assert [o.key for o in page.items] == sorted(
        (f"97/img-{n:06d}" for n in range(97, OBJECTS, 100)), key=str.encode
    )[:100]
    assert "Rows Removed by Filter" not in plan, plan
