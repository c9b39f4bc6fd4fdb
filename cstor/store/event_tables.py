"""Migration 2: the event store's tables, as the eventsourcing library (9.5) makes them.

Until then the library created them when each process's application started, under the
session advisory lock `locks.EVENT_STORE_SCHEMA` (concurrent ``CREATE TABLE IF NOT
EXISTS`` can still collide). They are made here instead, with the library's own
statements, so that `cstor.store.migrations` alone makes the schema and the application
starts with ``CREATE_TABLE`` off. A database made by the landed version has them all, and
takes this as a no-op. The lock is taken here too, for its transaction, so that a process
of the older kind starting at the same moment still takes turns. Frozen, like
`cstor.store.baseline`.
"""

from __future__ import annotations

from cstor.store import locks

LOCK = f"SELECT pg_advisory_xact_lock({locks.EVENT_STORE_SCHEMA});"

TABLES = """
CREATE TABLE IF NOT EXISTS "public"."cstor_events" (
    originator_id "uuid" NOT NULL,
    originator_version bigint NOT NULL,
    topic text,
    state bytea,
    notification_id bigserial,
    PRIMARY KEY (originator_id, originator_version)
) WITH (
    autovacuum_enabled = true,
    autovacuum_vacuum_threshold = 100000000,
    autovacuum_vacuum_scale_factor = 0.5,
    autovacuum_analyze_threshold = 1000,
    autovacuum_analyze_scale_factor = 0.01
);
DO $$ BEGIN
    CREATE TYPE "public"."stored_event_uuid"
        AS (originator_id "uuid", originator_version bigint, topic text, state bytea);
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;
CREATE UNIQUE INDEX IF NOT EXISTS "cstor_events_notification_id_idx"
    ON "public"."cstor_events" (notification_id ASC);
"""

# The library's function for its own inserts (POSTGRES_ENABLE_DB_FUNCTIONS, off here), in
# its own words to the space, so that a database made either way holds the same.
FUNCTION = (
    'CREATE OR REPLACE FUNCTION "public"."es_insert_events_uuid"'
    '(events "public"."stored_event_uuid"[]) RETURNS SETOF bigint LANGUAGE plpgsql AS '
    "$BODY$BEGIN    SET LOCAL lock_timeout = '30s';    NOTIFY \"cstor_events\";    RETURN QUERY"
    '    INSERT INTO "public"."cstor_events" AS t (    originator_id, originator_version,'
    " topic, state)    SELECT originator_id, originator_version, topic, state    FROM"
    " unnest(events)    RETURNING notification_id;END;$BODY$;"
)

SQL = LOCK + TABLES + FUNCTION
