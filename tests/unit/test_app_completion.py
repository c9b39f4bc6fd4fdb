"""Completion through the use cases: a running migration completes once every packet has
closed, once, with the copied and failed counts of its packets (retried failures not
counted twice); each check reads only the packets not yet known closed."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.popo import POPOApplicationRecorder

from cstor.app.lookup import RecorderLookup
from cstor.app.migrations import Migrations
from cstor.app.results import PlanTotals
from cstor.domain.migration import Migration
from tests.given import Given


def completed_event(app: Migrations) -> object:
    (completed,) = [
        app.mapper.to_domain_event(n)
        for n in app.notifications(0, 1_000_000)
        if n.topic.endswith("Migration.Completed")
    ]
    return completed


class CountingRecorder(POPOApplicationRecorder):
    """The in-memory recorder with a lookup of its own, counting the ids asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[int] = []

    def events_at(self, originator_ids: Sequence[UUID], version: int) -> list[StoredEvent]:
        self.asked.append(len(originator_ids))
        return RecorderLookup(self).events_at(originator_ids, version)


class CountedMigrations(Migrations):
    def construct_recorder(self) -> CountingRecorder:
        return CountingRecorder()


def test_a_migration_with_an_open_packet_does_not_complete(app: Migrations, given: Given) -> None:
    # Given a running migration of two packets, one closed
    migration_id = given.running(["a"], ["b"])
    app.record_packet(migration_id, 0, [given.result("a")])

    # Then it does not complete
    assert not app.complete_if_done(migration_id)
    assert app.get(migration_id).status == Migration.RUNNING


def test_a_packet_with_outcomes_but_not_closed_is_still_open(app: Migrations, given: Given) -> None:
    migration_id = given.running(["a", "b"])
    app.record_packet(migration_id, 0, [given.result("a"), given.result("b")], close=False)
    assert not app.complete_if_done(migration_id)


def test_once_every_packet_closed_it_completes_with_the_counts(
    app: Migrations, given: Given
) -> None:
    # Given a running migration of two packets
    migration_id = given.running(["a", "b"], ["c"])

    # When both close, "b" having failed
    app.record_packet(migration_id, 0, [given.result("a"), given.result("b", failing=["b"])])
    app.record_packet(migration_id, 1, [given.result("c")])

    # Then it completes with two copied and one failed
    assert app.complete_if_done(migration_id)
    assert app.get(migration_id).status == Migration.COMPLETED
    completed = completed_event(app)
    assert (completed.copied, completed.failed) == (2, 1)  # type: ignore[attr-defined]


def test_a_migration_completes_once(app: Migrations, given: Given) -> None:
    # Given a completed migration
    migration_id = given.completed(["a"])

    # When completion is checked again (a redelivered closing)
    again = app.complete_if_done(migration_id)

    # Then nothing more happens
    assert again is False
    assert given.topics().count("Migration.Completed") == 1


def test_packets_closing_in_any_order_complete_it_with_the_last(
    app: Migrations, given: Given
) -> None:
    # Given 30 one-object packets, closing out of order, checked after each
    keys = [f"k{n:02d}" for n in range(30)]
    migration_id = given.running(*[[key] for key in keys])
    order = [n for n in range(30) if n % 2] + [n for n in reversed(range(30)) if not n % 2]
    for n in order:
        app.record_packet(migration_id, n, [given.result(keys[n], failing=keys[::3])])
        # Then it completes with the last one, not before
        assert app.complete_if_done(migration_id) == (n == order[-1])

    # And the counts are each packet's once
    completed = completed_event(app)
    assert (completed.copied, completed.failed) == (20, 10)  # type: ignore[attr-defined]


def test_a_migration_of_no_packets_completes_at_once(app: Migrations, given: Given) -> None:
    # Given a migration whose source held nothing to copy
    migration_id = given.planning()
    app.finish_planning(migration_id, PlanTotals())

    # Then it completes with nothing counted
    assert app.complete_if_done(migration_id)
    completed = completed_event(app)
    assert (completed.copied, completed.failed) == (0, 0)  # type: ignore[attr-defined]


def test_planning_that_has_not_finished_does_not_complete(app: Migrations, given: Given) -> None:
    # Given a migration planning whose first packet already closed
    migration_id = given.planning()
    given.plan(migration_id, [["a"]])
    app.record_packet(migration_id, 0, [given.result("a")])

    # Then it does not complete: more packets may come
    assert not app.complete_if_done(migration_id)
    assert app.get(migration_id).status == Migration.PLANNING


def test_a_check_reads_only_the_packets_not_known_closed() -> None:
    # Given a running migration of 40 packets, 35 of them closed, checked once
    app = CountedMigrations({"PERSISTENCE_MODULE": "eventsourcing.popo"})
    given = Given(app)
    migration_id = given.running(*[[f"k{n:02d}"] for n in range(40)])
    for n in range(35):
        app.record_packet(migration_id, n, [given.result(f"k{n:02d}")])
    recorder = app.recorder
    assert isinstance(recorder, CountingRecorder)
    recorder.asked.clear()
    assert not app.complete_if_done(migration_id)
    first = sum(recorder.asked)

    # When it is checked again with nothing new closed
    recorder.asked.clear()
    assert not app.complete_if_done(migration_id)

    # Then the first check went through the recorder's own lookup, and the second
    # asked only about the five still open, not the 35 closed
    assert first >= 36
    assert 1 <= sum(recorder.asked) <= 5


def test_a_migration_completed_elsewhere_is_not_completed_again(
    app: Migrations, given: Given
) -> None:
    # Given a running migration whose packets all closed, cancelled by a user meanwhile
    migration_id = given.running(["a"])
    app.record_packet(migration_id, 0, [given.result("a")])
    app.cancel(migration_id)

    # Then completion finds it finished and records nothing
    assert not app.complete_if_done(migration_id)
    assert "Migration.Completed" not in given.topics()
