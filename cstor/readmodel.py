"""The read models' tables: built by the projector from events, read by the api."""

from __future__ import annotations

from typing import Any

import asyncpg


class _PooledConnection(asyncpg.Connection):  # type: ignore[misc]
    """A pooled connection given back as it is: no session state to reset.

    Code on pooled connections takes only transaction-scoped advisory locks and sets no
    session variables, LISTENs on none (the relay and the slots have connections of their
    own), and asyncpg still ends any open transaction on release. The reset query it
    would send instead (``RESET ALL``, ``UNLISTEN *``, ...) was one more round trip to
    Postgres for every query the api answers.
    """

    def get_reset_query(self) -> str:
        return ""


async def create_pool(database_url: str, **options: Any) -> asyncpg.Pool:
    """A connection pool for the services' own queries (see `_PooledConnection`)."""
    return await asyncpg.create_pool(database_url, connection_class=_PooledConnection, **options)


SCHEMA = """
CREATE TABLE IF NOT EXISTS migrations_view (
    id uuid PRIMARY KEY,
    owner text NOT NULL,
    name text NOT NULL,
    status text NOT NULL,
    source_connection_id uuid NOT NULL,
    source_bucket text NOT NULL,
    source_prefix text NOT NULL,
    destination_connection_id uuid NOT NULL,
    destination_bucket text NOT NULL,
    destination_prefix text NOT NULL,
    planning_done boolean NOT NULL DEFAULT false,
    packets_planned integer NOT NULL DEFAULT 0,
    packets_transferred integer NOT NULL DEFAULT 0,
    objects_planned bigint NOT NULL DEFAULT 0,
    bytes_planned bigint NOT NULL DEFAULT 0,
    objects_copied bigint NOT NULL DEFAULT 0,
    bytes_copied bigint NOT NULL DEFAULT 0,
    objects_failed bigint NOT NULL DEFAULT 0,
    objects_skipped bigint NOT NULL DEFAULT 0,
    bytes_skipped bigint NOT NULL DEFAULT 0,
    overwrite text NOT NULL DEFAULT 'if-different',
    sync_of uuid,
    error text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL,
    started_at timestamptz,
    finished_at timestamptz,
    updated_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS migrations_view_owner ON migrations_view (owner, created_at DESC);
ALTER TABLE migrations_view ADD COLUMN IF NOT EXISTS storage_class text;
ALTER TABLE migrations_view ADD COLUMN IF NOT EXISTS bandwidth_bytes_per_second bigint;
ALTER TABLE migrations_view ADD COLUMN IF NOT EXISTS concurrent_objects integer;

CREATE TABLE IF NOT EXISTS objects_view (
    id uuid PRIMARY KEY,
    migration_id uuid NOT NULL,
    key text COLLATE "C" NOT NULL,
    status text NOT NULL,
    size bigint NOT NULL,
    etag text NOT NULL,
    checksum text NOT NULL DEFAULT '',
    error text NOT NULL DEFAULT '',
    reason text NOT NULL DEFAULT '',
    attempts integer NOT NULL DEFAULT 0,
    version integer NOT NULL,
    updated_at timestamptz NOT NULL
);
-- Keys compare as bytes, as S3 orders them: a prefix is then a range of the index. Under a
-- language's collation (a container's Postgres defaults to en_US.utf8) the object search
-- by prefix read every key of the migration before the prefix. A table made before this
-- is changed once (its indexes rebuilt).
DO $$
BEGIN
    IF (SELECT c.collname FROM pg_attribute a JOIN pg_collation c ON c.oid = a.attcollation
        WHERE a.attrelid = 'objects_view'::regclass AND a.attname = 'key') <> 'C' THEN
        ALTER TABLE objects_view ALTER COLUMN key TYPE text COLLATE "C";
    END IF;
END
$$;
CREATE INDEX IF NOT EXISTS objects_view_by_key ON objects_view (migration_id, key);
CREATE INDEX IF NOT EXISTS objects_view_by_status ON objects_view (migration_id, status, key);

-- Bytes copied by each migration per span of time (a second, a minute, an hour), kept
-- by the projector for the throughput chart, which reads the coarsest spans that still
-- fill its bins: never a migration's objects, and a few thousand rows at most. Made once;
-- a database older than it is filled from the copied objects' times.
DO $$
BEGIN
    IF to_regclass('throughput_view') IS NULL THEN
        CREATE TABLE throughput_view (
            migration_id uuid NOT NULL,
            span integer NOT NULL,  -- seconds: one of THROUGHPUT_SPANS
            second bigint NOT NULL,  -- when the span starts, in seconds since the epoch
            bytes bigint NOT NULL,
            PRIMARY KEY (migration_id, span, second)
        );
        INSERT INTO throughput_view (migration_id, span, second, bytes)
        SELECT migration_id, span,
            floor(extract(epoch FROM updated_at) / span)::bigint * span, sum(size)
        FROM objects_view, unnest(ARRAY[1, 60, 3600]) AS span
        WHERE status = 'copied' GROUP BY 1, 2, 3;
    END IF;
END
$$;

-- Each change to a migration's row is announced, so that the api's workers, which
-- remember rows for a moment (services.api.cache), forget the old one at once.
CREATE OR REPLACE FUNCTION cstor_migration_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('cstor_migration_changed', (CASE TG_OP WHEN 'DELETE' THEN OLD.id
        ELSE NEW.id END)::text);
    RETURN NULL;
END
$$;
CREATE OR REPLACE TRIGGER migrations_view_changed AFTER UPDATE OR DELETE ON migrations_view
    FOR EACH ROW EXECUTE FUNCTION cstor_migration_changed();

CREATE TABLE IF NOT EXISTS projector_position (
    name text PRIMARY KEY,
    position bigint NOT NULL
);
"""

MIGRATION_CHANGED = "cstor_migration_changed"
"""The NOTIFY channel naming each migration whose row changed (or went)."""

THROUGHPUT_SPANS = (1, 60, 3600)
"""The spans of time, in seconds, the throughput series is kept in (see throughput_view)."""


async def create_schema(pool: asyncpg.Pool) -> None:
    """Create the read-model tables if they are missing (every service may call this)."""
    # Several services start at once; serialise their CREATE IF NOT EXISTS.
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(7366537)")
        await conn.execute(SCHEMA)
