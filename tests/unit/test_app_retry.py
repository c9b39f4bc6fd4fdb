"""Retrying a completed migration's failed objects through the use cases: new packets of
a thousand after the last, each object put back at the version its failure left it, all
in one transaction that a concurrent retry makes fail whole."""

from __future__ import annotations

import pytest
from eventsourcing.persistence import IntegrityError

from cstor.app.migrations import RETRY_PACKET_OBJECTS, Migrations
from cstor.app.results import CopyResult, RetryObject
from cstor.domain.migration import Migration
from cstor.domain.transfer import ObjectTransfer, object_id, packet_id
from cstor.domain.transfer import Packet as PacketAggregate
from tests.given import Given


def failed_now(app: Migrations, migration_id: object, *keys: str) -> list[RetryObject]:
    """The failed objects as the api hands them over: the source's size and ETag now,
    at the version the store has them."""
    objects = []
    for key in keys:
        obj: ObjectTransfer = app.repository.get(object_id(migration_id, key))  # type: ignore[arg-type]
        objects.append(RetryObject(key, 20, f"new-etag-{key}", obj.version))
    return objects


def test_retrying_puts_the_failed_objects_into_a_new_packet_after_the_last(
    app: Migrations, given: Given
) -> None:
    # Given a completed migration of two packets where "b" and "c" failed
    migration_id = given.completed(["a", "b"], ["c"], failing=["b", "c"])

    # When its failures are retried
    count = app.retry_failed(migration_id, failed_now(app, migration_id, "b", "c"))

    # Then both are in packet 2, as the source has them now, at their next version
    assert count == 2
    packet: PacketAggregate = app.repository.get(packet_id(migration_id, 2))
    assert packet.objects == [["b", 20, "new-etag-b", 3], ["c", 20, "new-etag-c", 3]]
    assert (packet.last_key, packet.planned_total) == ("", 0)
    # And each object is planned again, in that packet
    obj: ObjectTransfer = app.repository.get(object_id(migration_id, "b"))
    assert (obj.status, obj.version, obj.packet_id, obj.error) == (
        "planned",
        3,
        packet_id(migration_id, 2),
        "",
    )


def test_retrying_runs_the_migration_again_with_more_packets(app: Migrations, given: Given) -> None:
    migration_id = given.completed(["a", "b"], failing=["a", "b"])
    app.retry_failed(migration_id, failed_now(app, migration_id, "a", "b"))
    migration = app.get(migration_id)
    assert migration.status == Migration.RUNNING
    assert (migration.packets, migration.retried) == (2, 2)
    assert migration.finished_at is None


def test_retried_objects_go_in_packets_of_a_thousand(app: Migrations, given: Given) -> None:
    # Given a completed migration whose 2,500 objects all failed, in three packets
    keys = [f"k{n:04d}" for n in range(2500)]
    chunks = [keys[:1000], keys[1000:2000], keys[2000:]]
    migration_id = given.completed(*chunks, failing=keys)
    failed = [RetryObject(key, 1, "e", 2) for key in keys]

    # When they are retried
    assert app.retry_failed(migration_id, failed) == 2500

    # Then they are in three new packets, 3 to 5, of 1,000, 1,000 and 500
    sizes = [len(app.repository.get(packet_id(migration_id, n)).objects) for n in (3, 4, 5)]
    assert sizes == [RETRY_PACKET_OBJECTS, RETRY_PACKET_OBJECTS, 500]
    assert app.get(migration_id).packets == 6


def test_a_retry_of_an_object_that_moved_on_fails_whole(app: Migrations, given: Given) -> None:
    # Given a completed migration where "a" and "b" failed
    migration_id = given.completed(["a", "b"], failing=["a", "b"])
    stale = failed_now(app, migration_id, "a", "b")
    # And another retry already took "b" (it is at version 3 now)
    app.retry_failed(migration_id, [stale[1]])
    app.record_packet(migration_id, 1, [CopyResult("b", size=20, version=3)])
    assert app.complete_if_done(migration_id)
    recorded = len(given.topics())

    # When a retry still names "b" at its failed version
    with pytest.raises(IntegrityError):
        app.retry_failed(migration_id, stale)

    # Then nothing of it was recorded, "a" not put back either
    assert len(given.topics()) == recorded
    assert app.get(migration_id).status == Migration.COMPLETED
    assert app.repository.get(object_id(migration_id, "a")).status == "failed"


def test_two_retries_of_the_same_failures_let_only_the_first_in(
    app: Migrations, given: Given
) -> None:
    # Given a completed migration where "a" failed, and a retry of it recorded
    migration_id = given.completed(["a"], failing=["a"])
    same = failed_now(app, migration_id, "a")
    app.retry_failed(migration_id, same)
    app.record_packet(migration_id, 1, [CopyResult("a", reason="denied", version=3)])
    assert app.complete_if_done(migration_id)

    # Then a second retry of "a" at the version the first one saw is refused
    with pytest.raises(IntegrityError):
        app.retry_failed(migration_id, same)


def test_a_retried_object_copied_completes_with_nothing_failed(
    app: Migrations, given: Given
) -> None:
    # Given a completed migration where "b" of three failed, retried
    migration_id = given.completed(["a", "b", "c"], failing=["b"])
    app.retry_failed(migration_id, failed_now(app, migration_id, "b"))

    # When the retry packet copies it, at the version the packet gave it
    assert app.record_packet(migration_id, 1, [CopyResult("b", size=20, version=3)])

    # Then the migration completes again, with all three copied and none failed
    assert app.complete_if_done(migration_id)
    completions = [
        app.mapper.to_domain_event(n)
        for n in app.notifications(0, 1000)
        if n.topic.endswith("Migration.Completed")
    ]
    assert [(c.copied, c.failed) for c in completions] == [(2, 1), (3, 0)]  # type: ignore[attr-defined]


def test_a_retried_object_failing_again_is_counted_once(app: Migrations, given: Given) -> None:
    # Given a completed migration where "b" failed, retried, and failing again
    migration_id = given.completed(["a", "b"], failing=["b"])
    app.retry_failed(migration_id, failed_now(app, migration_id, "b"))
    again = CopyResult("b", reason="denied", message="still", version=3)
    app.record_packet(migration_id, 1, [again])

    # Then it completes with one failure, not two
    assert app.complete_if_done(migration_id)
    last = [
        app.mapper.to_domain_event(n)
        for n in app.notifications(0, 1000)
        if n.topic.endswith("Migration.Completed")
    ][-1]
    assert (last.copied, last.failed) == (1, 1)  # type: ignore[attr-defined]
    assert app.repository.get(object_id(migration_id, "b")).version == 4


def test_the_retry_packet_is_not_a_planning_checkpoint(app: Migrations, given: Given) -> None:
    # Given a completed migration of one packet whose object failed, retried
    migration_id = given.completed(["a"], failing=["a"])
    app.retry_failed(migration_id, failed_now(app, migration_id, "a"))

    # Then its packets count the retry's, and a re-plan would resume after both
    sequence, _, _ = app.planning_checkpoint(migration_id)
    assert sequence == 2
