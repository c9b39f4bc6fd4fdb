"""The transfer service: a replica of the shared durable consumer that copies packets."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import os
import platform
import socket
import threading

import anyio
import asyncpg

from cstor import bus, contracts, health, s3, stream, subjects
from cstor.app.migrations import Migrations
from cstor.app.results import CopyResult
from cstor.domain.migration import Migration
from cstor.domain.transfer import object_id
from cstor.s3.options import CANCELLED, PAUSED
from cstor.secrets.store import SecretStoreError, secret_store_for
from cstor.settings import Settings
from cstor.store import deadletters
from cstor.store.connections import ConnectionStore
from cstor.store.migrations import migrate
from cstor.store.pool import create_pool
from services.transfer.copying import CopierPool, PacketCopier
from services.transfer.journal import PostgresUploadJournal
from services.transfer.limits import ObjectSlots, SharedBandwidth
from services.transfer.outcomes import OutcomeBatches
from services.transfer.states import MigrationStates

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8  # mallopt's parameters (malloc.h)
MMAP_THRESHOLD_MAX = 32 * 1024 * 1024
"""glibc's ceiling for M_MMAP_THRESHOLD on 64-bit: above it, buffers are always mapped."""


def keep_freed_memory(up_to: int) -> bool:
    """Have glibc keep what copies free, up to `up_to` bytes, for the next parts.

    By default it hands the source streams' multi-MiB buffers back to the kernel as
    they are freed, and the next ones are faulted in and zeroed again: 60,000 to
    100,000 page faults per 512 MiB copied. Buffers under 32 MiB now come from the
    heap, whose free top is kept up to `up_to` (the replica's memory budget), and
    every thread takes them from one arena: the streams are read in the copies'
    threads, and each of glibc's per-thread arenas would keep its own free top, so
    that the replica held up to the budget per arena (bench/transfer.py's large
    copies: a peak RSS of 576-816 MiB with a 512 MiB budget, 295 MiB with one arena).
    Nothing changes, and False, where the C library is not glibc.
    """
    if platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    kept = min(up_to, 2**31 - 1)  # an int in C
    settings = ((M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX), (M_TRIM_THRESHOLD, kept), (M_ARENA_MAX, 1))
    taken = [libc.mallopt(parameter, value) for parameter, value in settings]  # every one
    return all(taken)


HALTS = {Migration.PAUSED: PAUSED, Migration.CANCELLED: CANCELLED}
"""What a copy in flight is told when its migration stops: keep its parts, or discard them."""


