"""A packet's outcomes, recorded while it is copied: in batches, by time and by count.

A packet recorded only at its end showed nothing for as long as it took: at 60 kB/s,
300 small objects stayed at 0 copied for 30 s. Each outcome is now recorded at most
about `within` seconds after it is known, or sooner when `most` are waiting, each
batch in one transaction; the packet's last batch closes it (Packet.Transferred) in
the same transaction, with the counts of all of them. Fast objects still make one
transaction per packet: a batch that would hold the packet's last outcome waits for
the close, and a packet copied within `within` seconds has no other.

Redelivery stays exact: outcomes are written at fixed aggregate versions, so a batch
holding an outcome some other delivery recorded first is refused whole; the outcomes
already there are dropped from it and the rest recorded, and the close then counts
what the store holds rather than what this delivery saw. A replica killed between
batches leaves its recorded outcomes; the next delivery reads them
(`Migrations.recorded_outcomes`) and copies only the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from functools import partial
from uuid import UUID

import anyio

from cstor import bus
from cstor.app.migrations import Migrations
from cstor.app.results import CopyResult, Tally

RECORD_WITHIN = 1.0
"""Seconds an outcome may wait for others before its batch is recorded."""

RECORD_MOST = 250
"""Outcomes that make a batch whatever the time (the default packet's size)."""


def tallied(before: Tally, results: Sequence[CopyResult]) -> Tally:
    """`before` with `results` counted in."""
    copied = [r for r in results if r.copied]
    return Tally(
        before.copied + len(copied),
        before.failed + len(results) - len(copied),
        before.bytes + sum(r.size for r in copied),
    )


class OutcomeBatches:
    """Records one delivery's outcomes of a packet as they come, then closes the packet.

    `add` is called by each copy as it ends; a task of its own records the batches, one
    at a time and in the order they filled; `finish` records what is left, closing the
    packet or not (a pause keeps it open), and waits for that task.
    """

    def __init__(
        self,
        app: Migrations,
        migration_id: UUID,
        sequence: int,
        objects: Sequence[tuple[str, int]],
        *,
        earlier: Tally,
        expected: int,
        within: float = RECORD_WITHIN,
        most: int = RECORD_MOST,
    ) -> None:
        self.app = app
        self.migration_id = migration_id
        self.sequence = sequence
        self.objects = objects  # the whole packet's (key, packed version)
        self.within = within
        self.most = most
        self.recorded = earlier  # every outcome of the packet in the store, as far as known
        self.mine = Tally()  # the outcomes this delivery recorded
        self.raced = False  # whether another delivery recorded some of ours first
        self._expected = expected  # outcomes this delivery will have if nothing stops it
        self._seen = 0
        self._pending: list[CopyResult] = []
        self._oldest = 0.0  # when the first of the pending outcomes came
        self._changed = asyncio.Event()
        self._close: bool | None = None  # set by finish: close the packet, or not
        self._task: asyncio.Task[bool] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._keep_recording())

    @property
    def broken(self) -> bool:
        """Whether recording failed: copying more would only be lost."""
        return self._task is not None and self._task.done()

    def add(self, result: CopyResult) -> None:
        if not self._pending:
            self._oldest = time.monotonic()
        self._pending.append(result)
        self._seen += 1
        self._changed.set()

    async def finish(self, *, close: bool) -> bool:
        """Record what is left, and close the packet if `close`; False if another
        delivery closed it first. Raises what recording raised."""
        assert self._task is not None, "finish() before start()"
        self._close = close
        self._changed.set()
        return await self._task

    async def abandon(self) -> None:
        """Record what is left without closing, as far as the store lets us: the copy
        itself failed, and the next delivery should not copy these again."""
        with contextlib.suppress(Exception):
            await self.finish(close=False)

    def cancel(self) -> None:
        """Stop recording (the delivery itself was cancelled); a no-op once finished.

        A batch being written is not cut short: its thread runs to the commit or
        rollback, and only then does the task end.
        """
        if self._task is not None:
            self._task.cancel()

    async def _keep_recording(self) -> bool:
        while True:
            final = await self._due()
            batch, self._pending = self._pending, []
            if final:
                return await self._record(batch, close=bool(self._close))
            await self._record(batch, close=False)

    async def _due(self) -> bool:
        """Wait until a batch is due (False) or `finish` was called (True)."""
        while True:
            self._changed.clear()
            if self._close is not None:
                return True
            wait: float | None = None
            # The packet's last outcome goes with its close, in the same transaction.
            if self._pending and self._seen < self._expected:
                wait = self._oldest + self.within - time.monotonic()
                if len(self._pending) >= self.most or wait <= 0:
                    return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), wait)

    async def _record(self, batch: list[CopyResult], *, close: bool) -> bool:
        """Record `batch` (and the close) in one transaction, without what another
        delivery recorded first; False if that one closed the packet."""
        while True:
            if not batch and not close:
                return True
            if close and self.raced:
                # The close counts every outcome of the packet, whoever recorded it.
                _, self.recorded = await anyio.to_thread.run_sync(
                    self.app.recorded_outcomes, self.migration_id, self.objects
                )
            earlier = self.recorded
            record = partial(self.app.record_packet, close=close, earlier=earlier)
            saved = await anyio.to_thread.run_sync(record, self.migration_id, self.sequence, batch)
            if saved:
                self.recorded = tallied(earlier, batch)
                self.mine = tallied(self.mine, batch)
                return True
            if close and await self._closed():
                return False
            batch = await self._without_recorded(batch)

    async def _without_recorded(self, batch: list[CopyResult]) -> list[CopyResult]:
        """`batch` without the outcomes the store has already."""
        self.raced = True
        done, _ = await anyio.to_thread.run_sync(
            self.app.recorded_outcomes, self.migration_id, [(r.key, r.version) for r in batch]
        )
        if not done:
            # Refused, yet none of it is there: not a race this can settle.
            raise bus.TransientError(
                f"outcomes of packet {self.sequence} of {self.migration_id} were refused"
            )
        return [r for r in batch if r.key not in done]

    async def _closed(self) -> bool:
        return bool(
            await anyio.to_thread.run_sync(
                self.app.packet_transferred, self.migration_id, self.sequence
            )
        )
