"""What the projector does with a batch it failed to apply, time after time.

A batch may hold one event that cannot be applied among hundreds that can. Each is
applied again on its own, in a savepoint; those that still fail become dead letters,
and the projector's position moves past the whole batch in the same transaction as the
good events' rows and the dead letters, so nothing is applied twice or lost unrecorded.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from cstor import bus, contracts
from cstor.readmodel.projection import fold, move_position, unapplied
from cstor.store import deadletters
from cstor.store.deadletters import Failure

CONSUMER = "projector"  # the durable consumer's name, and its dead letters'


async def fold_each(
    conn: asyncpg.Connection, events: Sequence[contracts.Event]
) -> list[tuple[contracts.Event, Exception]]:
    """Apply events one by one, each in a savepoint; those that failed, with the error.

    An outage is raised, not collected: the events are fine, the database is not.
    """
    failed: list[tuple[contracts.Event, Exception]] = []
    for event in events:
        try:
            async with conn.transaction():  # nested: a savepoint
                await fold(conn, [event])
        except Exception as error:
            if bus.is_transient(error):
                raise
            failed.append((event, error))
    return failed


async def project_each(conn: asyncpg.Connection, deliveries: list[bus.Delivery]) -> list[Failure]:
    """Apply a batch event by event; record those that fail as dead letters, in one commit."""
    failures = []
    async with conn.transaction():
        fresh = await unapplied(conn, [(d.stream_sequence, d) for d in deliveries])
        if not fresh:
            return []
        by_event = {id(d.event): d for _, d in fresh}
        for event, error in await fold_each(conn, [d.event for _, d in fresh]):
            delivery = by_event[id(event)]
            failure = Failure(
                consumer=CONSUMER,
                event=event,
                stream_sequence=delivery.stream_sequence,
                error=deadletters.describe(error),
                failures=delivery.failures + 1,
                first_failed_at=delivery.first_failed_at or deadletters.now(),
            )
            await deadletters.record(conn, failure)
            failures.append(failure)
        await move_position(conn, fresh[-1][0])
    for failure in failures:
        deadletters.alert(failure)
    return failures
