"""The planner service: turns a requested migration into packets, and completes migrations.

It runs an outbox relay too, a standby to the api's: one of them publishes at a time, under
the relay's lock, and when the active one's process dies this one takes over within seconds."""

from __future__ import annotations

import asyncio
import logging
from uuid import UUID

import anyio

from cstor import bus, contracts, health, s3, stream, subjects
from cstor.app.migrations import Migrations
from cstor.domain.exceptions import MigrationStateError
from cstor.domain.migration import Migration
from cstor.domain.planning import PacketLimits
from cstor.secrets.store import SecretStoreError, secret_store_for
from cstor.settings import Settings
from cstor.store import deadletters
from cstor.store.connections import ConnectionStore
from cstor.store.migrations import migrate
from cstor.store.pool import create_pool
from cstor.store.relay import OutboxRelay
from services.planner.planning import plan_migration

log = logging.getLogger(__name__)


class Planner:
    """Handles migration requests (planning) and packet closings (completion)."""

    def __init__(self, app: Migrations, connections: ConnectionStore, limits: PacketLimits) -> None:
        self.app = app
        self.connections = connections
        self.limits = limits

    async def on_requested(self, deliveries: list[bus.Delivery]) -> None:
        for delivery in deliveries:
            assert isinstance(delivery.event, contracts.MigrationRequested)
            await self.plan(delivery.event.migration_id)

    async def plan(self, migration_id: UUID) -> None:
        """List and plan a migration; a redelivered request re-plans idempotently."""
        try:
            migration = await anyio.to_thread.run_sync(self.app.start_planning, migration_id)
        except MigrationStateError:
            migration = await anyio.to_thread.run_sync(self.app.get, migration_id)
            paused = migration.status == Migration.PAUSED
            if paused and migration.paused_from == Migration.REQUESTED:
                raise bus.TransientError(f"migration {migration_id} is paused") from None
            planning = migration.status == Migration.PLANNING or (
                migration.status == Migration.PAUSED and migration.paused_from == Migration.PLANNING
            )
            if not planning:
                return  # planned already, or cancelled: nothing to do for this redelivery
        try:
            source = await self.connections.endpoint(migration.source_connection_id)
            destination = await self.connections.endpoint(migration.destination_connection_id)
            totals = await anyio.to_thread.run_sync(
                plan_migration, self.app, migration, source, destination, self.limits
            )
        except s3.S3Error as error:
            if error.transient:
                raise bus.TransientError(str(error)) from error
            await self._fail(migration_id, error.reason, str(error))
            return
        except LookupError as error:
            await self._fail(migration_id, "no-connection", str(error))
            return
        except SecretStoreError as error:
            if error.transient:
                raise bus.TransientError(str(error)) from None
            await self._fail(migration_id, "secret-unavailable", str(error))
            return
        await anyio.to_thread.run_sync(self.app.finish_planning, migration_id, totals)
        log.info(
            "planned %s: %d objects in %d packets", migration_id, totals.objects, totals.packets
        )
        await anyio.to_thread.run_sync(self.app.complete_if_done, migration_id)

    async def _fail(self, migration_id: UUID, reason: str, message: str) -> None:
        def fail() -> None:
            self.app.fail(migration_id, reason=reason, message=message)

        await anyio.to_thread.run_sync(fail)

    async def on_progress(self, deliveries: list[bus.Delivery]) -> None:
        for migration_id in {d.event.migration_id for d in deliveries}:
            if await anyio.to_thread.run_sync(self.app.complete_if_done, migration_id):
                # A batch may hold several migrations' progress: this line names its own.
                log.info(
                    "migration %s completed", migration_id, extra={"migration_id": migration_id}
                )


async def run(settings: Settings, stop: asyncio.Event) -> None:
    """Plan and complete migrations, and stand by to relay the outbox, until ``stop`` is set."""
    app = Migrations(settings.eventsourcing_env())
    pool = await create_pool(settings.database_url, min_size=1, max_size=4)
    nc = await bus.connect(settings.nats_url, "cstor-planner")
    try:
        async with health.service_probes(settings, pool, nc):
            await migrate(pool)
            js = nc.jetstream()
            await stream.ensure_stream(js, settings.stream_name, stream.StreamLimits.of(settings))
            limits = PacketLimits(
                max_bytes=settings.packet_max_bytes, max_objects=settings.packet_max_objects
            )
            planner = Planner(app, ConnectionStore(pool, secret_store_for(settings)), limits)
            dead_letters = deadletters.PostgresDeadLetters(pool)
            requested = bus.ConsumerSpec(
                stream=settings.stream_name,
                durable="planner",
                filter_subjects=[subjects.MIGRATION_REQUESTED],
                workers=2,
                ack_wait=settings.planner_ack_wait,
                max_failures=settings.consumer_max_failures,
            )
            progress = bus.ConsumerSpec(
                stream=settings.stream_name,
                durable="planner-completion",
                filter_subjects=[subjects.PACKET_TRANSFERRED, subjects.MIGRATION_RESUMED],
                batch=100,
                max_failures=settings.consumer_max_failures,
            )
            relay = OutboxRelay(app, nc, settings.database_url, settings.stream_name, "planner")
            await asyncio.gather(
                relay.run(stop),
                bus.consume(js, requested, planner.on_requested, stop, dead_letters=dead_letters),
                bus.consume(js, progress, planner.on_progress, stop, dead_letters=dead_letters),
            )
    finally:
        await nc.drain()
        await pool.close()
        app.close()
