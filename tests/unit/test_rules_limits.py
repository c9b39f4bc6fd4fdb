"""A migration's limits and a replica's own bounds, as arithmetic: what a limit may be,
how bandwidth is drawn in grants, how retries back off, how many parts run at once, and
how a copy learns it must stop. The sharing across replicas itself is Postgres's (slots
as advisory locks, the bandwidth row): tests/integration covers it on a real server."""

from __future__ import annotations

import asyncio
import random
from typing import Any, cast
from uuid import uuid4

import msgspec
import pytest

from cstor import contracts
from cstor.domain.migration import LIMITS, checked_limits
from cstor.s3 import pacing
from cstor.s3.options import CANCELLED, PAUSED, CopyHalted, CopyOptions
from services.transfer.limits import GRANT_SECONDS, SharedBandwidth

# Bandwidth grants ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "grant"),
    [
        (4_000_000, 1_000_000),  # a quarter of a second's worth
        (10**15, 250 * 10**12),  # the highest limit a migration may set
        (7, 1),
        (3, 1),  # never a grant of nothing: a slow migration still moves
        (1, 1),
    ],
)
def test_a_draw_is_at_most_a_quarter_of_a_seconds_worth_of_bytes(rate: int, grant: int) -> None:
    # The pool is only asked when drawing; the grant is the limit's own arithmetic
    bandwidth = SharedBandwidth(cast(Any, None), uuid4(), rate)
    assert bandwidth.grant == grant
    assert bandwidth.grant == max(1, int(rate * GRANT_SECONDS))


def test_grants_at_the_rate_take_as_long_as_the_rate_says() -> None:
    # Each grant of g bytes pays g / rate seconds: n grants of one limit fill n quarters
    rate = 8 * 1024 * 1024
    bandwidth = SharedBandwidth(cast(Any, None), uuid4(), rate)
    assert bandwidth.grant / rate == GRANT_SECONDS
    assert 4 * bandwidth.grant == rate  # four grants, one second's bytes


# The limits a migration keeps and carries ------------------------------------------------


def test_the_limits_highest_values_fit_postgres_and_the_bus() -> None:
    # concurrent objects are advisory-lock slots (int4 keys), bandwidth a bigint column
    assert LIMITS["concurrent_objects"] < 2**31
    assert LIMITS["bandwidth_bytes_per_second"] < 2**63
    kept = checked_limits(dict(LIMITS))
    message = contracts.MigrationLimits(**kept)
    assert msgspec.json.decode(msgspec.json.encode(message), type=contracts.MigrationLimits) == (
        message
    )


def test_limits_absent_on_the_bus_are_no_limits() -> None:
    assert msgspec.json.decode(b"{}", type=contracts.MigrationLimits) == contracts.MigrationLimits(
        bandwidth_bytes_per_second=None, concurrent_objects=None
    )


# Retries back off ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempt", "most"), [(1, 0.2), (2, 0.4), (3, 0.8), (6, 6.4), (7, 10.0), (40, 10.0)]
)
def test_backoff_is_full_jitter_up_to_a_doubling_bound_of_at_most_ten_seconds(
    attempt: int, most: float
) -> None:
    random.seed(attempt)
    waits = [pacing.backoff(attempt) for _ in range(2000)]
    assert all(0 <= w <= most for w in waits)
    # Full jitter: the waits spread over the whole range, not bunched at its top
    assert min(waits) < most * 0.05
    assert max(waits) > most * 0.95


# Parts in flight ---------------------------------------------------------------------------


async def test_bounded_work_runs_every_number_never_more_than_the_bound_at_once() -> None:
    # Given 30 pieces of work that each take a moment
    running, most, done = 0, 0, []

    async def work(number: int) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.001 * (number % 3))
        running -= 1
        done.append(number)

    # When they run 4 at a time
    await pacing.run_bounded(work, list(range(30)), in_flight=4)
    # Then each ran once, and never more than 4 together
    assert sorted(done) == list(range(30))
    assert most == 4


async def test_bounded_work_stops_at_the_first_failure_and_cancels_the_rest() -> None:
    started: list[int] = []
    cancelled: list[int] = []

    async def work(number: int) -> None:
        started.append(number)
        if number == 2:
            raise OSError("part 2 failed")
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(number)
            raise

    with pytest.raises(OSError, match="part 2 failed"):
        await asyncio.wait_for(pacing.run_bounded(work, list(range(1, 20)), in_flight=3), 5)
    # The failure ended the others in flight, and nothing after them was started
    assert sorted(cancelled) == [1, 3]
    assert sorted(started) == [1, 2, 3]


async def test_bounded_work_over_nothing_does_nothing() -> None:
    async def work(number: int) -> None:
        raise AssertionError(number)

    await pacing.run_bounded(work, [], in_flight=8)


# A copy learns it must stop -----------------------------------------------------------------


@pytest.mark.parametrize(("why", "paused"), [(PAUSED, True), (CANCELLED, False)])
def test_a_copy_stops_half_way_once_its_migration_is_paused_or_cancelled(
    why: str, paused: bool
) -> None:
    status = {"now": ""}
    options = CopyOptions(halted=lambda: status["now"])
    options.check()  # going on
    status["now"] = why
    with pytest.raises(CopyHalted, match=f"its migration was {why}") as raised:
        options.check()
    assert raised.value.paused is paused


def test_a_copy_without_wishes_is_never_halted_nor_throttled() -> None:
    options = CopyOptions()
    options.check()
    assert (options.throttle, options.storage_class) == (None, None)
