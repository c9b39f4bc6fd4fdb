"""How much a replica does at once: object bytes held in memory, parts in flight, retries."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio


def backoff(attempt: int) -> float:
    """Exponential backoff with full jitter: up to 0.2 s, 0.4 s, 0.8 s ... at most 10 s."""
    return random.uniform(0, min(10.0, 0.2 * 2 ** (attempt - 1)))


class MemoryBudget:
    """Bounds the object bytes held in memory by the copies in flight."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._free = limit
        self._changed = asyncio.Condition()

    async def acquire(self, amount: int) -> int:
        """Wait until `amount` bytes (at most the whole budget) are free; what was taken."""
        amount = min(amount, self.limit)
        async with self._changed:
            await self._changed.wait_for(lambda: self._free >= amount)
            self._free -= amount
        return amount

    async def release(self, amount: int) -> None:
        async with self._changed:
            self._free += amount
            self._changed.notify_all()

    @asynccontextmanager
    async def hold(self, amount: int) -> AsyncIterator[None]:
        taken = await self.acquire(amount)
        try:
            yield
        finally:
            with anyio.CancelScope(shield=True):
                await self.release(taken)


async def run_bounded(work: Callable[[int], Any], numbers: list[int], in_flight: int) -> None:
    """Run `work(n)` for every number, `in_flight` at a time; the first failure stops all."""
    queue = list(reversed(numbers))

    async def worker() -> None:
        while queue:
            await work(queue.pop())

    tasks = [asyncio.create_task(worker()) for _ in range(min(in_flight, len(numbers)))]
    try:
        while tasks:
            done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            tasks = list(pending)
            for task in done:
                task.result()
    finally:
        for task in tasks:
            task.cancel()
        if tasks:
            with anyio.CancelScope(shield=True):
                await asyncio.wait(tasks)
