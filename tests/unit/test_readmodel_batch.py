"""The projection's fold of object and packet events, in memory (cstor.readmodel.batch).

What the projector writes for a batch is decided here before any statement runs: which
object rows change, what each migration's totals gain, and the throughput series. These
are the rules that keep redelivery from counting an object twice.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID, uuid4

from cstor import contracts
from cstor.domain import transfer
from cstor.readmodel import batch

E = TypeVar("E", bound=contracts.Event)
MIGRATION = uuid4()
PACKET = uuid4()
NOON = datetime(2026, 1, 1, 12, 1, 30, tzinfo=UTC)  # 90 s into its hour, 30 into its minute


def event(kind: type[E], at: datetime = NOON, **fields: Any) -> E:
    return kind(event_id=uuid4(), migration_id=MIGRATION, occurred_at=at, position=1, **fields)


def planned(key: str, size: int = 100) -> contracts.ObjectPlanned:
    object_id = transfer.object_id(MIGRATION, key)
    return event(contracts.ObjectPlanned, object_id=object_id, key=key, size=size, etag="e",
                 packet_id=PACKET, version=1)  # fmt: skip


def copied(
    key: str, size: int = 100, version: int = 2, attempts: int = 1
) -> contracts.ObjectCopied:
    object_id = transfer.object_id(MIGRATION, key)
    return event(contracts.ObjectCopied, object_id=object_id, size=size, checksum="md5:x",
                 attempts=attempts, version=version)  # fmt: skip


def failed(key: str, version: int = 2) -> contracts.ObjectFailed:
    object_id = transfer.object_id(MIGRATION, key)
    return event(contracts.ObjectFailed, object_id=object_id, reason="SlowDown",
                 message="after 3 attempts", attempts=3, version=version)  # fmt: skip


def fold(
    *events: batch.ObjectEvent, rows: dict[UUID, batch.ObjectRow] | None = None
) -> batch.Batch:
    folded = batch.Batch(objects=rows if rows is not None else {})
    for each in events:
        batch.apply(folded, each)
    return folded


def test_an_object_planned_then_copied_is_one_row_counted_once_in_each_total() -> None:
    folded = fold(planned("a", 100), copied("a", 120))
    (row,) = folded.objects.values()
    assert (row.status, row.size, row.checksum, row.version) == ("copied", 120, "md5:x", 2)
    assert folded.changed == {row.id}
    totals = folded.totals[MIGRATION]
    assert (totals.objects_planned, totals.bytes_planned) == (1, 100)
    assert (totals.objects_copied, totals.bytes_copied, totals.objects_failed) == (1, 120, 0)


def test_a_copy_keeps_how_many_attempts_it_took() -> None:
    # Given two objects planned (no attempt yet)
    folded = fold(planned("a"), planned("b"))
    assert [row.attempts for row in folded.objects.values()] == [0, 0]
    # When one is copied at the first attempt, the other at the second
    batch.apply(folded, copied("a", attempts=1))
    batch.apply(folded, copied("b", attempts=2))
    # Then each copied row says so
    rows = {row.key: (row.status, row.attempts) for row in folded.objects.values()}
    assert rows == {"a": ("copied", 1), "b": ("copied", 2)}


def test_a_copy_adds_its_bytes_to_the_second_minute_and_hour_it_ended_in() -> None:
    folded = fold(planned("a"), copied("a", 120))
    second = int(NOON.timestamp())
    assert dict(folded.throughput) == {
        (MIGRATION, 1, second): 120,
        (MIGRATION, 60, second - 30): 120,
        (MIGRATION, 3600, second - 90): 120,
    }


def test_an_outcome_delivered_twice_is_counted_once() -> None:
    folded = fold(planned("a"), copied("a"), copied("a"), failed("a"))
    assert folded.totals[MIGRATION].objects_copied == 1
    assert folded.totals[MIGRATION].objects_failed == 0
    assert next(iter(folded.objects.values())).status == "copied"


def test_an_object_planned_twice_is_one_row_counted_once() -> None:
    folded = fold(planned("a"), planned("a"))
    assert len(folded.objects) == 1
    assert folded.totals[MIGRATION].objects_planned == 1


def test_an_outcome_for_a_row_already_at_its_version_changes_nothing() -> None:
    first = fold(planned("a"), copied("a"))
    again = fold(copied("a"), rows=first.objects)
    assert again.changed == set()
    assert MIGRATION not in again.totals


def test_an_outcome_without_its_planned_row_is_not_counted() -> None:
    folded = fold(copied("a"))
    assert folded.objects == {}
    assert folded.changed == set()
    assert dict(folded.throughput) == {}


def test_a_failure_keeps_its_reason_and_attempts_and_a_retry_uncounts_it() -> None:
    folded = fold(planned("a"), failed("a"))
    (row,) = folded.objects.values()
    assert (row.status, row.error, row.attempts) == ("failed", "SlowDown: after 3 attempts", 3)
    assert folded.totals[MIGRATION].objects_failed == 1
    batch.apply(folded, event(contracts.ObjectRetried, object_id=row.id, packet_id=PACKET,
                              version=3))  # fmt: skip
    assert (row.status, row.error, row.version) == ("planned", "", 3)
    assert folded.totals[MIGRATION].objects_failed == 0
    batch.apply(folded, copied("a", version=4, attempts=2))
    assert folded.totals[MIGRATION].objects_copied == 1
    # And the copy's attempts replace the failure's: the row tells of its last copy
    assert (row.status, row.attempts) == ("copied", 2)


def test_a_retry_older_than_the_row_changes_nothing() -> None:
    folded = fold(planned("a"), failed("a", version=3))
    row = next(iter(folded.objects.values()))
    batch.apply(folded, event(contracts.ObjectRetried, object_id=row.id, packet_id=PACKET,
                              version=2))  # fmt: skip
    assert row.status == "failed"
    assert folded.totals[MIGRATION].objects_failed == 1


def _packet(*skipped: contracts.SkippedObject) -> contracts.PacketPlanned:
    return event(
        contracts.PacketPlanned, packet_id=PACKET, sequence=1, source_connection_id=uuid4(),
        source_bucket="src", source_prefix="", destination_connection_id=uuid4(),
        destination_bucket="dst", destination_prefix="", objects=[], skipped=list(skipped),
    )  # fmt: skip


def test_skipped_objects_ride_in_their_packet_and_are_counted_once() -> None:
    packet = _packet(
        contracts.SkippedObject("a", 5, "exists"), contracts.SkippedObject("b", 7, "filtered")
    )
    folded = fold(packet, packet)
    assert sorted((r.key, r.status, r.reason) for r in folded.objects.values()) == [
        ("a", "skipped", "exists"),
        ("b", "skipped", "filtered"),
    ]
    totals = folded.totals[MIGRATION]
    assert (totals.objects_skipped, totals.bytes_skipped) == (2, 12)
    assert batch.object_ids([packet]) == [
        transfer.object_id(MIGRATION, "a"),
        transfer.object_id(MIGRATION, "b"),
    ]


def test_the_rows_to_load_are_those_of_object_events_and_skipped_objects() -> None:
    later = NOON + timedelta(seconds=1)
    events: list[contracts.Event] = [
        event(contracts.MigrationPlanningStarted, later),
        planned("a"),
        copied("b"),
        _packet(contracts.SkippedObject("c", 1, "exists")),
    ]
    assert batch.object_ids(events) == [transfer.object_id(MIGRATION, k) for k in "abc"]


def test_a_packet_transferred_counts_and_moves_the_migration_time() -> None:
    later = NOON + timedelta(minutes=1)
    folded = fold(event(contracts.PacketTransferred, later, packet_id=PACKET, sequence=1,
                        copied=1, failed=0, bytes=10))  # fmt: skip
    assert folded.totals[MIGRATION].packets_transferred == 1
    assert folded.totals[MIGRATION].updated_at == later
