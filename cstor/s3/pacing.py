"""How much a replica does at once: object bytes held in memory, parts in flight, retries."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import deque
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
        # Copies waiting for room, first come first served: a large part is not overtaken
        # for ever by small copies that would each fit in what is left.
        self._queue: deque[tuple[int, asyncio.Future[None]]] = deque()

    async def acquire(self, amount: int) -> int:
        """Wait until `amount` bytes (at most the whole budget) are free; what was taken."""
        amount = min(amount, self.limit)
        if not self._queue and self._free >= amount:
            self._free -= amount
            return amount
        granted = asyncio.get_running_loop().create_future()
        self._queue.append((amount, granted))
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self.release_now(amount)  # granted just as it was cancelled: give it back
            else:
                with contextlib.suppress(ValueError):  # _grant may have dropped it already
                    self._queue.remove((amount, granted))
                self._grant()  # it may have been first in line, holding others up
            raise
        return amount

    def would_wait(self, amount: int) -> bool:
        """Whether `acquire(amount)` would wait now."""
        return bool(self._queue) or self._free < min(amount, self.limit)

    async def release(self, amount: int) -> None:
        self.release_now(amount)

    def release_now(self, amount: int) -> None:
        """Give back `amount` and let in those first in line that now fit."""
        self._free += amount
        self._grant()

    @asynccontextmanager
    async def hold(self, amount: int) -> AsyncIterator[None]:
        taken = await self.acquire(amount)
        try:
            yield
        finally:
            self.release_now(taken)

    def _grant(self) -> None:
        while self._queue:
            amount, granted = self._queue[0]
            if granted.done():  # cancelled while it waited: nothing to give it
                self._queue.popleft()
                continue
            if self._free < amount:
                return
            self._queue.popleft()
            self._free -= amount
            granted.set_result(None)


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
