"""Planning through the use cases: packets recorded once under deterministic ids, and the
checkpoint an interrupted planning resumes from."""

from __future__ import annotations

from uuid import UUID

from cstor.app.migrations import Migrations
from cstor.app.results import PlanTotals, RetryObject, Tally
from cstor.domain.planning import FailedObject, PacketDraft, PlannedObject, Skip
from cstor.domain.transfer import ObjectTransfer, object_id, packet_id
from cstor.domain.transfer import Packet as PacketAggregate
from tests.given import Given


def packet_of(*keys: str, skipped: tuple[str, ...] = ()) -> PacketDraft:
    return PacketDraft(
        planned=[PlannedObject(key, 7, f"etag-{key}") for key in keys],
        skipped=[Skip(key, 3, "identical") for key in skipped],
        last_key=max(keys + skipped),
    )


def plan(app: Migrations, migration_id: UUID, sequence: int, packet: PacketDraft) -> bool:
    totals = PlanTotals(packets=sequence + 1, objects=packet.objects)
    return app.plan_packet(app.get(migration_id), sequence, packet, totals)


def test_a_planned_packet_records_its_objects_under_deterministic_ids(
    app: Migrations, given: Given
) -> None:
    # Given a migration planning
    migration_id = given.planning()

    # When a packet of two objects is planned
    assert plan(app, migration_id, 0, packet_of("in/a", "in/b"))

    # Then each object is a transfer, planned, whose id comes from the migration and key
    obj: ObjectTransfer = app.repository.get(object_id(migration_id, "in/a"))
    assert (obj.key, obj.size, obj.etag, obj.status) == ("in/a", 7, "etag-in/a", "planned")
    assert obj.version == 1
    assert obj.packet_id == packet_id(migration_id, 0)
    # And the packet, whose id comes from the migration and sequence, lists them
    packet: PacketAggregate = app.repository.get(packet_id(migration_id, 0))
    assert packet.objects == [["in/a", 7, "etag-in/a"], ["in/b", 7, "etag-in/b"]]
    assert (packet.sequence, packet.version, packet.transferred) == (0, 1, False)


def test_a_packet_carries_the_migration_s_route(app: Migrations, given: Given) -> None:
    # Given a migration from one connection's bucket and prefix to another's
    migration_id = given.requested(source_bucket="old", destination_prefix="copy/")
    app.start_planning(migration_id)

    # When a packet is planned
    plan(app, migration_id, 0, packet_of("in/a"))

    # Then the event the transfer service reads names the same route
    (notification,) = [n for n in app.notifications(0, 100) if n.topic.endswith("Packet.Planned")]
    planned = app.mapper.to_domain_event(notification)
    migration = app.get(migration_id)
    assert planned.source_connection_id == migration.source_connection_id  # type: ignore[attr-defined]
    assert planned.source_bucket == "old"  # type: ignore[attr-defined]
    assert planned.destination_connection_id == migration.destination_connection_id  # type: ignore[attr-defined]
    assert planned.destination_prefix == "copy/"  # type: ignore[attr-defined]


def test_skipped_objects_ride_in_their_packet_and_get_no_transfer(
    app: Migrations, given: Given
) -> None:
    # Given a migration planning
    migration_id = given.planning()

    # When a packet copies one object and skips another
    plan(app, migration_id, 0, packet_of("in/a", skipped=("in/b",)))

    # Then the skipped one is in the packet, with why, and has no transfer of its own
    packet: PacketAggregate = app.repository.get(packet_id(migration_id, 0))
    assert packet.skipped == [["in/b", 3, "identical"]]
    assert given.topics().count("ObjectTransfer.Planned") == 1


DENIED = FailedObject(
    "in/b",
    7,
    "etag-in/b",
    "access-denied",
    "reading the metadata of destination object 'out/b' in bucket 'destination' at"
    " http://store:9000 was denied to these keys (HTTP 403)",
)


