"""A migration's lifecycle through the use cases: request -> planning -> running ->
completed, or failed; each refused step raises the domain error and records nothing.

`Migrations` on the library's in-memory recorder (tests/unit/conftest.py).
"""

from __future__ import annotations

from uuid import uuid4

import pytest
from eventsourcing.application import AggregateNotFoundError

from cstor.app.migrations import Migrations
from cstor.app.results import PlanTotals
from cstor.domain.exceptions import DomainError, MigrationStateError
from cstor.domain.migration import Migration
from tests.given import Given


def test_a_request_is_recorded_with_its_fields(app: Migrations, given: Given) -> None:
    # Given a request for a migration between two connections
    source, destination = uuid4(), uuid4()

    # When it is recorded
    migration_id = given.requested(
        name="archive",
        source_connection_id=source,
        source_bucket="old",
        source_prefix="2024/",
        destination_connection_id=destination,
        destination_bucket="new",
        destination_prefix="kept/",
    )

    # Then the migration read back is requested, with what was asked
    migration = app.get(migration_id)
    assert migration.status == Migration.REQUESTED
    assert (migration.name, migration.owner) == ("archive", "someone")
    assert (migration.source_connection_id, migration.source_bucket) == (source, "old")
    assert (migration.destination_connection_id, migration.destination_bucket) == (
        destination,
        "new",
    )
    assert (migration.source_prefix, migration.destination_prefix) == ("2024/", "kept/")
    assert given.topics() == ["Migration.Requested"]


def test_a_request_without_options_gets_the_defaults(app: Migrations, given: Given) -> None:
    # When a migration is requested with none of the optional fields
    migration = app.get(given.requested())

    # Then it takes the defaults the request form shows
    assert migration.overwrite == "if-different"
    assert migration.filters == {}
    assert migration.limits == {}
    assert migration.storage_class is None
    assert migration.sync_of is None


def test_a_request_keeps_the_options_it_was_given(app: Migrations, given: Given) -> None:
    # Given a request naming every option
    earlier = given.requested()

    # When it is recorded
    migration = app.get(
        given.requested(
            overwrite="skip-existing",
            filters={"include": ["*.jpg"], "min_size": 1},
            limits={"concurrent_objects": 4},
            storage_class="GLACIER",
            sync_of=earlier,
        )
    )

    # Then they are kept as given
    assert migration.overwrite == "skip-existing"
    assert migration.filters == {"include": ["*.jpg"], "min_size": 1}
    assert migration.limits == {"concurrent_objects": 4}
    assert migration.storage_class == "GLACIER"
    assert migration.sync_of == earlier


def test_two_requests_are_two_migrations(app: Migrations, given: Given) -> None:
    first, second = given.requested(name="one"), given.requested(name="one")
    assert first != second
    assert app.get(first).name == app.get(second).name == "one"


def test_planning_starts_once(app: Migrations, given: Given) -> None:
    # Given a requested migration
    migration_id = given.requested()

    # When planning starts
    migration = app.start_planning(migration_id)

    # Then it is planning, as the store has it too
    assert migration.status == Migration.PLANNING
    assert app.get(migration_id).status == Migration.PLANNING


def test_planning_cannot_start_twice_and_the_second_start_records_nothing(
    app: Migrations, given: Given
) -> None:
    # Given a migration already planning (a redelivered request)
    migration_id = given.planning()
    version = app.get(migration_id).version

    # When planning is started again, Then the domain error says so
    with pytest.raises(MigrationStateError, match="planning, not requested"):
        app.start_planning(migration_id)
    # And nothing was recorded
    assert app.get(migration_id).version == version


def test_finishing_planning_runs_the_migration_with_its_totals(
    app: Migrations, given: Given
) -> None:
    # Given a migration planning
    migration_id = given.planning()

    # When its planning finishes
    app.finish_planning(migration_id, PlanTotals(packets=3, objects=20, bytes=2_000, skipped=5))

    # Then it runs with the totals of its plan
    migration = app.get(migration_id)
    assert migration.status == Migration.RUNNING
    assert (migration.packets, migration.objects, migration.bytes, migration.skipped) == (
        3,
        20,
        2_000,
        5,
    )


