"""The consumer loop every service shares (cstor.bus), on a real nats-server."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from nats.js import JetStreamContext

from cstor import bus, contracts, stream
from launcher.embedded import EmbeddedNats


def paused(position: int) -> contracts.MigrationPaused:
    return contracts.MigrationPaused(
        event_id=uuid.uuid4(),
        migration_id=uuid.uuid4(),
        occurred_at=datetime.now(UTC),
        position=position,
    )


async def publish(js: JetStreamContext, positions: range) -> None:
    """Publish a MigrationPaused at each position, and wait until the stream has them."""
    for position in positions:
        event = paused(position)
        await js.publish_async(contracts.subject_of(event), contracts.encoder.encode(event))
    await js.publish_async_completed()


@pytest.fixture
async def js(nats_server: EmbeddedNats) -> AsyncIterator[JetStreamContext]:
    """JetStream on a fresh nats-server, with the CSTOR stream; closed after the test."""
    nc = await bus.connect(nats_server.url, "bus-test")
    js = nc.jetstream()
    await stream.ensure_stream(js, "CSTOR")
    yield js
    await nc.close()


async def test_a_lone_event_is_handled_without_waiting_for_a_batch_to_fill(
    js: JetStreamContext,
) -> None:
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

    # Then each single one was handed over at once, not when the fetch's second of waiting
    # for a fuller batch ran out (which came after half a second on average), and every
    # event was handled once, in order
    assert max(latencies) < 0.3, latencies
    assert [position for _, position in handled] == list(range(1, 702))


async def test_a_consumer_acking_the_last_of_each_batch_settles_every_message(
    js: JetStreamContext,
) -> None:
    handled: list[int] = []

    async def handle(deliveries: list[bus.Delivery]) -> None:
        handled.extend(d.event.position for d in deliveries)

    async def consume_until(count: int, spec: bus.ConsumerSpec) -> None:
        stop = asyncio.Event()
        consuming = asyncio.create_task(bus.consume(js, spec, handle, stop))
        async with asyncio.timeout(10):
            while len(handled) < count:
                await asyncio.sleep(0.01)
        stop.set()
        await consuming

    # Given a durable made acking each message, which handled 10 events
    explicit = bus.ConsumerSpec(stream="CSTOR", durable="folds", filter_subjects=["cstor.>"],
                                batch=500)  # fmt: skip
    await publish(js, range(1, 11))
    await consume_until(10, explicit)

    # When it is consumed acking only the last of each batch, and 1,200 more arrive
    handled.clear()
    await publish(js, range(11, 1211))
    await consume_until(1210, dataclasses.replace(explicit, ack_last=True))

    # Then the durable was made again from the start of the stream (its handler skips
    # what it applied, as the projector does), every message came once, in order, and
    # the stream holds none of them as unacknowledged: the last of each batch acked all
    assert handled == list(range(1, 1211))
    info = await js.consumer_info("CSTOR", "folds")
    assert info.num_ack_pending == 0
    assert info.num_pending == 0


async def test_an_ordered_consumer_tries_a_failed_batch_again_before_any_later_one(
    js: JetStreamContext,
) -> None:
    applied: list[int] = []
    failures = 0

    async def handle(deliveries: list[bus.Delivery]) -> None:
        nonlocal failures
        if failures == 0:
            # The read model's database is away for a moment, while more events arrive
            failures += 1
            await publish(js, range(6, 11))
            raise RuntimeError("connection refused")
        applied.extend(d.event.position for d in deliveries)

    # Given an ordered consumer (one worker, acking the last of each batch)
    spec = bus.ConsumerSpec(stream="CSTOR", durable="folds", filter_subjects=["cstor.>"],
                            batch=500, ack_last=True)  # fmt: skip
    await publish(js, range(1, 6))
    stop = asyncio.Event()
    consuming = asyncio.create_task(bus.consume(js, spec, handle, stop))

    # When handling its first batch fails once
    async with asyncio.timeout(10):
        while len(applied) < 10:
            await asyncio.sleep(0.01)
    stop.set()
    await consuming

    # Then that batch was applied first, and everything once, in order
    assert failures == 1
    assert applied == list(range(1, 11))
    info = await js.consumer_info("CSTOR", "folds")
    assert info.num_ack_pending == 0
