"""Dead letters: the events a consumer could not apply, kept so that cstor goes on.

An event that fails for a reason other than an outage (`cstor.outages`), time after
time, would otherwise hold up its consumer for ever: the projector, which applies the
stream in order, would project nothing more for anyone. Such an event is recorded here,
with the error, and its consumer moves past it; an operator sees it on the admin page,
in ``GET /api/v1/admin/dead-letters`` and in the ``cstor_dead_letters`` metric, and once
the cause is fixed, ``cstor rebuild-read-models`` applies the projector's again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

import asyncpg
import msgspec

from cstor import contracts

log = logging.getLogger(__name__)

# The services' durable consumers, named in the metric even while they have none.
CONSUMERS = ("planner", "planner-completion", "projector", "transfer")
ERROR_LIMIT = 4000  # characters of an error kept: enough to read, not a whole page of repr


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    """A recorded dead letter, as the admin endpoint lists it."""

    consumer: str
    event_id: UUID
    stream_sequence: int | None
    position: int
    subject: str
    event_type: str
    migration_id: UUID
    event: str
    error: str
    failures: int
    first_failed_at: datetime
    recorded_at: datetime


@dataclass(frozen=True)
class Failure:
    """One event a consumer gave up on, and why: what `record` writes."""

    consumer: str
    event: contracts.Event
    stream_sequence: int | None
    error: str
    failures: int
    first_failed_at: datetime


def describe(error: BaseException) -> str:
    """The error as one line of text that Postgres can store (no NUL), kept short."""
    text = f"{type(error).__name__}: {error}".replace("\x00", "\\x00")
    return text[:ERROR_LIMIT]


async def record(conn: asyncpg.Connection, failure: Failure) -> None:
    """Record a dead letter; an event recorded before keeps its first failure's time."""
    event = failure.event
    await conn.execute(
        "INSERT INTO dead_letters (consumer, event_id, stream_sequence, position, subject,"
        " event_type, migration_id, event, error, failures, first_failed_at, recorded_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, now())"
        " ON CONFLICT (consumer, event_id) DO UPDATE SET"
        " stream_sequence = COALESCE(EXCLUDED.stream_sequence, dead_letters.stream_sequence),"
        " error = EXCLUDED.error, failures = dead_letters.failures + EXCLUDED.failures,"
        " first_failed_at = LEAST(dead_letters.first_failed_at, EXCLUDED.first_failed_at),"
        " recorded_at = EXCLUDED.recorded_at",
        failure.consumer,
        event.event_id,
        failure.stream_sequence,
        event.position,
        contracts.subject_of(event),
        str(type(event).__struct_config__.tag),
        event.migration_id,
        contracts.encoder.encode(event).decode(),
        failure.error,
        failure.failures,
        failure.first_failed_at,
    )


def alert(failure: Failure) -> None:
    """Say at ERROR, once the dead letter is committed, what was given up on and why."""
    log.error(
        "dead letter: consumer %s gave up on stream sequence %s (%s, event %s) after %d"
        " failures: %s",
        failure.consumer,
        "-" if failure.stream_sequence is None else failure.stream_sequence,
        contracts.subject_of(failure.event),
        failure.event.event_id,
        failure.failures,
        failure.error,
    )


async def forget_all_but(
    conn: asyncpg.Connection, consumer: str, still_failing: Iterable[UUID]
) -> int:
    """Remove a consumer's dead letters except those still failing; how many went."""
    status = await conn.execute(
        "DELETE FROM dead_letters WHERE consumer = $1 AND NOT event_id = ANY($2::uuid[])",
        consumer,
        list(still_failing),
    )
    return int(status.split()[-1])


async def listed(pool: asyncpg.Pool, limit: int = 500) -> list[DeadLetter]:
    """The most recently recorded dead letters first (none before any consumer ran)."""
    try:
        rows = await pool.fetch(
            "SELECT consumer, event_id, stream_sequence, position, subject, event_type,"
            " migration_id, event, error, failures, first_failed_at, recorded_at"
            " FROM dead_letters ORDER BY recorded_at DESC, position DESC LIMIT $1",
            limit,
        )
    except asyncpg.UndefinedTableError:
        return []
    return [DeadLetter(**dict(row)) for row in rows]


async def counts(pool: asyncpg.Pool) -> dict[str, int]:
    """How many dead letters each consumer has; every known consumer is named, with 0."""
    found = dict.fromkeys(CONSUMERS, 0)
    try:
        rows = await pool.fetch("SELECT consumer, count(*) FROM dead_letters GROUP BY consumer")
    except asyncpg.UndefinedTableError:
        return found
    return found | {row[0]: row[1] for row in rows}


class PostgresDeadLetters:
    """The dead letters of the consumers that ack each message (the planner, the transfer).

    Their failures are counted in Postgres, not in the delivery count: a packet of a
    paused migration is redelivered many times without anything being wrong with it.
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def failed(
        self,
        consumer: str,
        event: contracts.Event,
        stream_sequence: int,
        error: BaseException,
        bury_at: int,
    ) -> bool:
        """Count one more failure of the message; at the `bury_at`-th, record it as a
        dead letter in the same transaction. Whether it is one now."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "INSERT INTO delivery_failures (consumer, stream_sequence, failures,"
                " first_failed_at) VALUES ($1, $2, 1, now())"
                " ON CONFLICT (consumer, stream_sequence) DO UPDATE"
                " SET failures = delivery_failures.failures + 1"
                " RETURNING failures, first_failed_at",
                consumer,
                stream_sequence,
            )
            assert row is not None
            if row["failures"] < bury_at:
                return False
            failure = Failure(
                consumer, event, stream_sequence, describe(error), row["failures"],
                row["first_failed_at"],
            )  # fmt: skip
            await record(conn, failure)
            await conn.execute(
                "DELETE FROM delivery_failures WHERE consumer = $1 AND stream_sequence = $2",
                consumer,
                stream_sequence,
            )
        alert(failure)
        return True

    async def recovered(self, consumer: str, stream_sequences: Sequence[int]) -> None:
        """Forget the failures of redelivered messages that were handled in the end."""
        await self.pool.execute(
            "DELETE FROM delivery_failures WHERE consumer = $1"
            " AND stream_sequence = ANY($2::bigint[])",
            consumer,
            list(stream_sequences),
        )


def now() -> datetime:
    """The time a failure is first seen, in UTC."""
    return datetime.now(UTC)
