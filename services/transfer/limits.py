"""A migration's limits, honoured by every transfer replica together, through Postgres.

- **Concurrent objects**: a replica copies an object of a migration limited to N
  only while it holds one of N *slots*: the session advisory lock
  ``(<migration key>, k)``, k < N, taken with ``pg_try_advisory_lock`` on a
  connection of its own and released when the copy ends. Postgres grants each
  lock to one session at a time, so no more than N objects of the migration are
  copied at once, whichever replicas copy them; the locks of a replica that dies
  go with its connection, so a crash never keeps a slot.
- **Bandwidth**: every replica draws leave to send from one row per migration
  (``transfer_bandwidth``), a token bucket kept as the time up to which its
  bandwidth is spoken for (``paid_until``). Drawing a grant of g bytes (a quarter
  of a second's worth at most) moves that time on by g / rate, in one UPDATE
  under the row's lock, and the drawer waits until then before it sends: the
  bytes of all replicas together never go faster than the rate. The clock is
  Postgres's, so the replicas' own clocks do not matter; a killed replica loses
  only the grant it held.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

import asyncpg

from cstor.store import locks

log = logging.getLogger(__name__)

GRANT_SECONDS = 0.25
"""The most bandwidth one draw takes: a quarter of a second's worth of bytes."""

_DRAW = """
INSERT INTO transfer_bandwidth AS b (migration_id, paid_until)
VALUES ($1, clock_timestamp() + make_interval(secs => $2))
ON CONFLICT (migration_id) DO UPDATE
SET paid_until = greatest(b.paid_until, clock_timestamp() - make_interval(secs => $3))
    + make_interval(secs => $2)
RETURNING extract(epoch FROM paid_until - clock_timestamp())::float8
"""
# A first draw finds no row: the bucket starts empty, so even the first grant waits its
# time. Idle time earns at most GRANT_SECONDS of credit (the bucket's depth).

_TAKE_SLOT = """
SELECT k FROM generate_series(0, $2 - 1) AS k
WHERE CASE WHEN k = ANY($3::int[]) THEN false ELSE pg_try_advisory_lock($1, k) END
ORDER BY k
LIMIT 1
"""
# Session advisory locks nest: a slot this session holds already would be granted
# again, so those are skipped (CASE keeps Postgres from trying them anyway).


class SharedBandwidth:
    """`cstor.s3.Throttle` for one migration: its bytes per second, over every replica."""

    def __init__(self, pool: asyncpg.Pool, migration_id: UUID, rate: int) -> None:
        self.pool = pool
        self.migration_id = migration_id
        self.rate = rate
        self.grant = max(1, int(rate * GRANT_SECONDS))

    async def draw(self, wanted: int) -> int:
        granted = min(wanted, self.grant)
        wait = await self.pool.fetchval(
            _DRAW, self.migration_id, granted / self.rate, GRANT_SECONDS
        )
        if wait > 0:
            await asyncio.sleep(wait)
        return granted


@dataclass(frozen=True)
class Slot:
    """One of a migration's concurrent-object slots, held by this replica."""

    key: int  # the migration's lock key
    number: int  # k, of 0..N-1
    session: int  # which of the replica's connections holds it


class ObjectSlots:
    """Each migration's concurrent-object slots, as session advisory locks in Postgres.

    One connection of the replica's own holds all its slots; a lost connection has
    lost its locks too, so slots taken on it are not given back on the next one. Its
    application_name, ``cstor-transfer-slots:<pid>``, tells in pg_locks who holds what.
    """

    POLL = (0.05, 0.25)  # seconds between tries for a slot, at random in this range

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self._conn: asyncpg.Connection | None = None
        self._session = 0  # which connection: slots are only given back on their own
        self._held: dict[int, set[int]] = {}
        self._lock = asyncio.Lock()
        self._gates: dict[int, asyncio.Semaphore] = {}

    async def take(self, migration_id: UUID, limit: int, stop: Callable[[], bool]) -> Slot | None:
        """Wait for one of the migration's `limit` slots; None if `stop` says so first."""
        key = locks.migration_slots(migration_id)
        # No more of this replica's copies ask Postgres at once than there are slots.
        gate = self._gates.setdefault(key, asyncio.Semaphore(limit))
        async with gate:
            while not stop():
                try:
                    slot = await self._try(key, limit)
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                    log.warning("could not ask Postgres for a slot: %s; trying again", error)
                    await self._lost()
                    slot = None
                if slot is not None:
                    return slot
                await asyncio.sleep(random.uniform(*self.POLL))
        return None

    async def give_back(self, slot: Slot) -> None:
        async with self._lock:
            if slot.session != self._session or self._conn is None:
                return  # its connection is gone, and the lock with it
            self._held.get(slot.key, set()).discard(slot.number)
            try:
                await self._conn.execute("SELECT pg_advisory_unlock($1, $2)", slot.key, slot.number)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                log.warning("could not give a slot back: %s", error)
                await self._drop()

    async def close(self) -> None:
        async with self._lock:
            await self._drop()

    async def _try(self, key: int, limit: int) -> Slot | None:
        async with self._lock:
            if self._conn is None or self._conn.is_closed():
                await self._drop()
                self._conn = await asyncpg.connect(
                    self.database_url,
                    server_settings={"application_name": f"cstor-transfer-slots:{os.getpid()}"},
                )
                self._session += 1
            held = self._held.setdefault(key, set())
            number = await self._conn.fetchval(_TAKE_SLOT, key, limit, sorted(held))
            if number is None:
                return None
            held.add(number)
            return Slot(key, number, self._session)

    async def _lost(self) -> None:
        async with self._lock:
            await self._drop()

    async def _drop(self) -> None:
        """Forget the connection and every slot held on it (Postgres has let them go)."""
        conn, self._conn = self._conn, None
        self._held.clear()
        self._session += 1
        if conn is not None and not conn.is_closed():
            conn.terminate()
