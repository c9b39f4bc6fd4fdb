"""The memory budget the copies of a replica share."""

from __future__ import annotations

import asyncio
import random

from cstor.s3.pacing import MemoryBudget


async def test_copies_never_hold_more_than_the_budget_together() -> None:
    budget = MemoryBudget(100)
    held = peak = 0

    async def copy(size: int) -> None:
        nonlocal held, peak
        async with budget.hold(size):
            held += min(size, 100)
            peak = max(peak, held)
            await asyncio.sleep(random.uniform(0, 0.005))
            held -= min(size, 100)

    rng = random.Random(7)
    # Sizes from tiny to more than the whole budget (which then takes all of it).
    await asyncio.gather(*(copy(rng.choice([1, 10, 33, 60, 100, 250])) for _ in range(300)))
    assert peak <= 100
    assert held == 0


async def test_a_copy_waiting_for_room_is_not_overtaken_by_smaller_ones() -> None:
    budget = MemoryBudget(100)
    order: list[str] = []
    first = await budget.acquire(80)

    async def copy(name: str, size: int) -> None:
        async with budget.hold(size):
            order.append(name)

    # Given a large copy waiting for room, and a small one that would fit now
    large = asyncio.create_task(copy("large", 50))
    await asyncio.sleep(0)
    small = asyncio.create_task(copy("small", 10))
    await asyncio.sleep(0.01)
    assert order == []  # the small one queues behind the large one

    # When the room is given back, both go, the large one first
    await budget.release(first)
    await asyncio.gather(large, small)
    assert order == ["large", "small"]


async def test_a_copy_cancelled_while_it_waits_does_not_hold_up_the_line() -> None:
    budget = MemoryBudget(100)
    first = await budget.acquire(90)
    # Given a copy waiting for 50 bytes, first in line, and behind it one for 10
    waiting = asyncio.create_task(budget.acquire(50))
    await asyncio.sleep(0)
    behind = asyncio.create_task(budget.acquire(10))
    await asyncio.sleep(0)

    # When the first in line is cancelled (its migration paused, say)
    waiting.cancel()
    await asyncio.sleep(0.01)

    # Then the one behind it gets in, and nothing is lost from the budget
    assert behind.done()
    await budget.release(await behind)
    await budget.release(first)
    assert await budget.acquire(100) == 100


async def test_a_waiter_cancelled_just_before_room_is_given_back_is_skipped() -> None:
    budget = MemoryBudget(100)
    first = await budget.acquire(100)
    waiting = asyncio.create_task(budget.acquire(60))
    behind = asyncio.create_task(budget.acquire(40))
    await asyncio.sleep(0)

    # When the first waiter is cancelled and, before it runs again, the room is given back
    waiting.cancel()
    await budget.release(first)
    await asyncio.sleep(0)

    # Then the room went to the one behind it, and none of it was lost to the cancelled one
    assert waiting.cancelled()
    assert await behind == 40
    await budget.release(40)
    assert await budget.acquire(100) == 100