def test_an_object_failed_while_planning_is_recorded_planned_then_failed_with_its_packet(
    app: Migrations, given: Given
) -> None:
    # Given a migration planning
    migration_id = given.planning()

    # When a packet is planned with one object to copy and one whose destination copy
    # could not be read
    packet = PacketDraft(planned=[PlannedObject("in/a", 7, "etag-in/a")], failed=[DENIED])
    assert plan(app, migration_id, 0, packet)

    # Then that one is failed at version 2, with the reason naming the destination
    obj: ObjectTransfer = app.repository.get(object_id(migration_id, "in/b"))
    assert (obj.status, obj.version, obj.packet_id) == ("failed", 2, packet_id(migration_id, 0))
    assert obj.error == f"access-denied: {DENIED.message}"
    (failed,) = [
        app.mapper.to_domain_event(n)
        for n in app.notifications(0, 100)
        if n.topic.endswith("ObjectTransfer.Failed")
    ]
    assert failed.attempts == 0  # type: ignore[attr-defined]  # no copy was tried
    # And it is one of the packet's objects, so that its closing counts it
    closing: PacketAggregate = app.repository.get(packet_id(migration_id, 0))
    assert closing.objects == [["in/a", 7, "etag-in/a"], ["in/b", 7, "etag-in/b"]]
    # And the transfer service finds its outcome recorded already, to copy only the other
    done, tally = app.recorded_outcomes(migration_id, [("in/a", 1), ("in/b", 1)])
    assert (done, tally) == ({"in/b"}, Tally(failed=1))


def test_a_failure_found_while_planning_is_counted_once_however_often_it_is_planned(
    app: Migrations, given: Given
) -> None:
    # Given a packet planned with an object that failed while planning
    migration_id = given.planning()
    packet = PacketDraft(planned=[PlannedObject("in/a", 7, "etag-in/a")], failed=[DENIED])
    assert plan(app, migration_id, 0, packet)
    recorded = len(given.topics())

    # When a redelivered request plans it again
    assert not plan(app, migration_id, 0, packet)

    # Then nothing is recorded twice
    assert len(given.topics()) == recorded
    assert given.topics().count("ObjectTransfer.Failed") == 1
    # And once the other object is copied, the migration completes with it failed
    app.finish_planning(migration_id, PlanTotals(packets=1, objects=2, bytes=14))
    earlier = app.recorded_outcomes(migration_id, [("in/b", 1)])[1]
    assert app.record_packet(migration_id, 0, [given.result("in/a")], earlier=earlier)
    assert app.complete_if_done(migration_id)
    (completed,) = [
        app.mapper.to_domain_event(n)
        for n in app.notifications(0, 100)
        if n.topic.endswith("Migration.Completed")
    ]
    assert (completed.copied, completed.failed) == (1, 1)  # type: ignore[attr-defined]
    # And retrying the failures queues it again like any failed object
    assert app.retry_failed(migration_id, [RetryObject("in/b", 7, "etag-in/b", 2)]) == 1
    obj: ObjectTransfer = app.repository.get(object_id(migration_id, "in/b"))
    assert (obj.status, obj.version, obj.packet_id) == ("planned", 3, packet_id(migration_id, 1))


def test_planning_a_packet_again_records_nothing_and_says_so(app: Migrations, given: Given) -> None:
    # Given a packet already planned (a planner that crashed after recording it)
    migration_id = given.planning()
    assert plan(app, migration_id, 0, packet_of("in/a", "in/b"))
    recorded = len(given.topics())

    # When the same packet is planned again
    again = plan(app, migration_id, 0, packet_of("in/a", "in/b"))

    # Then it is refused, and nothing is recorded twice
    assert again is False
    assert len(given.topics()) == recorded


