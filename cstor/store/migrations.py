"""cstor's schema, as one ordered list of numbered migrations applied at start.

Every process that uses the database (the api, planner, transfer and projector, and the
``rebuild-read-models`` and ``rotate-key`` commands) calls `migrate` before anything
else, so whichever starts first on an empty database makes every table the others read:
start order does not matter. The migrations are applied in one transaction under one
transaction-scoped advisory lock (`locks.SCHEMA_MIGRATIONS`): processes starting together
take turns, the later ones find everything recorded in ``schema_migrations`` and apply
nothing, and a migration that fails leaves the schema as it was. Nothing else in cstor
runs DDL.

The eventsourcing library's own tables (its stored events and their notification log)
are migration 2, in the library's own words (`cstor.store.event_tables`): the library
does not create them at start (``CREATE_TABLE`` is off in
`cstor.settings.Settings.eventsourcing_env`), so the application can only be started on a
migrated database.

To change the schema, append a `Migration` with the next number; never edit or reorder
one that has shipped, since databases have recorded it as applied.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import asyncpg

from cstor.store import baseline, event_tables, locks

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Migration:
    """One change to the schema: applied once per database, in order of `number`."""

    number: int
    description: str
    sql: str


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "the schema as it was before numbered migrations", baseline.SQL),
    Migration(2, "the event store's tables, made by the library before", event_tables.SQL),
)

_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    number integer PRIMARY KEY,
    description text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


async def migrate(pool: asyncpg.Pool) -> list[int]:
    """Apply the migrations this database has not had yet; their numbers, in order."""
    async with pool.acquire() as conn:
        return await migrate_connection(conn)


async def migrate_url(database_url: str) -> list[int]:
    """`migrate` on a connection of its own, for a process that has no pool (a bench, the
    api's relay, a test's event store)."""
    conn: asyncpg.Connection = await asyncpg.connect(database_url)
    try:
        return await migrate_connection(conn)
    finally:
        await conn.close()


async def migrate_connection(conn: asyncpg.Connection) -> list[int]:
    """`migrate` on a connection of the caller's (which must not be in a transaction)."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", locks.SCHEMA_MIGRATIONS)
        await conn.execute(_LEDGER)
        rows = await conn.fetch("SELECT number FROM schema_migrations")
        done = {row["number"] for row in rows}
        applied = []
        for migration in MIGRATIONS:
            if migration.number in done:
                continue
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (number, description) VALUES ($1, $2)",
                migration.number,
                migration.description,
            )
            applied.append(migration.number)
    _report(applied, done)
    return applied


def _report(applied: list[int], done: set[int]) -> None:
    """Say what changed, and warn of a database migrated by a newer cstor than this one."""
    if applied:
        log.info("schema migrations applied: %s", ", ".join(map(str, applied)))
    newer = sorted(done - {migration.number for migration in MIGRATIONS})
    if newer:
        log.warning("the database has schema migrations this cstor does not know: %s", newer)
