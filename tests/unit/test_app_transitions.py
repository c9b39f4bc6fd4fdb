"""Pause, resume and cancel from every state, through the use cases: what is allowed
moves the migration, what is refused raises MigrationStateError and records nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

import pytest

from cstor.app.migrations import Migrations
from cstor.app.results import PlanTotals, RetryObject
from cstor.domain.exceptions import MigrationStateError
from cstor.domain.migration import Migration
from tests.given import Given

STATES = ["requested", "planning", "running", "paused", "completed", "failed", "cancelled"]


def refused(app: Migrations, migration_id: UUID, command: Callable[[UUID], object]) -> None:
    """``command`` raises the domain error and leaves the migration as it was."""
    before = app.get(migration_id)
    with pytest.raises(MigrationStateError):
        command(migration_id)
    after = app.get(migration_id)
    assert (after.version, after.status) == (before.version, before.status)


# -- pause -------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["requested", "planning", "running"])
def test_a_migration_under_way_pauses_and_remembers_where(
    app: Migrations, given: Given, status: str
) -> None:
    # Given a migration that is requested, planning or running
    migration_id = given.in_state(status)

    # When it is paused
    app.pause(migration_id)

    # Then it is paused, and knows what it was doing
    migration = app.get(migration_id)
    assert migration.status == Migration.PAUSED
    assert migration.paused_from == status


@pytest.mark.parametrize("status", ["paused", "completed", "failed", "cancelled"])
def test_a_migration_paused_or_finished_cannot_pause(
    app: Migrations, given: Given, status: str
) -> None:
    refused(app, given.in_state(status), app.pause)


# -- resume ------------------------------------------------------------------------


@pytest.mark.parametrize("previous", ["requested", "planning", "running"])
def test_a_paused_migration_resumes_what_it_was_doing(
    app: Migrations, given: Given, previous: str
) -> None:
    # Given a migration paused while it was requested, planning or running
    migration_id = given.paused(previous)

    # When it is resumed
    app.resume(migration_id)

    # Then it goes back to what it was doing
    assert app.get(migration_id).status == previous
    assert given.topics()[-2:] == ["Migration.Paused", "Migration.Resumed"]


@pytest.mark.parametrize("status", [s for s in STATES if s != "paused"])
def test_only_a_paused_migration_resumes(app: Migrations, given: Given, status: str) -> None:
    refused(app, given.in_state(status), app.resume)


def test_pause_and_resume_can_follow_each_other_again(app: Migrations, given: Given) -> None:
    # Given a running migration paused and resumed
    migration_id = given.paused("running")
    app.resume(migration_id)

    # When it is paused and resumed again
    app.pause(migration_id)
    app.resume(migration_id)

    # Then it runs, and each step was recorded
    assert app.get(migration_id).status == Migration.RUNNING
    assert given.topics().count("Migration.Paused") == 2


def test_a_paused_migration_does_not_complete_until_resumed(app: Migrations, given: Given) -> None:
    # Given a running migration, paused, whose one packet then closed
    migration_id = given.paused("running")
    app.record_packet(migration_id, 0, [given.result("a")])

    # Then it does not complete while paused
    assert not app.complete_if_done(migration_id)
    assert app.get(migration_id).status == Migration.PAUSED

    # And it completes once resumed
    app.resume(migration_id)
    assert app.complete_if_done(migration_id)


def test_a_migration_paused_before_planning_plans_once_resumed(
    app: Migrations, given: Given
) -> None:
    # Given a migration paused before its planning began
    migration_id = given.paused("requested")

    # Then planning cannot begin while it is paused
    refused(app, migration_id, app.start_planning)

    # And once resumed it can
    app.resume(migration_id)
    assert app.start_planning(migration_id).status == Migration.PLANNING


# -- cancel ------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["requested", "planning", "running", "paused"])
def test_a_migration_not_finished_can_be_cancelled(
    app: Migrations, given: Given, status: str
) -> None:
    # Given a migration that has not finished
    migration_id = given.in_state(status)

    # When it is cancelled
    app.cancel(migration_id)

    # Then it is cancelled and finished
    migration = app.get(migration_id)
    assert migration.status == Migration.CANCELLED
    assert migration.finished_at is not None


@pytest.mark.parametrize("status", ["completed", "failed", "cancelled"])
def test_a_finished_migration_cannot_be_cancelled(
    app: Migrations, given: Given, status: str
) -> None:
    refused(app, given.in_state(status), app.cancel)


def test_a_cancelled_migration_does_not_complete_when_its_packets_close(
    app: Migrations, given: Given
) -> None:
    # Given a running migration cancelled while its packet was being copied
    migration_id = given.running()
    app.cancel(migration_id)

    # When the packet closes after all
    assert app.record_packet(migration_id, 0, [given.result("a")])

    # Then the migration stays cancelled
    assert not app.complete_if_done(migration_id)
    assert app.get(migration_id).status == Migration.CANCELLED


def test_a_cancelled_migration_cannot_finish_planning(app: Migrations, given: Given) -> None:
    migration_id = given.planning()
    app.cancel(migration_id)
    refused(app, migration_id, lambda m: app.finish_planning(m, PlanTotals(packets=1)))


# -- retry ------------------------------------------------------------------------


@pytest.mark.parametrize("status", [s for s in STATES if s != "completed"])
def test_failures_are_retried_only_once_a_migration_completed(
    app: Migrations, given: Given, status: str
) -> None:
    # Given a migration that has not completed; When its failures are retried, Then refused
    retry = RetryObject("a", 10, "etag-a", 2)
    refused(app, given.in_state(status), lambda m: app.retry_failed(m, [retry]))


@pytest.mark.parametrize("status", [s for s in STATES if s != "running"])
def test_only_a_running_migration_completes(app: Migrations, given: Given, status: str) -> None:
    # Given a migration in any other state; Then a completion check changes nothing
    migration_id = given.in_state(status)
    version = app.get(migration_id).version
    assert not app.complete_if_done(migration_id)
    assert app.get(migration_id).version == version
