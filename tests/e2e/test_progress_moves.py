"""Progress that moves: outcomes are recorded within a second or so of each copy, however
slow the migration, and a replica killed between two of a packet's batches loses and
doubles nothing."""

from __future__ import annotations

import asyncio
import re
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest

from cstor.app.migrations import Migrations
from cstor.app.results import CopyResult, PlanTotals
from cstor.domain.planning import PacketDraft, PlannedObject
from cstor.domain.transfer import object_id
from cstor.settings import Settings
from cstor.store.migrations import migrate_url
from launcher.embedded import EmbeddedS3
from services.transfer.outcomes import OutcomeBatches
from tests.stack import RunningCstor, s3_client_for

MakeBucket = Callable[[EmbeddedS3], str]
SIZE = 2048
RATE = 10 * 1024  # bytes per second: five 2 KiB objects a second
TRANSFERRED = re.compile(r"transferred packet \d+ of (\S+): (\d+) copied")


def put_objects(server: EmbeddedS3, bucket: str, count: int) -> list[str]:
    client = s3_client_for(server)
    keys = [f"slow/{n:03d}" for n in range(count)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda k: client.put_object(Bucket=bucket, Key=k, Body=b"x" * SIZE), keys))
    return keys


def destination_objects(server: EmbeddedS3, bucket: str) -> dict[str, tuple[Any, str]]:
    """Each key at the destination: (LastModified, ETag)."""
    found = {}
    pages = s3_client_for(server).get_paginator("list_objects_v2").paginate(Bucket=bucket)
    for page in pages:
        for obj in page.get("Contents", []):
            found[obj["Key"]] = (obj["LastModified"], obj["ETag"])
    return found


