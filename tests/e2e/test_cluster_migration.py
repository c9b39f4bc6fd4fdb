"""A migration on a three-node JetStream cluster (R3 stream), its stream leader killed
mid-copy: it completes, counts exact, and the stream holds each event once."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest
from nats.js import JetStreamContext

from cstor import bus, contracts
from launcher.embedded import EmbeddedNatsCluster, EmbeddedS3
from tests.stack import RunningCstor, s3_client_for

OBJECTS = 800


async def _leader(js: JetStreamContext) -> str:
    deadline = time.monotonic() + 60
    while True:
        try:
            info = await js.stream_info("CSTOR")
            if info.cluster and info.cluster.leader:
                return info.cluster.leader
        except Exception:
            assert time.monotonic() < deadline, "the stream has no leader"
        await asyncio.sleep(0.3)


async def _event_ids(js: JetStreamContext) -> list[str]:
    """Every message's event id, read from the start of the stream."""
    sub = await js.pull_subscribe("cstor.>", stream="CSTOR")
    ids: list[str] = []
    while True:
        try:
            msgs = await sub.fetch(500, timeout=3)
        except Exception:
            break
        for msg in msgs:
            ids.append(str(contracts.decoder.decode(msg.data).event_id))
            await msg.ack()
    await sub.unsubscribe()
    return ids


@pytest.mark.stack(nats_cluster=3)
async def test_a_migration_completes_through_the_death_of_the_stream_leader(
    cstor: RunningCstor,
    nats_cluster: EmbeddedNatsCluster,
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    make_bucket: object,
) -> None:
    assert callable(make_bucket)
    source_bucket, dest_bucket = make_bucket(s3_source), make_bucket(s3_destination)
    client = s3_client_for(s3_source)
    for n in range(OBJECTS):
        client.put_object(Bucket=source_bucket, Key=f"k{n:04}", Body=b"x" * (n % 50))
    nc = await bus.connect(nats_cluster.url, "cluster-e2e")
    js = nc.jetstream()

    # Given a migration copying on an R3 stream
    migration_id = await asyncio.to_thread(
        cstor.migrate,
        await asyncio.to_thread(cstor.connect, s3_source),
        source_bucket,
        await asyncio.to_thread(cstor.connect, s3_destination),
        dest_bucket,
    )
    copying = await asyncio.to_thread(
        cstor.wait_until, migration_id, lambda s: s["objects_copied"] > 0, 120.0
    )
    assert (await js.stream_info("CSTOR")).config.num_replicas == 3

    # When the stream's leader is killed (kill -9) mid-copy
    victim = nats_cluster.node(await _leader(js))
    assert victim.pid is not None
    os.kill(victim.pid, signal.SIGKILL)
    assert copying["objects_copied"] < OBJECTS, "the kill came too late"

    # Then the migration completes with every object copied once
    state = await asyncio.to_thread(cstor.wait_finished, migration_id, 300.0)
    assert state["status"] == "completed", state
    assert state["objects_planned"] == state["objects_copied"] == OBJECTS
    assert state["objects_failed"] == 0
    listed = client.list_objects_v2(Bucket=source_bucket, MaxKeys=1000)["KeyCount"]
    dest = s3_client_for(s3_destination).list_objects_v2(Bucket=dest_bucket, MaxKeys=1000)
    assert dest["KeyCount"] == listed == OBJECTS
    # And the stream holds no event twice
    ids = await _event_ids(js)
    assert len(ids) == len(set(ids)), "an event is on the stream twice"
    await nc.close()
    victim.stop()
