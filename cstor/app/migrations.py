"""``Migrations``: the write side of cstor, migrations and their objects as events.

Its methods are the use cases; they raise `cstor.domain.exceptions` errors, and
``IntegrityError`` (the library's) where another process recorded the same thing first.
It is synchronous: async callers run it in a worker thread. It runs on whatever
persistence its environment names: the services give it Postgres
(`cstor.settings.Settings.eventsourcing_env`), whose schema `cstor.store.migrations` has
made before; the unit tests give it the library's in-memory recorder.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import IntegrityError, Notification

from cstor.app import outcomes
from cstor.app.lookup import lookup_for
from cstor.app.packets import CLOSED, PLANNED, ClosedPackets, PacketEvents, new_packet
from cstor.app.results import CopyResult, PlanTotals, RetryObject, Tally
from cstor.domain import planning
from cstor.domain.exceptions import MigrationStateError
from cstor.domain.migration import Migration
from cstor.domain.transfer import Packet, failed_event, planned_event, retried_event

RETRY_PACKET_OBJECTS = 1000
"""How many failed objects go into each packet of a retry."""

_REQUEST_DEFAULTS: dict[str, Any] = {
    "overwrite": "if-different",
    "filters": {},
    "sync_of": None,
    "storage_class": None,
    "limits": {},
}
"""The library's generated event class does not carry keyword-only defaults over."""


