"""Counting what the event store holds, for tests that a kill, a pause or a retry records
each outcome once."""

from __future__ import annotations

import psycopg


def recorded(database_url: str, *topics: str) -> tuple[int, int]:
    """How many stored events have one of ``topics`` (the end of the library's topic: a
    class's qualified name such as "ObjectTransfer.Copied"), and of how many aggregates:
    the two are equal when nothing was recorded twice."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT originator_id) FROM cstor_events"
            " WHERE topic LIKE ANY(%s)",
            ([f"%{topic}" for topic in topics],),
        ).fetchone()
    assert row is not None
    return row[0], row[1]