def recorded_outcomes(database_url: str) -> tuple[int, int, set[UUID]]:
    """Outcome events in the store: how many, for how many objects, and which objects."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT originator_id FROM cstor_events"
            " WHERE topic LIKE '%ObjectTransfer.Copied' OR topic LIKE '%ObjectTransfer.Failed'"
        ).fetchall()
    ids = [row[0] for row in rows]
    return len(ids), len(set(ids)), set(ids)


def test_a_slow_migration_shows_copies_within_seconds_and_its_count_rises_steadily(
    cstor: RunningCstor,
    database_url: str,
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    make_bucket: MakeBucket,
) -> None:
    # Given 80 objects of 2 KiB, one packet, copied at 10 KiB/s: about 16 s
    count = 80
    source_bucket, dest_bucket = make_bucket(s3_source), make_bucket(s3_destination)
    put_objects(s3_source, source_bucket, count)

    # When the migration runs, watched at the destination and through the API
    migration_id = cstor.migrate(
        cstor.connect(s3_source), source_bucket, cstor.connect(s3_destination), dest_bucket,
        limits={"bandwidth_bytes_per_second": RATE},
    )  # fmt: skip
    first_copy = first_shown = None
    seen: list[tuple[float, int]] = []  # (when, objects_copied) while it runs
    deadline = time.monotonic() + 120
    while True:
        assert time.monotonic() < deadline, f"not finished in 120 s: {seen[-5:]}"
        state = cstor.api.get(f"/api/v1/migrations/{migration_id}").json()
        now = time.monotonic()
        if state["status"] in ("completed", "failed"):
            seen.append((now, state["objects_copied"]))
            break
        if first_copy is None and destination_objects(s3_destination, dest_bucket):
            first_copy = now
        if state["objects_copied"] > 0 and first_shown is None:
            first_shown = now
        seen.append((now, state["objects_copied"]))
        time.sleep(0.25)

    # Then the first copies were shown within 3 s of reaching the destination
    assert first_copy is not None, "the migration ended before a copy was seen"
    assert first_shown is not None, f"no copy shown while it ran: {seen[-5:]}"
    assert first_shown - first_copy <= 3.0, (first_copy, first_shown)
    # And from then on the count rose at least every 3 s, many times, never falling, up to
    # the end
    counts = [copied for when, copied in seen if when >= first_shown]
    assert counts == sorted(counts)
    assert len(set(counts)) >= 8, counts
    rises = [when for (_, before), (when, copied) in pairwise(seen) if copied > before]
    gaps = [later - earlier for earlier, later in pairwise([first_shown, *rises])]
    assert max(gaps, default=0.0) <= 3.0, gaps
    # And it ended with every object copied exactly once
    assert state["status"] == "completed", state
    assert state["objects_copied"] == state["objects_planned"] == count
    assert len(destination_objects(s3_destination, dest_bucket)) == count
    total, distinct, _ = recorded_outcomes(database_url)
    assert (total, distinct) == (count, count)


def test_a_replica_killed_between_batches_of_a_packet_copies_and_counts_each_object_once(
    cstor: RunningCstor,
    database_url: str,
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    make_bucket: MakeBucket,
) -> None:
    # Given a slow migration of 60 objects in one packet, some of whose outcomes are recorded
    count = 60
    source_bucket, dest_bucket = make_bucket(s3_source), make_bucket(s3_destination)
    keys = put_objects(s3_source, source_bucket, count)
    migration_id = cstor.migrate(
        cstor.connect(s3_source), source_bucket, cstor.connect(s3_destination), dest_bucket,
        limits={"bandwidth_bytes_per_second": RATE},
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while (recorded := recorded_outcomes(database_url)[0]) < 10:
        assert time.monotonic() < deadline, "no outcome was recorded in 60 s"
        time.sleep(0.05)
    assert recorded < count, "the packet's outcomes were recorded only at its end"

    # When the transfer replica is killed with SIGKILL before the packet is done
    victim = cstor.services.processes["transfer"]
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    total, distinct, ids = recorded_outcomes(database_url)
    assert total == distinct < count
    by_id = {object_id(UUID(migration_id), key): key for key in keys}
    recorded_keys = {by_id[i] for i in ids}
    at_kill = destination_objects(s3_destination, dest_bucket)
    assert recorded_keys <= set(at_kill)
    log = cstor.settings.data_dir / "logs" / "transfer.log"
    log_at_kill = log.stat().st_size
    # and a replica takes its place
    time.sleep(1.1)  # so that an object copied again would show a later LastModified
    cstor.services.restart_exited()

    # Then the migration completes with every object counted exactly once
    state = cstor.wait_finished(migration_id, timeout=120)
    assert state["status"] == "completed", state
    assert state["objects_copied"] == state["objects_planned"] == count
    assert state["bytes_copied"] == count * SIZE
    assert recorded_outcomes(database_url)[:2] == (count, count)
    after = destination_objects(s3_destination, dest_bucket)
    assert len(after) == count
    # And no object recorded before the kill was copied again: each is as it was then,
    # and the new replica copied only the others
    assert {key: after[key] for key in recorded_keys} == {
        key: at_kill[key] for key in recorded_keys
    }
    copied_after = [
        int(match.group(2))
        for match in TRANSFERRED.finditer(log.read_text()[log_at_kill:])
        if match.group(1) == migration_id
    ]
    assert copied_after == [count - total]


# -- the batches themselves, against the real event store (no copying) ----------------


@pytest.fixture
def store(database_url: str) -> Iterator[tuple[Migrations, UUID]]:
    """The event store, and a migration planned as one packet of ten objects."""
    asyncio.run(migrate_url(database_url))
    app = Migrations(Settings(database_url=database_url).eventsourcing_env())
    try:
        migration_id = app.request(
            name="batches", owner="test", source_connection_id=uuid4(), source_bucket="a",
            source_prefix="", destination_connection_id=uuid4(), destination_bucket="b",
            destination_prefix="",
        )  # fmt: skip
        migration = app.start_planning(migration_id)
        packet = PacketDraft(planned=[PlannedObject(key, 100, "etag") for key in PACKET])
        app.plan_packet(migration, 0, packet, PlanTotals(packets=1, objects=len(PACKET)))
        app.finish_planning(migration_id, PlanTotals(packets=1, objects=len(PACKET)))
        yield app, migration_id
    finally:
        app.close()


PACKET = [f"k{n}" for n in range(10)]
OBJECTS = [(key, 1) for key in PACKET]  # each at its planned version


def copied(key: str) -> CopyResult:
    return CopyResult(key, size=100, checksum="md5:00")


def batches_of(
    app: Migrations, migration_id: UUID, expected: int = len(PACKET), **extra: Any
) -> OutcomeBatches:
    done, earlier = app.recorded_outcomes(migration_id, OBJECTS)
    batches = OutcomeBatches(
        app, migration_id, 0, OBJECTS, earlier=earlier, expected=expected - len(done), **extra
    )
    batches.start()
    return batches


def transactions(database_url: str, migration_id: UUID) -> list[int]:
    """How many outcome events each transaction that recorded some wrote, in order."""
    ids = [object_id(migration_id, key) for key in PACKET]
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT count(*) FROM cstor_events WHERE originator_id = ANY(%s)"
            " AND originator_version = 2 GROUP BY xmin::text ORDER BY min(notification_id)",
            (ids,),
        ).fetchall()
    return [row[0] for row in rows]


def closing(app: Migrations, migration_id: UUID) -> list[tuple[int, int, int]]:
    """(copied, failed, bytes) of each Packet.Transferred event of the migration."""
    found = []
    for notification in app.notifications(0, 10_000):
        event = app.mapper.to_domain_event(notification)
        if type(event).__qualname__ == "Packet.Transferred":
            found.append((event.copied, event.failed, event.bytes))  # type: ignore[attr-defined]
    return found


async def test_fast_outcomes_make_one_transaction_with_the_close(
    store: tuple[Migrations, UUID], database_url: str
) -> None:
    # Given a delivery of the packet
    app, migration_id = store
    batches = batches_of(app, migration_id)

    # When all ten outcomes come within a second
    for key in PACKET:
        batches.add(copied(key))
        await asyncio.sleep(0.01)
    assert await batches.finish(close=True)

    # Then they and the close were one transaction
    assert transactions(database_url, migration_id) == [10]
    assert closing(app, migration_id) == [(10, 0, 1000)]


async def test_slow_outcomes_are_recorded_a_second_after_the_first_waits_and_by_count(
    store: tuple[Migrations, UUID], database_url: str
) -> None:
    # Given a delivery of the packet recording within 0.3 s, or by three
    app, migration_id = store
    batches = batches_of(app, migration_id, within=0.3, most=3)

    # When two outcomes come, then nothing for a while
    batches.add(copied("k0"))
    batches.add(CopyResult("k1", reason="not-found", message="gone"))
    await asyncio.sleep(0.2)
    # Then they are not recorded yet, then are, together, within 0.3 s of the first
    assert transactions(database_url, migration_id) == []
    await asyncio.sleep(0.3)
    assert transactions(database_url, migration_id) == [2]
    assert closing(app, migration_id) == []  # the packet stays open

    # When three come at once, then the last five, and the packet is finished
    for key in PACKET[2:5]:
        batches.add(copied(key))
    await asyncio.sleep(0.1)
    assert transactions(database_url, migration_id) == [2, 3]
    for key in PACKET[5:]:
        batches.add(copied(key))
    assert await batches.finish(close=True)

    # Then the packet's last outcomes went with its close, counting every batch
    assert transactions(database_url, migration_id) == [2, 3, 5]
    assert closing(app, migration_id) == [(9, 1, 900)]
    assert (batches.mine.copied, batches.mine.failed) == (9, 1)


async def test_a_delivery_after_a_crash_between_batches_records_only_the_rest_once(
    store: tuple[Migrations, UUID], database_url: str
) -> None:
    # Given a delivery that recorded four outcomes in a batch, then died
    app, migration_id = store
    first = batches_of(app, migration_id, within=0.05)
    for key in PACKET[:4]:
        first.add(copied(key))
    await asyncio.sleep(0.3)
    first.add(copied(PACKET[4]))  # copied, never recorded
    first.cancel()
    assert transactions(database_url, migration_id) == [4]

    # When the packet is delivered again
    done, _ = app.recorded_outcomes(migration_id, OBJECTS)
    assert done == set(PACKET[:4])
    again = batches_of(app, migration_id)
    for key in PACKET:
        if key not in done:
            again.add(copied(key))
    assert await again.finish(close=True)

    # Then the packet closes once, counting each object once
    assert transactions(database_url, migration_id) == [4, 6]
    assert closing(app, migration_id) == [(10, 0, 1000)]
    assert again.mine.copied == 6


async def test_two_deliveries_at_once_record_each_outcome_once_and_close_with_the_stores_count(
    store: tuple[Migrations, UUID], database_url: str
) -> None:
    # Given two deliveries of the packet at once (a redelivery while the first still ran)
    app, migration_id = store
    first, second = batches_of(app, migration_id), batches_of(app, migration_id)

    # When the first records three outcomes (two failures) before the second, which
    # copied all ten, records and closes
    first.add(copied("k0"))
    for key in ("k1", "k2"):
        first.add(CopyResult(key, reason="not-found", message="gone"))
    assert await first.finish(close=False)
    for key in PACKET:
        second.add(copied(key))
    assert await second.finish(close=True)

    # Then each object has one outcome, and the close counts the first's failures
    assert transactions(database_url, migration_id) == [3, 7]
    assert closing(app, migration_id) == [(8, 2, 800)]
    assert second.raced
    assert second.mine.copied == 7

    # And a third, late, finds the packet closed and records nothing
    third = batches_of(app, migration_id, expected=len(PACKET) + 3)
    third.add(copied("k9"))
    assert not await third.finish(close=True)
    assert closing(app, migration_id) == [(8, 2, 800)]