class Transfer:
    """Copies each delivered packet, recording its outcomes in batches as they come."""

    def __init__(
        self,
        app: Migrations,
        connections: ConnectionStore,
        copier: PacketCopier,
        copiers: CopierPool,
        states: MigrationStates,
        pool: asyncpg.Pool,
    ) -> None:
        self.states = states
        self.pool = pool
        self.app = app
        self.connections = connections
        self.copier = copier
        self.copiers = copiers
        self.replica = f"{socket.gethostname()}:{os.getpid()}"

    async def on_packet(self, deliveries: list[bus.Delivery]) -> None:
        for delivery in deliveries:
            assert isinstance(delivery.event, contracts.PacketPlanned)
            await self.transfer(delivery.event)

    async def transfer(self, packet: contracts.PacketPlanned) -> None:
        mid, seq = packet.migration_id, packet.sequence
        # A redelivery of a packet already recorded (crash after commit, before ack): done.
        if await anyio.to_thread.run_sync(self.app.packet_transferred, mid, seq):
            return
        migration = await self.states.refresh(mid)
        status = migration.status
        if status == Migration.CANCELLED:
            # Nothing more is copied for it; the packet stays open, as it stopped. Uploads
            # a pause kept open for the resume are aborted.
            await self._discard_uploads(packet)
            return
        if status == Migration.PAUSED:
            raise bus.TransientError(f"migration {mid} is paused")
        objects = [(o.key, o.version) for o in packet.objects]
        # Outcomes recorded by an earlier delivery (before a pause, a crash): not again.
        done, earlier = await anyio.to_thread.run_sync(self.app.recorded_outcomes, mid, objects)
        todo = [obj for obj in packet.objects if obj.key not in done]
        batches = OutcomeBatches(self.app, mid, seq, objects, earlier=earlier, expected=len(todo))
        batches.start()
        try:
            attempted = await self._copy(packet, migration, todo, batches)
        except Exception:
            await batches.abandon()  # what was copied is kept: not copied again
            raise
        except BaseException:  # cancelled: the replica is stopping
            batches.cancel()
            raise
        if None in attempted:
            # Paused or cancelled mid-packet: keep what was copied; the rest waits.
            await batches.finish(close=False)
            if self.states.status(mid) == Migration.PAUSED:
                raise bus.TransientError(f"migration {mid} was paused mid-packet")
            return
        if not await batches.finish(close=True):
            log.info("packet %d of %s was recorded by another replica", seq, mid)
            return
        log.info(
            "replica %s transferred packet %d of %s: %d copied, %d failed",
            self.replica,
            seq,
            mid,
            batches.mine.copied,
            batches.mine.failed,
        )

    async def _copy(
        self,
        packet: contracts.PacketPlanned,
        migration: Migration,
        todo: list[contracts.PacketObject],
        batches: OutcomeBatches,
    ) -> list[CopyResult | None]:
        """Copy `todo`, each outcome handed to `batches` as it comes; None for those a
        pause or cancel (or a failure to record) stopped before they began."""
        mid = packet.migration_id
        copier = await self._copier(packet)
        limits = migration.limits
        rate = limits.get("bandwidth_bytes_per_second")
        options = s3.CopyOptions(
            storage_class=migration.storage_class,
            throttle=SharedBandwidth(self.pool, mid, rate) if rate else None,
            halted=lambda: HALTS.get(self.states.status(mid), ""),
        )
        return await self.copier.copy_packet(
            packet,
            copier,
            todo,
            stop=lambda: self.states.stopped(mid) or batches.broken,
            options=options,
            concurrent_objects=limits.get("concurrent_objects"),
            on_result=batches.add,
        )

    async def _copier(self, packet: contracts.PacketPlanned) -> s3.ObjectCopier:
        pair = (packet.source_connection_id, packet.destination_connection_id)
        try:
            source = await self.connections.endpoint(pair[0])
            destination = await self.connections.endpoint(pair[1])
        except SecretStoreError as error:
            # Unreachable or refused: the packet is redelivered, with backoff, until it works.
            raise bus.TransientError(str(error)) from None
        return self.copiers.get(pair, source, destination)

    async def _discard_uploads(self, packet: contracts.PacketPlanned) -> None:
        """Abort the multipart uploads the journal keeps for the packet's objects."""
        journal, settings = self.copiers.journal, self.copiers.settings
        if journal is None:
            return
        large = min(settings.transfer_multipart_threshold, settings.server_copy_threshold)
        keys = [
            str(object_id(packet.migration_id, obj.key))
            for obj in packet.objects
            if obj.size > large
        ]
        kept = [key for key in keys if await journal.find(key) is not None]
        if not kept:
            return
        try:
            copier = await self._copier(packet)
        except LookupError as error:  # a connection deleted since: nothing to abort with
            log.warning(
                "could not abort %d upload(s) of %s: %s", len(kept), packet.migration_id, error
            )
            return
        for key in kept:
            if await copier.discard(key):
                log.info("aborted upload %s: its migration was cancelled", key, extra={"key": key})


async def run(settings: Settings, stop: asyncio.Event) -> None:
    """Copy packets until ``stop`` is set."""
    keep_freed_memory(settings.transfer_memory)  # before any thread takes an arena
    # The S3 model is parsed while the service connects, not during its first copy.
    threading.Thread(target=s3.load_model, daemon=True).start()
    app = Migrations(settings.eventsourcing_env())
    pool = await create_pool(settings.database_url, min_size=1, max_size=4)
    nc = await bus.connect(settings.nats_url, "cstor-transfer")
    slots = ObjectSlots(settings.database_url)  # connects when a limited migration needs it
    try:
        async with health.service_probes(settings, pool, nc):
            js = nc.jetstream()
            await stream.ensure_stream(js, settings.stream_name, stream.StreamLimits.of(settings))
            await migrate(pool)
            journal = PostgresUploadJournal(pool)
            states = MigrationStates(app)
            await states.follow(nc)
            transfer = Transfer(
                app,
                ConnectionStore(pool, secret_store_for(settings)),
                PacketCopier(
                    asyncio.Semaphore(settings.transfer_concurrency), settings.copy_attempts, slots
                ),
                CopierPool(settings, journal),
                states,
                pool,
            )
            spec = bus.ConsumerSpec(
                stream=settings.stream_name,
                durable="transfer",
                filter_subjects=[subjects.PACKET_PLANNED],
                workers=2,
                ack_wait=settings.transfer_ack_wait,
                max_failures=settings.consumer_max_failures,
            )
            dead_letters = deadletters.PostgresDeadLetters(pool)
            await bus.consume(js, spec, transfer.on_packet, stop, dead_letters=dead_letters)
    finally:
        await nc.drain()
        await slots.close()
        await pool.close()
        app.close()
