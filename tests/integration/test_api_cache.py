"""What an api worker remembers (services.api.cache), against a real Postgres."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import asyncpg

from services.api.cache import NotifiedCache

CHANNEL = "cstor_test_changed"


class Lookups:
    """A lookup that counts how often it is asked, answering from ``values``."""

    def __init__(self) -> None:
        self.values = {"a": "first", "b": "other"}
        self.asked = 0

    def of(self, key: str) -> Callable[[], Awaitable[str | None]]:
        async def lookup() -> str | None:
            self.asked += 1
            return self.values.get(key)

        return lookup


async def listening(cache: NotifiedCache[str, str]) -> None:
    """Wait until the cache listens (it connects in the background)."""
    async with asyncio.timeout(10):
        while cache._listener is None:
            await asyncio.sleep(0.01)


async def test_a_value_is_remembered_until_postgres_names_it(database_url: str) -> None:
    # Given a cache listening on its channel, which has found "a" once
    cache: NotifiedCache[str, str] = NotifiedCache(database_url, CHANNEL, lambda p: [p])
    cache.start()
    lookups = Lookups()
    conn = await asyncpg.connect(database_url)
    try:
        await listening(cache)
        assert await cache.get("a", lookups.of("a")) == "first"
        # Then it answers again without asking
        assert await cache.get("a", lookups.of("a")) == "first"
        assert lookups.asked == 1

        # When a change to "a" is announced
        lookups.values["a"] = "second"
        await conn.execute("SELECT pg_notify($1, 'a')", CHANNEL)
        await asyncio.sleep(0.2)

        # Then it asks again, and finds the new value
        assert await cache.get("a", lookups.of("a")) == "second"
        assert lookups.asked == 2
        # And nothing not found is remembered
        assert await cache.get("c", lookups.of("c")) is None
        assert await cache.get("c", lookups.of("c")) is None
        assert lookups.asked == 4
    finally:
        await conn.close()
        await cache.close()


async def test_while_it_cannot_listen_it_remembers_nothing(database_url: str) -> None:
    # Given a cache that remembers "a"
    cache: NotifiedCache[str, str] = NotifiedCache(database_url, CHANNEL, lambda p: [p])
    cache.start()
    lookups = Lookups()
    conn = await asyncpg.connect(database_url)
    try:
        await listening(cache)
        await cache.get("a", lookups.of("a"))

        # When its listening connection is cut, and a change made meanwhile goes unheard
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND query LIKE 'LISTEN%'"
        )
        lookups.values["a"] = "changed unheard"
        await asyncio.sleep(0.2)

        # Then it asks every time rather than answer what it had
        assert await cache.get("a", lookups.of("a")) == "changed unheard"
        asked = lookups.asked
        # And once it listens again, it remembers again
        await listening(cache)
        await cache.get("a", lookups.of("a"))
        await cache.get("a", lookups.of("a"))
        assert lookups.asked == asked + 1
    finally:
        await conn.close()
        await cache.close()


async def test_a_lookup_under_way_when_a_change_is_announced_is_not_kept(
    database_url: str,
) -> None:
    # Given a cache, and a lookup that reads "a" and is slow to come back
    cache: NotifiedCache[str, str] = NotifiedCache(database_url, CHANNEL, lambda p: [p])
    cache.start()
    conn = await asyncpg.connect(database_url)
    read = asyncio.Event()
    go_on = asyncio.Event()

    async def slow() -> str:
        read.set()
        await go_on.wait()
        return "read before the change"

    try:
        await listening(cache)
        answer = asyncio.create_task(cache.get("a", slow))
        await read.wait()

        # When a change to "a" is announced before it comes back
        await conn.execute("SELECT pg_notify($1, 'a')", CHANNEL)
        await asyncio.sleep(0.2)
        go_on.set()
        assert await answer == "read before the change"

        # Then that answer was not kept: the next one is looked up
        lookups = Lookups()
        assert await cache.get("a", lookups.of("a")) == "first"
        assert lookups.asked == 1
    finally:
        await conn.close()
        await cache.close()
