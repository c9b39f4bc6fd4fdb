"""The event feed on NATS reads as plain JSON whose subjects name the migration and the event."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import nats

from launcher.embedded import EmbeddedS3
from tests.stack import RunningCstor, s3_client_for


async def test_subscribers_see_self_explaining_json_events(
    cstor: RunningCstor,
    nats_url: str,
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    make_bucket: Callable[[EmbeddedS3], str],
) -> None:
    # Given a subscriber on cstor.> (what `nats sub 'cstor.>'` does)
    nc = await nats.connect(nats_url)
    received: list[tuple[str, dict[str, object]]] = []

    async def collect(msg: nats.aio.msg.Msg) -> None:
        received.append((msg.subject, json.loads(msg.data)))

    await nc.subscribe("cstor.>", cb=collect)
    source_bucket, dest_bucket = make_bucket(s3_source), make_bucket(s3_destination)
    for n in range(3):
        s3_client_for(s3_source).put_object(Bucket=source_bucket, Key=f"k{n}", Body=b"x" * n)

    # When a migration runs
    migration_id = await asyncio.to_thread(
        cstor.migrate,
        await asyncio.to_thread(cstor.connect, s3_source),
        source_bucket,
        await asyncio.to_thread(cstor.connect, s3_destination),
        dest_bucket,
    )
    await asyncio.to_thread(cstor.wait_finished, migration_id)
    await asyncio.sleep(0.5)
    await nc.close()

    # Then its events arrived as JSON, each subject naming the migration and the event
    mine = [(s, e) for s, e in received if e["migration_id"] == migration_id]
    subjects = [s for s, _ in mine]
    assert subjects[0] == f"cstor.migration.{migration_id}.requested"
    assert subjects[-1] == f"cstor.migration.{migration_id}.completed"
    assert subjects.count(f"cstor.object.{migration_id}.copied") == 3
    assert f"cstor.packet.{migration_id}.planned" in subjects
    for subject, event in mine:
        aggregate, mid, name = subject.split(".")[1:]
        assert mid == migration_id
        assert event["type"] == f"{aggregate}.{name}"
        assert {"event_id", "occurred_at", "position"} <= event.keys()
    # And each object event names its object's key, so a reader of the feed sees which
    objects = [(s, e) for s, e in mine if s.startswith("cstor.object.")]
    assert objects
    assert all(e["key"] in ("k0", "k1", "k2") for _, e in objects)
    copied = {e["key"] for s, e in objects if s.endswith(".copied")}
    assert copied == {"k0", "k1", "k2"}
    # And no secret key ever travels on the bus
    assert s3_source.secret_key not in json.dumps(received)
    assert s3_destination.secret_key not in json.dumps(received)
