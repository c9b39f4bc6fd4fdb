"""Copy the objects of one packet, each verified, retrying what is transient."""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from uuid import UUID

from cstor import contracts, s3
from cstor.app.results import CopyResult
from cstor.domain.transfer import object_id
from cstor.s3.options import DEFAULT_OPTIONS
from cstor.settings import Settings
from services.transfer.limits import ObjectSlots

log = logging.getLogger(__name__)


class PacketCopier:
    """Copies a packet's objects concurrently, bounded by a per-replica limit and by the
    migration's concurrent-objects limit, which `slots` counts across every replica."""

    def __init__(
        self, concurrency: asyncio.Semaphore, attempts: int, slots: ObjectSlots | None = None
    ) -> None:
        self.concurrency = concurrency
        self.attempts = attempts
        self.slots = slots

    async def copy_packet(
        self,
        packet: contracts.PacketPlanned,
        copier: s3.ObjectCopier,
        objects: Sequence[contracts.PacketObject],
        stop: Callable[[], bool],
        options: s3.CopyOptions = DEFAULT_OPTIONS,
        concurrent_objects: int | None = None,
        on_result: Callable[[CopyResult], None] | None = None,
    ) -> list[CopyResult | None]:
        """A result per object, in order; None for objects not started because of ``stop``.

        With `concurrent_objects`, an object is copied only while it holds one of the
        migration's slots, so that no more are copied at once on all replicas together.
        `on_result` hears each result as its copy ends, so that it can be recorded
        before the whole packet is done.
        """

        async def copy_one(obj: contracts.PacketObject) -> CopyResult | None:
            result = await self._copy_one(packet, obj, copier, options, stop, concurrent_objects)
            if result is not None and on_result is not None:
                on_result(result)
            return result

        return list(await asyncio.gather(*(copy_one(obj) for obj in objects)))

    @asynccontextmanager
    async def _slot(
        self, migration_id: UUID, limit: int | None, stop: Callable[[], bool]
    ) -> AsyncIterator[bool]:
        """Hold one of the migration's slots (if it has a limit); False if stopped first."""
        if not limit or self.slots is None:
            yield True
            return
        slot = await self.slots.take(migration_id, limit, stop)
        try:
            yield slot is not None
        finally:
            if slot is not None:
                await self.slots.give_back(slot)

    async def _copy_one(
        self,
        packet: contracts.PacketPlanned,
        obj: contracts.PacketObject,
        copier: s3.ObjectCopier,
        options: s3.CopyOptions,
        stop: Callable[[], bool],
        limit: int | None,
    ) -> CopyResult | None:
        target = packet.route.destination_key(obj.key)
        attempt = 0
        while True:
            attempt += 1
            try:
                async with self._slot(packet.migration_id, limit, stop) as admitted:
                    if not admitted:
                        return None  # paused or cancelled while it waited for a slot
                    async with self.concurrency:
                        if stop():
                            return None  # paused or cancelled: this one waits
                        outcome = await copier.copy(
                            packet.source_bucket,
                            obj.key,
                            packet.destination_bucket,
                            target,
                            expected_size=obj.size,
                            expected_etag=obj.etag,
                            upload_key=str(object_id(packet.migration_id, obj.key)),
                            options=options,
                        )
            except s3.CopyHalted:
                return None  # paused or cancelled between parts: its outcome waits
            except s3.S3Error as error:
                if error.transient and attempt < self.attempts:
                    await asyncio.sleep(_backoff(attempt))
                    continue
                log.warning(
                    "copy of %r failed after %d attempt(s) (%s): %s",
                    obj.key,
                    attempt,
                    error.reason,
                    error,
                    extra={"key": obj.key},
                )
                return CopyResult(
                    obj.key,
                    reason=error.reason,
                    message=str(error),
                    attempts=attempt,
                    version=obj.version,
                )
            return CopyResult(
                obj.key,
                size=outcome.size,
                checksum=outcome.checksum,
                attempts=attempt,
                version=obj.version,
            )


def _backoff(attempt: int) -> float:
    """Exponential backoff with full jitter: 0.2 s, 0.4 s, 0.8 s ... at most 10 s."""
    return random.uniform(0, min(10.0, 0.2 * 2 ** (attempt - 1)))


class CopierPool:
    """One ObjectCopier per (source, destination) connection pair, reused across packets."""

    def __init__(self, settings: Settings, journal: s3.UploadJournal | None = None) -> None:
        self.settings = settings
        self.journal = journal
        self._copiers: dict[tuple[UUID, UUID], s3.ObjectCopier] = {}

    def get(
        self, pair: tuple[UUID, UUID], source: s3.Endpoint, destination: s3.Endpoint
    ) -> s3.ObjectCopier:
        copier = self._copiers.get(pair)
        if copier is None:
            config = self.settings
            copier = self._copiers[pair] = s3.ObjectCopier(
                source,
                destination,
                multipart_threshold=config.transfer_multipart_threshold,
                min_part_size=config.transfer_part_size,
                max_parts_in_flight=config.transfer_parts_per_object,
                memory_budget=config.transfer_memory,
                server_copy_threshold=config.server_copy_threshold,
                copy_part_size=config.server_copy_part_size,
                attempts=config.copy_attempts,
                journal=self.journal,
            )
            # In a thread of its own: clients take a moment, and nothing waits for them yet.
            threading.Thread(target=copier.warm_up, daemon=True).start()
        return copier
