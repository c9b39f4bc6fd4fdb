"""Answers each api worker remembers until Postgres says they changed (LISTEN/NOTIFY).

A worker keeps what a lookup found for at most ``ttl`` seconds, and forgets it as soon
as a trigger in Postgres names its key on the cache's NOTIFY channel, whichever worker
or service changed the row. So a remembered answer is never older than the
notification's way from Postgres to the worker, not the ``ttl``: that only bounds what
a bug could keep. While a worker is not listening (before it connected, after its
connection dropped) it remembers nothing and asks Postgres every time, so a missed
notification cannot keep an answer alive. A lookup that was under way when any
notification came is not kept either: it may have read the row before the change.
Only found things are kept: a new row is seen at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Generic, TypeVar

import asyncpg
from cachetools import TTLCache

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class NotifiedCache(Generic[K, V]):
    """Found values for ``ttl`` seconds, forgotten when ``channel`` names their key."""

    def __init__(
        self,
        database_url: str,
        channel: str,
        keys_named: Callable[[str], Iterable[K]],
        *,
        ttl: float = 5.0,
        size: int = 10_000,
    ) -> None:
        self.database_url = database_url
        self.channel = channel
        self._keys_named = keys_named  # the keys a notification's payload names
        self._values: TTLCache[K, V] = TTLCache(maxsize=size, ttl=ttl)
        self._listener: asyncpg.Connection | None = None
        self._notifications = 0  # how many have come: a lookup spanning one is not kept
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    def start(self) -> None:
        """Listen in the background from now on."""
        self._task = asyncio.create_task(self._listen())

    async def close(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task

    async def get(
        self,
        key: K,
        lookup: Callable[[], Awaitable[V | None]],
        matches: Callable[[V], bool] | None = None,
    ) -> V | None:
        """The remembered value (if it ``matches``), or what ``lookup`` finds (then
        remembered in its place, if found)."""
        listener, notifications = self._listener, self._notifications
        found = self._values.get(key) if listener is not None else None
        if found is not None and (matches is None or matches(found)):
            return found
        value = await lookup()
        # Kept only if the same connection listened all along and told of no change.
        unchanged = listener is self._listener and notifications == self._notifications
        if value is not None and listener is not None and unchanged:
            self._values[key] = value
        return value

    def forget(self, key: K) -> None:
        """Forget ``key`` in this worker at once; the others hear of it by notification,
        which reaches this one too, but only after the answer that ended it has gone."""
        self._notifications += 1
        self._values.pop(key, None)

    def _changed(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self._notifications += 1
        for key in self._keys_named(payload):
            self._values.pop(key, None)

    async def _listen(self) -> None:
        """Listen until stopped; while not connected, remember nothing."""
        while not self._stop.is_set():
            try:
                conn: asyncpg.Connection = await asyncpg.connect(self.database_url)
            except (OSError, asyncpg.PostgresError) as error:
                log.warning("%s: cannot listen (%s); retrying in 1 s", self.channel, error)
                await _sleep_unless(self._stop, 1.0)
                continue
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _conn, lost=lost: lost.set())
            try:
                await conn.add_listener(self.channel, self._changed)
                self._listener = conn
                await _wait_for_either(self._stop, lost)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                log.warning("%s: cannot listen (%s)", self.channel, error)
            finally:
                self._forget_everything()
                with contextlib.suppress(Exception):
                    await conn.close()
            if not self._stop.is_set():
                log.warning("%s: lost its connection; listening again in 1 s", self.channel)
                await _sleep_unless(self._stop, 1.0)

    def _forget_everything(self) -> None:
        self._listener = None
        self._notifications += 1
        self._values.clear()


async def _wait_for_either(first: asyncio.Event, second: asyncio.Event) -> None:
    waiters = [asyncio.ensure_future(first.wait()), asyncio.ensure_future(second.wait())]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stop.wait()
