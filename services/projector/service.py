"""The projector service: consumes every event and keeps the read models current.

A composition root: the bus delivers the events, `cstor.readmodel.projection` folds them
(with the position, in one transaction), and `salvage` takes a batch that keeps failing.
"""

from __future__ import annotations

import asyncio
import logging

from cstor import bus, health, stream
from cstor.readmodel.projection import project
from cstor.settings import Settings
from cstor.store.migrations import migrate
from cstor.store.pool import create_pool
from services.projector.salvage import CONSUMER, project_each

log = logging.getLogger(__name__)


async def run(settings: Settings, stop: asyncio.Event) -> None:
    """Project events until ``stop`` is set."""
    pool = await create_pool(settings.database_url, min_size=1, max_size=2)
    nc = await bus.connect(settings.nats_url, "cstor-projector")
    try:
        async with health.service_probes(settings, pool, nc):
            await migrate(pool)
            js = nc.jetstream()
            await stream.ensure_stream(js, settings.stream_name, stream.StreamLimits.of(settings))

            async def handle(deliveries: list[bus.Delivery]) -> None:
                async with pool.acquire() as conn:
                    await project(conn, [(d.stream_sequence, d.event) for d in deliveries])

            async def salvage(deliveries: list[bus.Delivery]) -> None:
                async with pool.acquire() as conn:
                    await project_each(conn, deliveries)

            spec = bus.ConsumerSpec(
                stream=settings.stream_name,
                durable=CONSUMER,
                filter_subjects=["cstor.>"],
                batch=500,
                ack_last=True,
                max_failures=settings.consumer_max_failures,
            )
            await bus.consume(js, spec, handle, stop, salvage=salvage)
    finally:
        await nc.drain()
        await pool.close()