def test_planning_cannot_finish_before_it_started(app: Migrations, given: Given) -> None:
    migration_id = given.requested()
    with pytest.raises(MigrationStateError, match="not planning"):
        app.finish_planning(migration_id, PlanTotals(packets=1, objects=1))
    assert app.get(migration_id).status == Migration.REQUESTED


def test_planning_cannot_finish_twice(app: Migrations, given: Given) -> None:
    migration_id = given.running()
    with pytest.raises(MigrationStateError):
        app.finish_planning(migration_id, PlanTotals(packets=9, objects=9))
    assert app.get(migration_id).packets == 1


def test_planning_that_finishes_while_paused_leaves_it_paused_until_resumed(
    app: Migrations, given: Given
) -> None:
    # Given a migration paused while planning
    migration_id = given.planning()
    app.pause(migration_id)

    # When its planning finishes
    app.finish_planning(migration_id, PlanTotals(packets=2, objects=2))

    # Then it stays paused, with its totals; resumed, it runs
    assert app.get(migration_id).status == Migration.PAUSED
    assert app.get(migration_id).packets == 2
    app.resume(migration_id)
    assert app.get(migration_id).status == Migration.RUNNING


def test_the_whole_lifecycle_records_its_events_in_order(app: Migrations, given: Given) -> None:
    # Given a migration of one packet of one object
    migration_id = given.requested()
    migration = app.start_planning(migration_id)
    totals = given.plan(migration_id, [["a"]])
    app.finish_planning(migration_id, totals)

    # When the object is copied and the migration completed
    app.record_packet(migration_id, 0, [given.result("a")])
    assert app.complete_if_done(migration_id)

    # Then it is completed, and the store holds each step once, in order
    assert app.get(migration_id).status == Migration.COMPLETED
    assert app.get(migration_id).finished_at is not None
    assert migration.status == Migration.PLANNING
    assert given.topics() == [
        "Migration.Requested",
        "Migration.PlanningStarted",
        "ObjectTransfer.Planned",
        "Packet.Planned",
        "Migration.Planned",
        "ObjectTransfer.Copied",
        "Packet.Transferred",
        "Migration.Completed",
    ]


@pytest.mark.parametrize("status", ["requested", "planning", "running", "paused"])
def test_a_migration_not_finished_can_fail_with_its_reason(
    app: Migrations, given: Given, status: str
) -> None:
    # Given a migration that has not finished
    migration_id = given.in_state(status)

    # When it fails
    app.fail(migration_id, reason="no-bucket", message="the source bucket is gone")

    # Then it is failed, saying why, and finished
    migration = app.get(migration_id)
    assert migration.status == Migration.FAILED
    assert migration.error == "no-bucket: the source bucket is gone"
    assert migration.finished_at is not None


@pytest.mark.parametrize("status", ["completed", "failed", "cancelled"])
def test_a_finished_migration_cannot_fail(app: Migrations, given: Given, status: str) -> None:
    migration_id = given.in_state(status)
    version = app.get(migration_id).version
    with pytest.raises(MigrationStateError, match=f"already {status}"):
        app.fail(migration_id, reason="late", message="too late")
    assert app.get(migration_id).version == version
    assert app.get(migration_id).status == status


def test_a_failed_migration_does_not_complete(app: Migrations, given: Given) -> None:
    # Given a running migration whose planning failed it, then its packet closed
    migration_id = given.running()
    app.fail(migration_id, reason="no-bucket", message="gone")
    app.record_packet(migration_id, 0, [given.result("a")])

    # Then it stays failed
    assert not app.complete_if_done(migration_id)
    assert app.get(migration_id).status == Migration.FAILED


def test_the_state_errors_are_domain_errors(app: Migrations, given: Given) -> None:
    # The api maps DomainError in one place: the use cases raise nothing else for a
    # command that does not fit
    migration_id = given.completed()
    with pytest.raises(DomainError):
        app.pause(migration_id)


def test_an_unknown_migration_is_not_found(app: Migrations) -> None:
    with pytest.raises(AggregateNotFoundError):
        app.get(uuid4())
