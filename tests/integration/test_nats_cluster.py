"""A three-node JetStream cluster (launcher.embedded.EmbeddedNatsCluster): an R3 stream made
and raised through cstor.stream, events published and consumed through cstor.bus, and
both going on after the stream leader is killed."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from nats.js import JetStreamContext

from cstor import bus, contracts, stream
from launcher.embedded import EmbeddedNatsCluster, start_nats_cluster


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[EmbeddedNatsCluster]:
    with start_nats_cluster(tmp_path / "cluster", 3) as started:
        yield started


def paused(position: int) -> contracts.MigrationPaused:
    return contracts.MigrationPaused(
        event_id=uuid.uuid4(),
        migration_id=uuid.uuid4(),
        occurred_at=datetime.now(UTC),
        position=position,
    )


async def publish(js: JetStreamContext, positions: range) -> None:
    """Publish a MigrationPaused at each position, each acked by the stream."""
    deadline = time.monotonic() + 60
    for position in positions:
        event = paused(position)
        while True:  # a leader election in progress answers no one for a moment
            try:
                await js.publish(
                    contracts.subject_of(event),
                    contracts.encoder.encode(event),
                    headers={"Nats-Msg-Id": str(event.event_id)},
                    timeout=5,
                )
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)


async def leader_of(js: JetStreamContext, name: str = "CSTOR") -> str:
    deadline = time.monotonic() + 60
    while True:
        try:
            info = await js.stream_info(name)
            if info.cluster and info.cluster.leader:
                return info.cluster.leader
        except Exception:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.3)


async def test_the_cluster_forms_and_holds_an_r3_stream_through_a_leaders_death(
    cluster: EmbeddedNatsCluster,
) -> None:
    # Given a client that knows all three servers, and an R3 stream made by cstor
    nc = await bus.connect(cluster.url, "cluster-test")
    js = nc.jetstream()
    await stream.ensure_stream(js, "CSTOR", stream.StreamLimits(replicas=3))
    info = await js.stream_info("CSTOR")
    assert info.config.num_replicas == 3
    assert info.cluster is not None
    assert len(info.cluster.replicas or []) == 2
    await publish(js, range(1, 51))

    seen: list[int] = []

    async def handle(deliveries: list[bus.Delivery]) -> None:
        seen.extend(d.event.position for d in deliveries)

    spec = bus.ConsumerSpec(stream="CSTOR", durable="folds", filter_subjects=["cstor.>"],
                            batch=10, ack_last=True)  # fmt: skip
    stop = asyncio.Event()
    consuming = asyncio.create_task(bus.consume(js, spec, handle, stop))
    deadline = time.monotonic() + 60
    while len(seen) < 50 and time.monotonic() < deadline:
        await asyncio.sleep(0.3)

    # When the stream's leader is killed (kill -9) and publishing goes on
    leader = await leader_of(js)
    victim = cluster.node(leader)
    assert victim.pid is not None
    os.kill(victim.pid, signal.SIGKILL)
    await publish(js, range(51, 101))

    # Then another node leads, and the consumer gets every event, once each, in order
    deadline = time.monotonic() + 90
    while len(seen) < 100 and time.monotonic() < deadline:
        await asyncio.sleep(0.3)
    stop.set()
    await consuming
    assert sorted(set(seen)) == list(range(1, 101))
    assert await leader_of(js) != leader
    assert (await js.stream_info("CSTOR")).state.messages == 100
    consumer = await js.consumer_info("CSTOR", "folds")
    assert consumer.config.num_replicas in (0, None, 3)  # follows the stream's
    await nc.close()
    victim.stop()


async def test_an_r1_stream_is_raised_to_three_replicas_at_start(
    cluster: EmbeddedNatsCluster,
) -> None:
    nc = await bus.connect(cluster.url, "cluster-test")
    js = nc.jetstream()
    # Given the stream made with one replica, holding events
    await stream.ensure_stream(js, "CSTOR")
    await publish(js, range(1, 21))
    assert (await js.stream_info("CSTOR")).config.num_replicas == 1

    # When a process starts with CSTOR_STREAM_REPLICAS=3
    await stream.ensure_stream(js, "CSTOR", stream.StreamLimits(replicas=3))

    # Then the stream has three, its events copied to the two new ones
    deadline = time.monotonic() + 60
    while True:
        info = await js.stream_info("CSTOR")
        replicas = (info.cluster.replicas or []) if info.cluster else []
        if len(replicas) == 2 and all(r.current for r in replicas):
            break
        assert time.monotonic() < deadline, info.cluster
        await asyncio.sleep(0.3)
    assert info.config.num_replicas == 3
    assert info.state.messages == 20
    await nc.close()
