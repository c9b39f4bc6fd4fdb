"""The event store: the source of truth for every migration's and every object's status.

``Migrations`` is the eventsourcing application; its methods are the write-side use
cases. It is synchronous (psycopg): async callers run it in a worker thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import IntegrityError, Notification, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from cstor.domain import planning
from cstor.domain.exceptions import MigrationStateError
from cstor.domain.migration import Migration
from cstor.domain.transfer import (
    Packet,
    copied_event,
    failed_event,
    object_id,
    planned_event,
    retried_event,
    transferred_event,
)
from cstor.settings import Settings
from cstor.store import locks


@dataclass(frozen=True)
class RetryObject:
    """A failed object to try again: as the source has it now, at its current version."""

    key: str
    size: int
    etag: str
    version: int


@dataclass(frozen=True)
class Tally:
    """Outcomes counted: objects copied and failed, and the bytes copied."""

    copied: int = 0
    failed: int = 0
    bytes: int = 0


@dataclass(frozen=True)
class PlanTotals:
    """Running totals of a migration's planning."""

    packets: int = 0
    objects: int = 0
    bytes: int = 0
    skipped: int = 0


class CopyResult:
    """The outcome of one object of a packet, as the transfer service reports it."""

    __slots__ = ("attempts", "checksum", "key", "message", "reason", "size", "version")

    def __init__(
        self,
        key: str,
        *,
        size: int = 0,
        checksum: str = "",
        reason: str = "",
        message: str = "",
        attempts: int = 1,
        version: int = 1,
    ) -> None:
        self.version = version  # the object's version when it was packed
        self.key = key
        self.size = size
        self.checksum = checksum
        self.reason = reason
        self.message = message
        self.attempts = attempts

    @property
    def copied(self) -> bool:
        return not self.reason


class ColumnarRecorder(PostgresApplicationRecorder):
    """Inserts a batch of events as four arrays, one per column.

    The library sends an array of composite values, which psycopg writes as escaped
    text: about 0.1 ms of CPU per event. Plain arrays go out in binary.
    """

    def __init__(
        self, datastore: PostgresDatastore, events_table_name: str = "stored_events"
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        self.insert_events_statement = SQL(
            "INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state)"
            " SELECT * FROM unnest(%s::uuid[], %s::bigint[], %s::text[], %s::bytea[])"
            " RETURNING notification_id"
        ).format(schema=Identifier(datastore.schema), table=Identifier(events_table_name))

    def _insert_stored_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **_: Any
    ) -> None:
        self._lock_table(curs)
        self._notify_channel(curs)
        curs.execute(
            self.insert_events_statement,
            (
                [e.originator_id for e in stored_events],
                [e.originator_version for e in stored_events],
                [e.topic for e in stored_events],
                [e.state for e in stored_events],
            ),
            binary=True,
        )


