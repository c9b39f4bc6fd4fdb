"""Recording a packet's outcomes through the use cases: each outcome at its object's
fixed version, one transaction per batch, a redelivery refused and nothing counted twice;
and the outcomes already recorded, for a packet resumed after a pause or a crash."""

from __future__ import annotations

from uuid import UUID

from cstor.app.migrations import Migrations
from cstor.app.results import CopyResult, RetryObject, Tally
from cstor.domain.transfer import ObjectTransfer, object_id, packet_id
from cstor.domain.transfer import Packet as PacketAggregate
from tests.given import Given

KEYS = ["in/a", "in/b", "in/c", "in/d"]
PACKED = [(key, 1) for key in KEYS]


def transferred(app: Migrations, migration_id: UUID, sequence: int = 0) -> list[object]:
    """The packet's closing events (Transferred), as the planner's completion reads them."""
    return [
        app.mapper.to_domain_event(stored)
        for stored in app.recorder.select_events(packet_id(migration_id, sequence), gt=1)
    ]


def test_a_packet_s_outcomes_and_its_closing_are_recorded_at_fixed_versions(
    app: Migrations, given: Given
) -> None:
    # Given a running migration of one packet of four objects
    migration_id = given.running(KEYS)

    # When three are copied and one fails
    results = [given.result(key, failing=["in/d"]) for key in KEYS]
    assert app.record_packet(migration_id, 0, results)

    # Then each object has its outcome at version 2, the one after its planning
    copied: ObjectTransfer = app.repository.get(object_id(migration_id, "in/a"))
    failed: ObjectTransfer = app.repository.get(object_id(migration_id, "in/d"))
    assert (copied.status, copied.version, copied.checksum) == ("copied", 2, "md5:00")
    assert (failed.status, failed.version) == ("failed", 2)
    assert failed.error == "not-found: gone"
    # And the packet is closed at version 2 with the counts of all
    (closing,) = transferred(app, migration_id)
    assert (closing.copied, closing.failed, closing.bytes) == (3, 1, 30)  # type: ignore[attr-defined]
    assert app.packet_transferred(migration_id, 0)


def test_a_redelivered_packet_is_refused_and_nothing_is_counted_twice(
    app: Migrations, given: Given
) -> None:
    # Given a packet whose outcomes and closing are recorded
    migration_id = given.running(KEYS)
    assert app.record_packet(migration_id, 0, [given.result(key) for key in KEYS])
    recorded = len(given.topics())

    # When another delivery of it records them again
    again = app.record_packet(migration_id, 0, [given.result(key) for key in KEYS])

    # Then it is refused, and the store holds each outcome and the closing once
    assert again is False
    assert len(given.topics()) == recorded
    assert len(transferred(app, migration_id)) == 1


def test_a_redelivery_that_found_otherwise_does_not_overwrite_the_first_outcome(
    app: Migrations, given: Given
) -> None:
    # Given "in/a" recorded as copied
    migration_id = given.running(KEYS)
    app.record_packet(migration_id, 0, [given.result("in/a")], close=False)

    # When a second replica, copying the same packet, found it failed
    assert not app.record_packet(
        migration_id, 0, [given.result("in/a", failing=["in/a"])], close=False
    )

    # Then the first outcome stands
    obj: ObjectTransfer = app.repository.get(object_id(migration_id, "in/a"))
    assert (obj.status, obj.version) == ("copied", 2)


def test_a_batch_is_one_transaction_whole_or_not_at_all(app: Migrations, given: Given) -> None:
    # Given "in/b" already recorded by another replica
    migration_id = given.running(KEYS)
    app.record_packet(migration_id, 0, [given.result("in/b")], close=False)

    # When a batch of "in/a", "in/b" and "in/c" is recorded
    assert not app.record_packet(
        migration_id, 0, [given.result(key) for key in ("in/a", "in/b", "in/c")], close=False
    )

    # Then neither "in/a" nor "in/c" was recorded by it
    done, tally = app.recorded_outcomes(migration_id, PACKED)
    assert done == {"in/b"}
    assert tally == Tally(copied=1, failed=0, bytes=10)


def test_a_batch_not_closing_leaves_the_packet_open(app: Migrations, given: Given) -> None:
    migration_id = given.running(KEYS)
    assert app.record_packet(migration_id, 0, [given.result("in/a")], close=False)
    assert not app.packet_transferred(migration_id, 0)
    assert transferred(app, migration_id) == []