def test_a_re_plan_that_differs_keeps_the_first_plan_whole(app: Migrations, given: Given) -> None:
    # Given packet 0 planned with two objects
    migration_id = given.planning()
    plan(app, migration_id, 0, packet_of("in/a", "in/b"))

    # When a re-plan of packet 0 lists one more object (the source changed meanwhile)
    assert not plan(app, migration_id, 0, packet_of("in/a", "in/b", "in/c"))

    # Then the extra object is not planned either: the packet is one transaction
    assert given.topics().count("ObjectTransfer.Planned") == 2
    assert not app.recorder.select_events(object_id(migration_id, "in/c"))


def test_an_object_already_planned_in_another_packet_refuses_the_packet(
    app: Migrations, given: Given
) -> None:
    # Given "in/a" planned in packet 0
    migration_id = given.planning()
    plan(app, migration_id, 0, packet_of("in/a"))

    # When packet 1 plans "in/a" again with a new one
    assert not plan(app, migration_id, 1, packet_of("in/a", "in/b"))

    # Then packet 1 is not recorded at all
    assert app.planning_checkpoint(migration_id)[0] == 1


def test_a_new_planning_starts_at_the_beginning(app: Migrations, given: Given) -> None:
    migration_id = given.planning()
    assert app.planning_checkpoint(migration_id) == (0, "", PlanTotals())


def test_the_checkpoint_is_after_the_last_packet_with_its_running_totals(
    app: Migrations, given: Given
) -> None:
    # Given three packets planned, the last carrying the running totals
    migration_id = given.planning()
    migration = app.get(migration_id)
    app.plan_packet(migration, 0, packet_of("in/a"), PlanTotals(1, 1, 7, 0))
    app.plan_packet(migration, 1, packet_of("in/b", skipped=("in/c",)), PlanTotals(2, 2, 14, 1))
    app.plan_packet(migration, 2, packet_of("in/d", "in/e"), PlanTotals(3, 4, 28, 1))

    # When planning asks where to resume
    sequence, last_key, totals = app.planning_checkpoint(migration_id)

    # Then it is the next packet, after the last key, with the totals so far
    assert (sequence, last_key) == (3, "in/e")
    assert totals == PlanTotals(packets=3, objects=4, bytes=28, skipped=1)


def test_the_checkpoint_counts_past_a_thousand_packets(app: Migrations, given: Given) -> None:
    # Given 1,001 packets planned (packets are counted a thousand at a time)
    migration_id = given.planning()
    given.plan(migration_id, [[f"k{n:04d}"] for n in range(1001)])

    # Then the checkpoint is after the 1,001st
    sequence, last_key, totals = app.planning_checkpoint(migration_id)
    assert (sequence, last_key, totals.objects) == (1001, "k1000", 1001)


def test_the_checkpoint_after_exactly_a_thousand_packets(app: Migrations, given: Given) -> None:
    migration_id = given.planning()
    given.plan(migration_id, [[f"k{n:04d}"] for n in range(1000)])
    assert app.planning_checkpoint(migration_id)[:2] == (1000, "k0999")


def test_the_checkpoint_is_the_migration_s_own(app: Migrations, given: Given) -> None:
    # Given two migrations, one with two packets planned
    planned, other = given.planning(), given.planning()
    given.plan(planned, [["in/a"], ["in/b"]])

    # Then the other has none
    assert app.planning_checkpoint(other)[0] == 0
    assert app.planning_checkpoint(planned)[0] == 2


def test_a_packet_skipping_everything_still_counts_in_the_checkpoint(
    app: Migrations, given: Given
) -> None:
    # Given a packet that copies nothing (every object already at the destination)
    migration_id = given.planning()
    packet = PacketDraft(skipped=[Skip("in/a", 3, "identical")], last_key="in/a")
    assert app.plan_packet(app.get(migration_id), 0, packet, PlanTotals(1, 0, 0, 1))

    # Then planning resumes after it
    assert app.planning_checkpoint(migration_id) == (1, "in/a", PlanTotals(1, 0, 0, 1))