class Migrations(Application[UUID]):
    """The write side of cstor: migrations and their objects, as events."""

    name = "cstor"

    def __init__(self, settings: Settings) -> None:
        # Every service creates the store's tables if missing; services start together, and
        # concurrent CREATE TABLE IF NOT EXISTS can still collide, so take turns.
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (locks.EVENT_STORE_SCHEMA,))
            try:
                super().__init__(env=settings.eventsourcing_env())
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (locks.EVENT_STORE_SCHEMA,))
        # Each running migration's closed packets, by sequence: (copied, failed). A closed
        # packet stays closed, so each closing is read from the store once, not once per
        # completion check (which made a migration's checks quadratic in its packets).
        self._closed: dict[UUID, dict[int, tuple[int, int]]] = {}

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
        # The library's generated event class does not carry keyword-only defaults over.
        defaults: dict[str, Any] = {
            "overwrite": "if-different",
            "filters": {},
            "sync_of": None,
            "storage_class": None,
            "limits": {},
        }
        migration = Migration(**(defaults | request))
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

    def retry_failed(self, migration_id: UUID, failed: Sequence[RetryObject]) -> int:
        """Put failed objects into new packets, in one transaction; returns how many.

        Each object is given at the version its failure left it; if any has moved on
        since (another retry won), nothing is recorded and IntegrityError is raised.
        """
        migration = self.get(migration_id)
        now = datetime.now(UTC)
        events: list[Any] = []
        packets = [failed[i : i + 1000] for i in range(0, len(failed), 1000)]
        for offset, chunk in enumerate(packets):
            sequence = migration.packets + offset
            packet_id = Packet.create_id(migration.id, sequence)
            events += [
                retried_event(migration.id, obj.key, obj.version, packet_id, now) for obj in chunk
            ]
            events.append(
                Packet(
                    migration_id=migration.id,
                    sequence=sequence,
                    source_connection_id=migration.source_connection_id,
                    source_bucket=migration.source_bucket,
                    source_prefix=migration.source_prefix,
                    destination_connection_id=migration.destination_connection_id,
                    destination_bucket=migration.destination_bucket,
                    destination_prefix=migration.destination_prefix,
                    objects=[[o.key, o.size, o.etag, o.version + 1] for o in chunk],
                    skipped=[],
                    last_key="",
                    planned_total=0,
                    bytes_total=0,
                    skipped_total=0,
                )
            )
        migration.retry_failed(objects=len(failed), packets=len(packets))
        self.save(*events, migration)
        return len(failed)

    def fail(self, migration_id: UUID, *, reason: str, message: str) -> None:
        """Record that a migration cannot go on, with the reason a user will read."""
        migration = self.get(migration_id)
        migration.fail(reason=reason, message=message)
        self.save(migration)

    def complete_if_done(self, migration_id: UUID) -> bool:
        """Complete a running migration once every one of its packets has been transferred."""
        migration = self.get(migration_id)
        if migration.status != Migration.RUNNING:
            if migration.status in Migration.FINISHED:
                self._closed.pop(migration_id, None)
            return False
        closings = self._closings(migration_id, migration.packets)
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
        self._closed.pop(migration_id, None)
        return True

    def _closings(self, migration_id: UUID, count: int) -> list[tuple[int, int]] | None:
        """(copied, failed) of each of the first ``count`` packets; None while one is open.

        Packets not known closed are read in order, in chunks of ten, then twenty and
        so on, stopping at the first chunk with one still open: a check costs about the
        packets closed since the last one, whatever the migration's size.
        """
        known = self._closed.setdefault(migration_id, {})
        pending = [n for n in range(count) if n not in known]
        start, size = 0, 10
        while start < len(pending):
            chunk = pending[start : start + size]
            found = self._packet_events_of(migration_id, chunk, version=2)
            for closing in found:
                known[closing.sequence] = (closing.copied, closing.failed)  # type: ignore[attr-defined]
            if len(found) < len(chunk):
                return None
            start, size = start + size, min(1000, 2 * size)
        return [known[n] for n in range(count)]

    # -- packets and objects -----------------------------------------------------

    def plan_packet(
        self, migration: Migration, sequence: int, packet: planning.Packet, totals: PlanTotals
    ) -> bool:
        """Record a packet, its objects and its skipped objects in one transaction.

        ``totals`` are the running totals including this packet: the planner's
        checkpoint. Returns False if the packet was already planned (a re-plan).
        """
        now = datetime.now(UTC)
        packet_id = Packet.create_id(migration.id, sequence)
        events = [
            planned_event(migration.id, obj.key, obj.size, obj.etag, packet_id, now)
            for obj in packet.planned
        ]
        closing = Packet(
            migration_id=migration.id,
            sequence=sequence,
            source_connection_id=migration.source_connection_id,
            source_bucket=migration.source_bucket,
            source_prefix=migration.source_prefix,
            destination_connection_id=migration.destination_connection_id,
            destination_bucket=migration.destination_bucket,
            destination_prefix=migration.destination_prefix,
            objects=[[obj.key, obj.size, obj.etag] for obj in packet.planned],
            skipped=[[obj.key, obj.size, obj.reason] for obj in packet.skipped],
            last_key=packet.last_key,
            planned_total=totals.objects,
            bytes_total=totals.bytes,
            skipped_total=totals.skipped,
        )
        try:
            self._save_new(events, closing)
        except IntegrityError:
            return False
        return True

    def planning_checkpoint(self, migration_id: UUID) -> tuple[int, str, PlanTotals]:
        """Where an interrupted planning resumes: next packet, last key, totals so far."""
        planned = 0
        while True:
            found = self._packet_events(migration_id, planned, 1000, version=1)
            if len(found) < 1000:
                planned += len(found)
                break
            planned += 1000
        if planned == 0:
            return 0, "", PlanTotals()
        (last,) = self._packet_events(migration_id, planned - 1, 1, version=1)
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
        now = datetime.now(UTC)
        events: list[DomainEventProtocol[UUID]] = []
        before = earlier or Tally()
        copied, failed, copied_bytes = before.copied, before.failed, before.bytes
        for result in results:
            if result.copied:
                copied += 1
                copied_bytes += result.size
                events.append(
                    copied_event(
                        migration_id,
                        result.key,
                        result.size,
                        result.checksum,
                        now,
                        result.version,
                    )
                )
            else:
                failed += 1
                events.append(
                    failed_event(
                        migration_id,
                        result.key,
                        result.reason,
                        result.message,
                        result.attempts,
                        now,
                        result.version,
                    )
                )
        if close:
            events.append(
                transferred_event(migration_id, sequence, copied, failed, copied_bytes, now)
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
        wanted = {object_id(migration_id, key): (key, version + 1) for key, version in objects}
        if not wanted:
            return set(), Tally()
        recorder = self.pg_recorder
        statement = SQL(
            "SELECT originator_id, originator_version, topic, state FROM {schema}.{table} "
            "WHERE originator_id = ANY(%s) AND originator_version > 1"
        ).format(
            schema=Identifier(recorder.datastore.schema),
            table=Identifier(recorder.events_table_name),
        )
        with recorder.datastore.transaction(commit=False) as curs:
            curs.execute(statement, (list(wanted),))
            rows = curs.fetchall()
        done: set[str] = set()
        tally = Tally()
        for row in rows:
            key, outcome_version = wanted[row["originator_id"]]
            if row["originator_version"] != outcome_version:
                continue
            done.add(key)
            if row["topic"].endswith("ObjectTransfer.Copied"):
                event = self.mapper.to_domain_event(
                    StoredEvent(
                        row["originator_id"],
                        row["originator_version"],
                        row["topic"],
                        bytes(row["state"]),
                    )
                )
                tally = Tally(tally.copied + 1, tally.failed, tally.bytes + event.size)  # type: ignore[attr-defined]
            else:
                tally = Tally(tally.copied, tally.failed + 1, tally.bytes)
        return done, tally

    def pause(self, migration_id: UUID) -> None:
        migration = self.get(migration_id)
        migration.pause()
        self.save(migration)

    def resume(self, migration_id: UUID) -> None:
        migration = self.get(migration_id)
        migration.resume()
        self.save(migration)

    def cancel(self, migration_id: UUID) -> None:
        migration = self.get(migration_id)
        migration.cancel()
        self.save(migration)

    def packet_transferred(self, migration_id: UUID, sequence: int) -> bool:
        """Whether a packet's outcomes are already recorded (so a redelivery has nothing to do)."""
        return bool(self._packet_events(migration_id, sequence, 1, version=2))

    def _packet_events(
        self, migration_id: UUID, start: int, count: int, *, version: int
    ) -> list[DomainEventProtocol[UUID]]:
        """Packets ``start .. start+count-1``'s events at ``version`` (1 planned, 2 closed)."""
        return self._packet_events_of(migration_id, range(start, start + count), version=version)

    def _packet_events_of(
        self, migration_id: UUID, sequences: Sequence[int], *, version: int
    ) -> list[DomainEventProtocol[UUID]]:
        """The events at ``version`` (1 planned, 2 closed) of the packets ``sequences``."""
        if not sequences:
            return []
        ids = [Packet.create_id(migration_id, n) for n in sequences]
        recorder = self.pg_recorder
        statement = SQL(
            "SELECT originator_id, originator_version, topic, state FROM {schema}.{table} "
            "WHERE originator_id = ANY(%s) AND originator_version = %s"
        ).format(
            schema=Identifier(recorder.datastore.schema),
            table=Identifier(recorder.events_table_name),
        )
        with recorder.datastore.transaction(commit=False) as curs:
            curs.execute(statement, (ids, version))
            rows = curs.fetchall()
        return [
            self.mapper.to_domain_event(
                StoredEvent(
                    originator_id=row["originator_id"],
                    originator_version=row["originator_version"],
                    topic=row["topic"],
                    state=bytes(row["state"]),
                )
            )
            for row in rows
        ]

    # -- the notification log, for the outbox relay -------------------------------

    def notifications(self, after: int, limit: int) -> Sequence[Notification]:
        """Stored events after a position, in the order they were recorded."""
        return self.recorder.select_notifications(
            start=after, limit=limit, inclusive_of_start=False
        )

    @property
    def pg_recorder(self) -> PostgresApplicationRecorder:
        recorder = self.recorder
        assert isinstance(recorder, PostgresApplicationRecorder)
        return recorder
