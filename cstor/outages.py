"""Which errors say a server is away or busy, rather than that the work itself is wrong.

A consumer retries an outage for as long as it lasts; only a message that fails for
another reason, again and again, becomes a dead letter. Counting an outage against the
messages it happened to hit would bury good events whenever Postgres restarted.
"""

from __future__ import annotations

import asyncpg
import nats.errors
import psycopg
from eventsourcing import persistence

OUTAGES: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, unreachable, timed out (TimeoutError is an OSError)
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,  # the connection closed under the query
    asyncpg.OperatorInterventionError,  # shutting down, cannot connect now, cancelled
    asyncpg.InsufficientResourcesError,  # too many connections, disk full
    asyncpg.TransactionRollbackError,  # deadlock or serialization failure: try again
    psycopg.OperationalError,
    psycopg.InterfaceError,
    persistence.OperationalError,  # the event store's, wrapping psycopg's
    persistence.InterfaceError,
    nats.errors.ConnectionClosedError,
    nats.errors.NoServersError,
    nats.errors.StaleConnectionError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.NoRespondersError,
)


def is_outage(error: BaseException) -> bool:
    """Whether `error`, or the error it was raised from, says a server is unavailable."""
    seen: BaseException | None = error
    for _ in range(5):  # a wrapped error's cause is looked at too, a few levels deep
        if seen is None:
            return False
        if isinstance(seen, OUTAGES):
            return True
        seen = seen.__cause__
    return False