class Migrations(Application[UUID]):
    """The write side of cstor: migrations and their objects, as events."""

    name = "cstor"

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        super().__init__(env=env)
        self.lookup = lookup_for(self.recorder)
        self.packets = PacketEvents(self.lookup, self.mapper)
        self._closed = ClosedPackets(self.packets)

    def _save_new(self, events: Sequence[DomainEventProtocol[UUID]], *aggregates: Any) -> None:
        """``save(*events, *aggregates)`` for many new events, in one transaction.

        ``save`` asks ``isinstance(obj, DomainEventProtocol)`` of each object, a runtime
        Protocol check that cost more than encoding the event: an eighth of the
        planner's CPU (py-spy). These are events already, so they go straight in.
        """
        processing_event: ProcessingEvent[UUID] = ProcessingEvent()
        processing_event.events.extend(events)
        processing_event.collect_events(*aggregates)
        recordings = self._record(processing_event)
        self._take_snapshots(processing_event)
        self._notify(recordings)

    # -- migrations --------------------------------------------------------------

    def request(self, **request: Any) -> UUID:
        """Record a new migration request; the planner takes it from here."""
        migration = Migration(**(_REQUEST_DEFAULTS | request))
        self.save(migration)
        return migration.id

    def get(self, migration_id: UUID) -> Migration:
        """The migration as its events say it is now."""
        migration: Migration = self.repository.get(migration_id)
        return migration

    def start_planning(self, migration_id: UUID) -> Migration:
        """Mark planning as begun; raises MigrationStateError if it already began."""
        migration = self.get(migration_id)
        migration.start_planning()
        self.save(migration)
        return migration

    def finish_planning(self, migration_id: UUID, totals: PlanTotals) -> None:
        """Record the end of planning with the migration's totals."""
        migration = self.get(migration_id)
        migration.finish_planning(
            packets=totals.packets,
            objects=totals.objects,
            bytes=totals.bytes,
            skipped=totals.skipped,
        )
        self.save(migration)

    def fail(self, migration_id: UUID, *, reason: str, message: str) -> None:
        """Record that a migration cannot go on, with the reason a user will read."""
        migration = self.get(migration_id)
        migration.fail(reason=reason, message=message)
        self.save(migration)

    def pause(self, migration_id: UUID) -> None:
        """Pause a migration where it is; ``resume`` goes on from there."""
        migration = self.get(migration_id)
        migration.pause()
        self.save(migration)

    def resume(self, migration_id: UUID) -> None:
        """Go on with a paused migration from where it stopped."""
        migration = self.get(migration_id)
        migration.resume()
        self.save(migration)

    def cancel(self, migration_id: UUID) -> None:
        """End a migration that has not finished; what was copied stays recorded."""
        migration = self.get(migration_id)
        migration.cancel()
        self.save(migration)

    def retry_failed(self, migration_id: UUID, failed: Sequence[RetryObject]) -> int:
        """Put failed objects into new packets, in one transaction; returns how many.

        Each object is given at the version its failure left it; if any has moved on
        since (another retry won), nothing is recorded and IntegrityError is raised.
        """
        migration = self.get(migration_id)
        now = datetime.now(UTC)
        events: list[Any] = []
        size = RETRY_PACKET_OBJECTS
        chunks = [failed[i : i + size] for i in range(0, len(failed), size)]
        for offset, chunk in enumerate(chunks):
            sequence = migration.packets + offset
            packet_id = Packet.create_id(migration.id, sequence)
            events += [
                retried_event(migration.id, obj.key, obj.version, packet_id, now) for obj in chunk
            ]
            objects = [[o.key, o.size, o.etag, o.version + 1] for o in chunk]
            events.append(new_packet(migration, sequence, objects))
        migration.retry_failed(objects=len(failed), packets=len(chunks))
        self.save(*events, migration)
        return len(failed)

    def complete_if_done(self, migration_id: UUID) -> bool:
        """Complete a running migration once every one of its packets has been transferred."""
        migration = self.get(migration_id)
        if migration.status != Migration.RUNNING:
            if migration.status in Migration.FINISHED:
                self._closed.forget(migration_id)
            return False
        closings = self._closed.closings(migration_id, migration.packets)
        if closings is None:
            return False
        try:
            migration.complete(
                copied=sum(copied for copied, _ in closings),
                # A retried object's first failure is in an earlier packet's count.
                failed=sum(failed for _, failed in closings) - migration.retried,
            )
            self.save(migration)
        except (IntegrityError, MigrationStateError):
            return False  # another planner replica completed it first
        self._closed.forget(migration_id)
        return True

    # -- packets and objects -----------------------------------------------------

    def plan_packet(
        self, migration: Migration, sequence: int, packet: planning.PacketDraft, totals: PlanTotals
    ) -> bool:
        """Record a packet, its objects and its skipped objects in one transaction.

        An object that failed while planning (`planning.FailedObject`) is one of the
        packet's objects, recorded planned and, in the same transaction, failed (no copy
        was attempted: 0 attempts). The transfer service reads that outcome as it reads
        one recorded before a crash, copies only the others and counts it in the packet's
        closing; retry-failed queues it again like any failed object. A re-plan is refused
        whole, so the failure is recorded once, at the object's version 2.

        ``totals`` are the running totals including this packet: the planner's
        checkpoint. Returns False if the packet was already planned (a re-plan).
        """
        now = datetime.now(UTC)
        packet_id = Packet.create_id(migration.id, sequence)
        objects: list[planning.PlannedObject | planning.FailedObject] = [
            *packet.planned,
            *packet.failed,
        ]
        events: list[DomainEventProtocol[UUID]] = [
            planned_event(migration.id, obj.key, obj.size, obj.etag, packet_id, now)
            for obj in objects
        ]
        events += [
            failed_event(migration.id, obj.key, obj.reason, obj.message, 0, now)
            for obj in packet.failed
        ]
        closing = new_packet(
            migration,
            sequence,
            [[obj.key, obj.size, obj.etag] for obj in objects],
            skipped=[[obj.key, obj.size, obj.reason] for obj in packet.skipped],
            last_key=packet.last_key,
            totals=(totals.objects, totals.bytes, totals.skipped),
        )
        try:
            self._save_new(events, closing)
        except IntegrityError:
            return False
        return True

    def planning_checkpoint(self, migration_id: UUID) -> tuple[int, str, PlanTotals]:
        """Where an interrupted planning resumes: next packet, last key, totals so far."""
        planned = self.packets.count_planned(migration_id)
        if planned == 0:
            return 0, "", PlanTotals()
        (last,) = self.packets.of(migration_id, [planned - 1], PLANNED)
        totals = PlanTotals(
            packets=planned,
            objects=last.planned_total,  # type: ignore[attr-defined]
            bytes=last.bytes_total,  # type: ignore[attr-defined]
            skipped=last.skipped_total,  # type: ignore[attr-defined]
        )
        return planned, last.last_key, totals  # type: ignore[attr-defined]

    def record_packet(
        self,
        migration_id: UUID,
        sequence: int,
        results: Sequence[CopyResult],
        *,
        close: bool = True,
        earlier: Tally | None = None,
    ) -> bool:
        """Record a batch of a packet's outcomes and, unless ``close`` is False, close the
        packet: one transaction. ``earlier`` counts the packet's outcomes recorded before
        this batch (earlier batches, or before a pause or a crash), which the close adds in.

        Returns False, recording nothing, when any of these outcomes or the close is
        already recorded (another delivery of the packet got there first).
        """
        events = outcomes.outcome_events(
            migration_id,
            sequence,
            results,
            close=close,
            earlier=earlier or Tally(),
            now=datetime.now(UTC),
        )
        try:
            self._save_new(events)
        except IntegrityError:
            return False
        return True

    def recorded_outcomes(
        self, migration_id: UUID, objects: Sequence[tuple[str, int]]
    ) -> tuple[set[str], Tally]:
        """Which of a packet's objects (key, packed version) already have their outcome,
        e.g. recorded before a pause, and the tally of those outcomes."""
        return outcomes.recorded_outcomes(self.lookup, self.mapper, migration_id, objects)

    def packet_transferred(self, migration_id: UUID, sequence: int) -> bool:
        """Whether a packet's outcomes are already recorded (so a redelivery has nothing to do)."""
        return bool(self.packets.of(migration_id, [sequence], CLOSED))

    # -- the notification log, for the outbox relay -------------------------------

    def notifications(self, after: int, limit: int) -> Sequence[Notification]:
        """Stored events after a position, in the order they were recorded."""
        return self.recorder.select_notifications(
            start=after, limit=limit, inclusive_of_start=False
        )