def test_the_closing_adds_in_what_earlier_batches_recorded(app: Migrations, given: Given) -> None:
    # Given two of four outcomes recorded in an earlier batch (one copied, one failed)
    migration_id = given.running(KEYS)
    first = [given.result("in/a"), given.result("in/b", failing=["in/b"])]
    app.record_packet(migration_id, 0, first, close=False)

    # When the last batch closes the packet with the tally of the earlier ones
    _, earlier = app.recorded_outcomes(migration_id, PACKED)
    last = [given.result("in/c"), given.result("in/d")]
    assert app.record_packet(migration_id, 0, last, earlier=earlier)

    # Then the closing counts all four
    (closing,) = transferred(app, migration_id)
    assert (closing.copied, closing.failed, closing.bytes) == (3, 1, 30)  # type: ignore[attr-defined]


def test_recorded_outcomes_after_a_partial_record(app: Migrations, given: Given) -> None:
    # Given a packet paused after two copies and a failure
    migration_id = given.running(KEYS)
    batch = [given.result(k, failing=["in/c"]) for k in ("in/a", "in/b", "in/c")]
    app.record_packet(migration_id, 0, batch, close=False)

    # When the resumed packet asks which of its objects are done
    done, tally = app.recorded_outcomes(migration_id, PACKED)

    # Then it is those three, with their tally; "in/d" is still to copy
    assert done == {"in/a", "in/b", "in/c"}
    assert tally == Tally(copied=2, failed=1, bytes=20)


def test_nothing_recorded_yet_is_nothing_done(app: Migrations, given: Given) -> None:
    migration_id = given.running(KEYS)
    assert app.recorded_outcomes(migration_id, PACKED) == (set(), Tally())
    assert app.recorded_outcomes(migration_id, []) == (set(), Tally())


def test_recorded_outcomes_are_asked_at_the_packed_version(app: Migrations, given: Given) -> None:
    # Given "in/a" failed (version 2), then put in a retry packet at version 3
    migration_id = given.completed(KEYS, failing=["in/a"])
    failed_version: int = app.repository.get(object_id(migration_id, "in/a")).version
    app.retry_failed(migration_id, [RetryObject("in/a", 10, "etag-in/a", failed_version)])

    # Then, asked at the retry's version (3), its first failure does not count as done
    assert app.recorded_outcomes(migration_id, [("in/a", 3)]) == (set(), Tally())
    # And once copied at version 4 it does, while at version 1 the failure still shows
    retried = CopyResult("in/a", size=10, checksum="md5:00", version=3)
    assert app.record_packet(migration_id, 1, [retried])
    assert app.recorded_outcomes(migration_id, [("in/a", 3)]) == ({"in/a"}, Tally(1, 0, 10))
    assert app.recorded_outcomes(migration_id, [("in/a", 1)]) == ({"in/a"}, Tally(0, 1, 0))


def test_a_packet_mixing_versions_is_asked_each_at_its_own(app: Migrations, given: Given) -> None:
    # Given "in/a" recorded at version 2 and "in/b" not
    migration_id = given.running(KEYS)
    app.record_packet(migration_id, 0, [given.result("in/a")], close=False)

    # When asked with "in/a" packed at 1 and "in/b" at 5 (as a retry packet may hold)
    done, tally = app.recorded_outcomes(migration_id, [("in/a", 1), ("in/b", 5)])

    # Then only "in/a" is done
    assert done == {"in/a"}
    assert tally == Tally(1, 0, 10)


def test_outcomes_of_other_migrations_are_not_theirs(app: Migrations, given: Given) -> None:
    # Given two migrations of the same keys, one with its outcomes recorded
    copied, other = given.running(KEYS), given.running(KEYS)
    app.record_packet(copied, 0, [given.result(key) for key in KEYS])

    # Then the other has none, and its packet is open
    assert app.recorded_outcomes(other, PACKED) == (set(), Tally())
    assert not app.packet_transferred(other, 0)
    packet: PacketAggregate = app.repository.get(packet_id(other, 0))
    assert not packet.transferred


def test_a_copy_is_recorded_with_the_attempts_it_took(app: Migrations, given: Given) -> None:
    # Given a running migration of one packet
    migration_id = given.running(KEYS)

    # When "in/a" is copied at its second attempt and "in/b" at its first
    again = CopyResult("in/a", size=10, checksum="md5:00", attempts=2)
    assert app.record_packet(migration_id, 0, [again, given.result("in/b")], close=False)

    # Then each copy's event says how many times it was tried
    def attempts(key: str) -> int:
        (stored,) = app.recorder.select_events(object_id(migration_id, key), gt=1)
        copied = app.mapper.to_domain_event(stored)
        assert isinstance(copied, ObjectTransfer.Copied)
        return copied.attempts

    assert (attempts("in/a"), attempts("in/b")) == (2, 1)
