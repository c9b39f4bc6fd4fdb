"""Migration 1: the schema as cstor made it before numbered migrations (commit 7683ca0).

Until then each module created its own tables with ``CREATE ... IF NOT EXISTS`` and
added later columns with ``ADD COLUMN IF NOT EXISTS``; this is all of that, in the order
the tables refer to each other. Every statement is idempotent, so a database made by that
version takes it as a no-op (or as the upgrades it had not had yet) and is then recorded
at migration 1 like a new one. Frozen: a change to the schema is a new migration in
`cstor.store.migrations`, never an edit here.
"""

from __future__ import annotations

# Users, sessions, API tokens and sign-in throttling (cstor.accounts).
ACCOUNTS = """
CREATE TABLE IF NOT EXISTS users (
    id uuid PRIMARY KEY,
    email text NOT NULL UNIQUE,
    password_hash text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS sessions (
    digest bytea PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS api_tokens (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name text NOT NULL,
    digest bytea NOT NULL UNIQUE,
    hint text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz
);
CREATE INDEX IF NOT EXISTS api_tokens_user ON api_tokens (user_id, created_at);
CREATE TABLE IF NOT EXISTS sign_in_failures (
    subject text NOT NULL,
    failed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS sign_in_failures_subject ON sign_in_failures (subject, failed_at);
CREATE TABLE IF NOT EXISTS session_flashes (
    session_digest bytea PRIMARY KEY REFERENCES sessions (digest) ON DELETE CASCADE,
    sealed bytea NOT NULL,
    expires_at timestamptz NOT NULL
);
"""

# A session or token ended is announced to the api's workers (services.api.credential_cache).
CREDENTIAL_TRIGGERS = """
CREATE OR REPLACE FUNCTION cstor_credential_ended() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('cstor_credentials_ended', encode(OLD.digest, 'hex'));
    RETURN NULL;
END
$$;
CREATE OR REPLACE TRIGGER sessions_ended AFTER DELETE OR UPDATE OF digest, user_id, expires_at
    ON sessions FOR EACH ROW EXECUTE FUNCTION cstor_credential_ended();
CREATE OR REPLACE TRIGGER api_tokens_ended AFTER DELETE OR UPDATE OF digest, user_id
    ON api_tokens FOR EACH ROW EXECUTE FUNCTION cstor_credential_ended();
"""

# Saved connections; the secret is the secret store's (cstor.store.connections).
CONNECTIONS = """
CREATE TABLE IF NOT EXISTS connections (
    id uuid PRIMARY KEY,
    owner text NOT NULL,
    name text NOT NULL,
    endpoint text NOT NULL,
    region text NOT NULL,
    access_key text NOT NULL,
    secret_ciphertext bytea,
    secret_arn text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS connections_owner ON connections (owner, created_at);
-- Tables made before secrets could be kept in AWS Secrets Manager.
ALTER TABLE connections ADD COLUMN IF NOT EXISTS secret_arn text;
ALTER TABLE connections ALTER COLUMN secret_ciphertext DROP NOT NULL;
"""

# The projector's read models and its position (cstor.readmodel).
READ_MODELS = """
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

# Events a consumer gave up on, and failures still being retried (cstor.store.deadletters).
DEAD_LETTERS = """
CREATE TABLE IF NOT EXISTS dead_letters (
    consumer text NOT NULL,
    event_id uuid NOT NULL,
    -- NULL for an event found failing by rebuild-read-models, which reads the store
    stream_sequence bigint,
    position bigint NOT NULL,  -- in the event store's notification log
    subject text NOT NULL,
    event_type text NOT NULL,
    migration_id uuid NOT NULL,
    event text NOT NULL,  -- the JSON of the stream; text, since jsonb refuses \\u0000
    error text NOT NULL,
    failures integer NOT NULL,
    first_failed_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL,
    PRIMARY KEY (consumer, event_id)
);
CREATE INDEX IF NOT EXISTS dead_letters_by_time ON dead_letters (recorded_at DESC);

-- Failures of messages still being retried by the consumers that ack each message; a
-- message's count is shared by the replicas it is redelivered to.
CREATE TABLE IF NOT EXISTS delivery_failures (
    consumer text NOT NULL,
    stream_sequence bigint NOT NULL,
    failures integer NOT NULL,
    first_failed_at timestamptz NOT NULL,
    PRIMARY KEY (consumer, stream_sequence)
);
"""

# Where the outbox relay has published up to (cstor.store.relay).
RELAY = """
CREATE TABLE IF NOT EXISTS relay_position (
    name text PRIMARY KEY,
    position bigint NOT NULL
);
"""

# The transfer's open multipart uploads (services.transfer.journal).
TRANSFER_UPLOADS = """
CREATE TABLE IF NOT EXISTS transfer_uploads (
    object_id text PRIMARY KEY,
    bucket text NOT NULL,
    key text NOT NULL,
    upload_id text NOT NULL,
    part_size bigint NOT NULL,
    source_etag text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE transfer_uploads ADD COLUMN IF NOT EXISTS checksum_algorithm text NOT NULL DEFAULT '';
CREATE TABLE IF NOT EXISTS transfer_upload_parts (
    object_id text NOT NULL REFERENCES transfer_uploads ON DELETE CASCADE,
    number integer NOT NULL,
    md5 text NOT NULL,
    PRIMARY KEY (object_id, number)
);
"""

# Each limited migration's shared token bucket (services.transfer.limits).
TRANSFER_BANDWIDTH = """
CREATE TABLE IF NOT EXISTS transfer_bandwidth (
    migration_id uuid PRIMARY KEY,
    paid_until timestamptz NOT NULL
);
"""

SQL = "\n".join(
    [
        ACCOUNTS,
        CREDENTIAL_TRIGGERS,
        CONNECTIONS,
        READ_MODELS,
        DEAD_LETTERS,
        RELAY,
        TRANSFER_UPLOADS,
        TRANSFER_BANDWIDTH,
    ]
)
