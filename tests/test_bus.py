"""The consumer loop every service shares (cstor.bus), on a real nats-server."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

from cstor import bus, contracts
from cstor.embedded import EmbeddedNats


def paused(position: int) -> contracts.MigrationPaused:
    return contracts.MigrationPaused(
        event_id=uuid.uuid4(),
        migration_id=uuid.uuid4(),
        occurred_at=datetime.now(UTC),
        position=position,
    )


async def test_a_lone_event_is_handled_without_waiting_for_a_batch_to_fill(
    nats_server: EmbeddedNats,
) -> None:
    nc = await bus.connect(nats_server.url, "bus-test")
    js = nc.jetstream()
    await bus.ensure_stream(js, "CSTOR")
    handled: list[tuple[float, int]] = []

    async def handle(deliveries: list[bus.Delivery]) -> None:
        handled.extend((time.monotonic(), d.event.position) for d in deliveries)

    # Given a consumer taking batches of up to 500, idle for a while
    spec = bus.ConsumerSpec(stream="CSTOR", durable="bus-test", filter_subjects=["cstor.>"],
                            batch=500)  # fmt: skip
    stop = asyncio.Event()
    consuming = asyncio.create_task(bus.consume(js, spec, handle, stop))
    await asyncio.sleep(1.5)

    # When single events arrive now and then, then a burst of 700
    latencies = []
    for position in range(1, 6):
        await asyncio.sleep(0.35)
        published = time.monotonic()
        event = paused(position)
        await js.publish(contracts.subject_of(event), contracts.encoder.encode(event))
        async with asyncio.timeout(10):
            while len(handled) < position:
                await asyncio.sleep(0.005)
        latencies.append(handled[-1][0] - published)
    for position in range(6, 702):
        event = paused(position)
        await js.publish_async(contracts.subject_of(event), contracts.encoder.encode(event))
    async with asyncio.timeout(10):
        while len(handled) < 701:
            await asyncio.sleep(0.01)
    stop.set()
    await consuming
    await nc.close()

    # Then each single one was handed over at once, not when the fetch's second of waiting
    # for a fuller batch ran out (which came after half a second on average), and every
    # event was handled once, in order
    assert max(latencies) < 0.3, latencies
    assert [position for _, position in handled] == list(range(1, 702))
