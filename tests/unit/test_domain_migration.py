"""The Migration aggregate's own rules, called directly (no application, no store).

Which command each status allows, what each refused one says, the counts the events
carry, and that replaying the events gives the same migration. The use cases around
it (cstor.app) are tested elsewhere; here only the aggregate and its ids and events.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.domain import Aggregate

from cstor.domain import transfer
from cstor.domain.exceptions import Conflict, InvalidRequest, MigrationStateError
from cstor.domain.migration import (
    LIMITS,
    STORAGE_CLASSES,
    Migration,
    check_storage_class,
    checked_limits,
)

M = Migration
NOW = datetime(2026, 12, 3, 12, tzinfo=UTC)


def requested(**changes: Any) -> Migration:
    """A new migration, every request field given (the library keeps no defaults)."""
    fields: dict[str, Any] = {
        "name": "photos",
        "owner": "ada@example.com",
        "source_connection_id": uuid4(),
        "source_bucket": "source-bucket",
        "source_prefix": "in/",
        "destination_connection_id": uuid4(),
        "destination_bucket": "destination-bucket",
        "destination_prefix": "out/",
        "overwrite": "if-different",
        "filters": {},
        "sync_of": None,
        "storage_class": None,
        "limits": {},
    }
    return Migration(**(fields | changes))


def planning() -> Migration:
    migration = requested()
    migration.start_planning()
    return migration


def running(packets: int = 2, objects: int = 10, bytes_: int = 1000, skipped: int = 3) -> Migration:
    migration = planning()
    migration.finish_planning(packets=packets, objects=objects, bytes=bytes_, skipped=skipped)
    return migration


def completed() -> Migration:
    migration = running()
    migration.complete(copied=8, failed=2)
    return migration


def paused_while(status: str) -> Migration:
    migration = {M.REQUESTED: requested, M.PLANNING: planning, M.RUNNING: running}[status]()
    migration.pause()
    return migration


def cancelled() -> Migration:
    migration = running()
    migration.cancel()
    return migration


def failed() -> Migration:
    migration = running()
    migration.fail(reason="no-such-bucket", message="the source bucket is gone")
    return migration


IN = {
    M.REQUESTED: requested,
    M.PLANNING: planning,
    M.RUNNING: running,
    M.COMPLETED: completed,
    M.CANCELLED: cancelled,
    M.FAILED: failed,
    "paused-requested": lambda: paused_while(M.REQUESTED),
    "paused-planning": lambda: paused_while(M.PLANNING),
    "paused-running": lambda: paused_while(M.RUNNING),
}

COMMANDS = {
    "start_planning": lambda m: m.start_planning(),
    "finish_planning": lambda m: m.finish_planning(packets=1, objects=1, bytes=1, skipped=0),
    "complete": lambda m: m.complete(copied=1, failed=0),
    "retry_failed": lambda m: m.retry_failed(objects=1, packets=1),
    "pause": lambda m: m.pause(),
    "resume": lambda m: m.resume(),
    "cancel": lambda m: m.cancel(),
    "fail": lambda m: m.fail(reason="r", message="m"),
}

# Which command each status allows; every other pair is refused.
ALLOWED = {
    "start_planning": {M.REQUESTED},
    "finish_planning": {M.PLANNING, "paused-planning"},
    "complete": {M.RUNNING},
    "retry_failed": {M.COMPLETED},
    "pause": {M.REQUESTED, M.PLANNING, M.RUNNING},
    "resume": {"paused-requested", "paused-planning", "paused-running"},
    "cancel": {
        M.REQUESTED,
        M.PLANNING,
        M.RUNNING,
        "paused-requested",
        "paused-planning",
        "paused-running",
    },
    "fail": {
        M.REQUESTED,
        M.PLANNING,
        M.RUNNING,
        "paused-requested",
        "paused-planning",
        "paused-running",
    },
}

REFUSED = [
    (command, state) for command in COMMANDS for state in IN if state not in ALLOWED[command]
]
PERMITTED = [(command, state) for command in COMMANDS for state in ALLOWED[command]]


def event_names(migration: Migration) -> list[str]:
    return [type(e).__name__ for e in migration.collect_events()]


def replayed(events: list[Any]) -> Any:
    aggregate = None
    for domain_event in events:
        aggregate = domain_event.mutate(aggregate)
    return aggregate


# Transitions, allowed and refused ------------------------------------------------------


@pytest.mark.parametrize(("command", "state"), REFUSED, ids=[f"{c}-in-{s}" for c, s in REFUSED])
def test_a_command_that_does_not_fit_the_status_is_refused_and_records_nothing(
    command: str, state: str
) -> None:
    # Given a migration in that status, with its events so far collected
    migration = IN[state]()
    status, version = migration.status, migration.version
    migration.collect_events()
    # When the command is given
    with pytest.raises(MigrationStateError, match=str(migration.id)):
        COMMANDS[command](migration)
    # Then nothing changed and no event waits to be saved
    assert (migration.status, migration.version) == (status, version)
    assert migration.collect_events() == []


@pytest.mark.parametrize(("command", "state"), PERMITTED, ids=[f"{c}-in-{s}" for c, s in PERMITTED])
def test_a_command_that_fits_the_status_records_one_event(command: str, state: str) -> None:
    migration = IN[state]()
    migration.collect_events()
    COMMANDS[command](migration)
    assert len(migration.collect_events()) == 1


def test_a_state_error_is_a_conflict_the_api_answers_as_one() -> None:
    assert issubclass(MigrationStateError, Conflict)


def test_a_new_migration_is_requested_and_counts_nothing_yet() -> None:
    migration = requested(limits={"concurrent_objects": 4}, storage_class="STANDARD_IA")
    assert migration.status == M.REQUESTED
    assert (migration.packets, migration.objects, migration.bytes, migration.skipped) == (
        0,
        0,
        0,
        0,
    )
    assert (migration.retried, migration.finished_at) == (0, None)
    assert migration.limits == {"concurrent_objects": 4}
    assert migration.storage_class == "STANDARD_IA"
    assert event_names(migration) == ["Requested"]


def test_the_whole_lifecycle_records_its_events_in_order() -> None:
    # Given a migration taken through planning, a pause, copying and completion
    migration = requested()
    migration.start_planning()
    migration.pause()
    migration.resume()
    migration.finish_planning(packets=1, objects=2, bytes=3, skipped=0)
    migration.complete(copied=2, failed=0)
    # Then each step is one event, in the order it happened
    assert event_names(migration) == [
        "Requested",
        "PlanningStarted",
        "Paused",
        "Resumed",
        "Planned",
        "Completed",
    ]
    assert migration.version == 6


def test_planning_finished_records_the_totals() -> None:
    migration = running(packets=4, objects=120, bytes_=9_000, skipped=7)
    assert migration.status == M.RUNNING
    assert (migration.packets, migration.objects, migration.bytes, migration.skipped) == (
        4,
        120,
        9_000,
        7,
    )


# Pause and resume --------------------------------------------------------------------


@pytest.mark.parametrize("status", [M.REQUESTED, M.PLANNING, M.RUNNING])
def test_a_resumed_migration_goes_back_to_where_it_was_paused(status: str) -> None:
    migration = paused_while(status)
    assert (migration.status, migration.paused_from) == (M.PAUSED, status)
    migration.resume()
    assert migration.status == status


def test_planning_may_finish_while_paused_and_the_resume_then_runs() -> None:
    # Given a migration paused while it was being planned
    migration = paused_while(M.PLANNING)
    # When the planner finishes meanwhile
    migration.finish_planning(packets=2, objects=5, bytes=50, skipped=1)
    # Then it stays paused, with the totals, and a resume goes on to copying
    assert migration.status == M.PAUSED
    assert (migration.packets, migration.objects) == (2, 5)
    migration.resume()
    assert migration.status == M.RUNNING


def test_a_migration_paused_before_planning_cannot_be_planned_meanwhile() -> None:
    migration = paused_while(M.REQUESTED)
    with pytest.raises(MigrationStateError, match="paused, not requested"):
        migration.start_planning()


# Ends: completion, cancel, failure -------------------------------------------------------


ENDINGS = {
    "complete": lambda m: m.complete(copied=10, failed=0),
    "cancel": lambda m: m.cancel(),
    "fail": lambda m: m.fail(reason="no-such-bucket", message="gone"),
}


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_a_migration_finishes_at_the_time_of_its_ending_event(ending: str) -> None:
    # Given a migration that has been running a while
    migration = running()
    time.sleep(0.01)
    # When it ends
    ENDINGS[ending](migration)
    # Then it finished when the ending was recorded, not when planning finished
    ended = migration.collect_events()[-1]
    assert migration.finished_at == ended.timestamp


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_an_ended_migration_has_a_finish_time_and_a_retried_one_has_none(ending: str) -> None:
    migration = running()
    ENDINGS[ending](migration)
    assert migration.status in M.FINISHED
    assert migration.finished_at is not None
    if migration.status == M.COMPLETED:
        migration.retry_failed(objects=1, packets=1)
        assert migration.finished_at is None


def test_a_cancel_while_paused_ends_the_migration() -> None:
    migration = paused_while(M.RUNNING)
    migration.cancel()
    assert migration.status == M.CANCELLED
    with pytest.raises(MigrationStateError, match="is cancelled, not paused"):
        migration.resume()


def test_a_failure_keeps_its_reason_and_words() -> None:
    migration = failed()
    assert migration.status == M.FAILED
    assert migration.error == "no-such-bucket: the source bucket is gone"
    assert migration.finished_at is not None


@pytest.mark.parametrize("end", [completed, cancelled, failed])
def test_a_finished_migration_can_neither_be_cancelled_nor_failed(end: Any) -> None:
    migration = end()
    with pytest.raises(MigrationStateError, match=f"already {migration.status}"):
        migration.cancel()
    with pytest.raises(MigrationStateError, match=f"already {migration.status}"):
        migration.fail(reason="late", message="too late")


# Retrying the failed objects ----------------------------------------------------------


def test_retrying_failures_adds_packets_counts_the_retried_and_runs_again() -> None:
    # Given a completed migration of 2 packets
    migration = completed()
    assert migration.packets == 2
    # When its failures are retried in one new packet, twice over
    migration.retry_failed(objects=2, packets=1)
    # Then it runs again, unfinished, with one packet more
    assert (migration.status, migration.finished_at) == (M.RUNNING, None)
    assert (migration.packets, migration.retried) == (3, 2)
    migration.complete(copied=1, failed=1)
    migration.retry_failed(objects=1, packets=1)
    assert (migration.packets, migration.retried) == (4, 3)
    # And the planned totals stay what planning found
    assert (migration.objects, migration.bytes, migration.skipped) == (10, 1000, 3)


def test_failures_are_retried_only_once_the_migration_completed() -> None:
    with pytest.raises(MigrationStateError, match="retried once it completes"):
        running().retry_failed(objects=1, packets=1)


# The fold ---------------------------------------------------------------------------


def test_replaying_the_events_gives_the_same_migration() -> None:
    # Given a migration with a long history
    migration = requested(filters={"include": ["*.jpg"]}, limits={"concurrent_objects": 2})
    migration.start_planning()
    migration.pause()
    migration.finish_planning(packets=3, objects=30, bytes=300, skipped=4)
    migration.resume()
    migration.complete(copied=28, failed=2)
    migration.retry_failed(objects=2, packets=1)
    events = migration.collect_events()
    # When its events are folded from nothing
    again = replayed(events)
    # Then every attribute is as it was
    assert isinstance(again, Migration)
    assert again.__dict__ == migration.__dict__


def test_the_request_reads_back_as_plain_values() -> None:
    source, destination = uuid4(), uuid4()
    migration = requested(
        source_connection_id=source,
        destination_connection_id=destination,
        overwrite="skip-existing",
        filters={"min_size": 1},
        storage_class="GLACIER_IR",
        limits={"bandwidth_bytes_per_second": 1000},
    )
    assert migration.as_dict() == {
        "name": "photos",
        "source_connection_id": source,
        "source_bucket": "source-bucket",
        "source_prefix": "in/",
        "destination_connection_id": destination,
        "destination_bucket": "destination-bucket",
        "destination_prefix": "out/",
        "overwrite": "skip-existing",
        "filters": {"min_size": 1},
        "storage_class": "GLACIER_IR",
        "limits": {"bandwidth_bytes_per_second": 1000},
    }


# Storage class and limits as a migration keeps them -------------------------------------


@pytest.mark.parametrize("storage_class", [None, *STORAGE_CLASSES])
def test_every_s3_storage_class_or_none_is_accepted(storage_class: str | None) -> None:
    check_storage_class(storage_class)


@pytest.mark.parametrize("storage_class", ["", "standard", "GLACIER_DEEP", "COLD"])
def test_another_storage_class_is_refused_naming_the_field(storage_class: str) -> None:
    with pytest.raises(InvalidRequest, match=r"^storage_class: .* is not an S3 storage class"):
        check_storage_class(storage_class)


def test_limits_keep_what_is_set_and_drop_what_is_not() -> None:
    assert checked_limits({"bandwidth_bytes_per_second": None, "concurrent_objects": 3}) == {
        "concurrent_objects": 3
    }
    assert checked_limits({}) == {}


@pytest.mark.parametrize("name", list(LIMITS))
def test_each_limit_may_be_from_one_to_its_highest(name: str) -> None:
    assert checked_limits({name: 1}) == {name: 1}
    assert checked_limits({name: LIMITS[name]}) == {name: LIMITS[name]}


@pytest.mark.parametrize("name", list(LIMITS))
@pytest.mark.parametrize("value", [0, -1, "highest+1", True, 2.5, "3"])
def test_a_limit_out_of_range_or_not_whole_is_refused_naming_it(name: str, value: Any) -> None:
    if value == "highest+1":
        value = LIMITS[name] + 1
    with pytest.raises(InvalidRequest, match=rf"^limits\.{name}: .* is not a whole number from 1"):
        checked_limits({name: value})


def test_an_unknown_limit_is_refused_naming_it() -> None:
    with pytest.raises(InvalidRequest, match=r"^limits\.objects_per_day: there is no such limit"):
        checked_limits({"objects_per_day": 5})


# Object and packet ids, and outcomes at fixed versions ---------------------------------------


def test_ids_are_deterministic_and_differ_by_what_they_name() -> None:
    a, b = uuid4(), uuid4()
    assert transfer.object_id(a, "k") == transfer.object_id(a, "k")
    assert (
        len({transfer.object_id(a, "k"), transfer.object_id(a, "k2"), transfer.object_id(b, "k")})
        == 3
    )
    assert transfer.packet_id(a, 1) == transfer.packet_id(a, 1) != transfer.packet_id(a, 2)
    # An object named like a packet gets another id: the namespaces do not collide
    assert transfer.object_id(a, "1") != transfer.packet_id(a, 1)
    assert transfer.event_id(a, 1) == transfer.event_id(a, 1) != transfer.event_id(a, 2)


def object_history(migration_id: UUID, *outcomes: Any) -> Any:
    return replayed(
        [
            transfer.planned_event(migration_id, "k", 5, "etag", uuid4(), NOW),
            *outcomes,
        ]
    )


def test_an_object_planned_then_copied_folds_to_copied_with_its_checksum() -> None:
    mid = uuid4()
    copied = transfer.copied_event(mid, "k", 5, "md5:abc", 1, NOW)
    obj = object_history(mid, copied)
    assert isinstance(obj, transfer.ObjectTransfer)
    assert (obj.id, obj.version) == (transfer.object_id(mid, "k"), 2)
    assert (obj.status, obj.checksum, obj.size) == (obj.COPIED, "md5:abc", 5)


def test_both_outcomes_of_one_planned_object_claim_the_same_version() -> None:
    # Two replicas recording different outcomes cannot both be stored: same id, same version
    mid = uuid4()
    copied = transfer.copied_event(mid, "k", 5, "md5:abc", 1, NOW)
    failed_ = transfer.failed_event(mid, "k", "timeout", "it stopped answering", 3, NOW)
    assert (copied.originator_id, copied.originator_version) == (
        failed_.originator_id,
        failed_.originator_version,
    )
    assert copied.originator_version == transfer.PLANNED_VERSION + 1


def test_a_retried_object_is_planned_again_and_its_next_outcome_follows_it() -> None:
    # Given an object that failed at version 2, then was put in a new packet
    mid, again = uuid4(), uuid4()
    failed_ = transfer.failed_event(mid, "k", "timeout", "silent", 3, NOW)
    retried = transfer.retried_event(mid, "k", failed_version=2, packet=again, timestamp=NOW)
    copied = transfer.copied_event(mid, "k", 5, "md5:abc", 1, NOW, planned_version=3)
    # Then the versions follow each other and the fold ends copied, in the new packet
    assert [failed_.originator_version, retried.originator_version, copied.originator_version] == [
        2,
        3,
        4,
    ]
    obj = object_history(mid, failed_, retried)
    assert (obj.status, obj.packet_id, obj.error) == (obj.PLANNED, again, "")
    obj = copied.mutate(obj)
    assert obj.status == obj.COPIED


def test_a_failed_object_keeps_why() -> None:
    mid = uuid4()
    obj = object_history(mid, transfer.failed_event(mid, "k", "access-denied", "denied", 1, NOW))
    assert (obj.status, obj.error) == (obj.FAILED, "access-denied: denied")


def test_a_packet_closes_at_its_second_version() -> None:
    mid = uuid4()
    closing = transfer.transferred_event(mid, 7, copied=3, failed=1, bytes=30, timestamp=NOW)
    assert closing.originator_id == transfer.packet_id(mid, 7)
    assert closing.originator_version == transfer.PACKET_PLANNED_VERSION + 1
    assert issubclass(transfer.Packet, Aggregate)
