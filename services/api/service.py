"""Run the api under uvicorn until stopped: in this process, or in worker processes."""

from __future__ import annotations

import asyncio
import ctypes

import anyio
import uvicorn
from nats.aio.client import Client as NATS

from cstor import bus, stream
from cstor.app.migrations import Migrations
from cstor.settings import Settings
from cstor.store.migrations import migrate_url
from cstor.store.relay import OutboxRelay
from services.api.app import create_app
from services.api.workers import WorkerPool, uvicorn_config


async def run(settings: Settings, stop: asyncio.Event) -> None:
    """Serve the api (and run the outbox relay) until ``stop`` is set.

    One worker (CSTOR_API_WORKERS=1) serves in this process, the relay in its lifespan.
    More serve in worker processes of their own (services.api.workers) while this
    process runs the relay, once, and starts again any worker that died.
    """
    if settings.api_workers <= 1:
        await _serve_here(settings, stop)
        return
    workers = WorkerPool(settings)
    workers.start()
    try:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(_relay(settings, stop, workers.nats_connected))
            tasks.create_task(_supervise(workers, stop))
    finally:
        await anyio.to_thread.run_sync(workers.stop)


async def _serve_here(settings: Settings, stop: asyncio.Event) -> None:
    server = uvicorn.Server(uvicorn_config(create_app(settings), settings))
    serving = asyncio.create_task(server.serve())
    await stop.wait()
    server.should_exit = True
    await serving


async def _relay(settings: Settings, stop: asyncio.Event, connected: ctypes.c_bool) -> None:
    """The outbox relay, as the api's lifespan runs it when the api is one process.

    ``connected`` follows its NATS connection, every half second, for the workers' probes.
    """
    await migrate_url(settings.database_url)  # its workers may not have started yet
    migrations = Migrations(settings.eventsourcing_env())
    nc = await bus.connect(settings.nats_url, "cstor-api-relay")
    following = asyncio.create_task(_follow_connection(nc, connected, stop))
    try:
        await stream.ensure_stream(
            nc.jetstream(), settings.stream_name, stream.StreamLimits.of(settings)
        )
        relay = OutboxRelay(migrations, nc, settings.database_url, settings.stream_name, "api")
        await relay.run(stop)
    finally:
        following.cancel()
        await nc.drain()
        migrations.close()


async def _follow_connection(nc: NATS, connected: ctypes.c_bool, stop: asyncio.Event) -> None:
    while not stop.is_set():
        connected.value = nc.is_connected
        with anyio.move_on_after(0.5):
            await stop.wait()
    connected.value = False


async def _supervise(workers: WorkerPool, stop: asyncio.Event) -> None:
    while not stop.is_set():
        with anyio.move_on_after(1.0):
            await stop.wait()
        workers.restart_exited()
