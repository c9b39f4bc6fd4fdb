"""The event store: the source of truth for every migration's and every object's status.

``Migrations`` is the eventsourcing application; its methods are the write-side use
cases. It is synchronous (psycopg): async callers run it in a worker thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import IntegrityError, Notification, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.sql import SQL, Identifier

from cstor.domain.exceptions import MigrationStateError
from cstor.domain.migration import Migration
from cstor.domain.planning import PlannedObject
from cstor.domain.transfer import (
    ObjectTransfer,
    Packet,
    copied_event,
    failed_event,
    transferred_event,
)
from cstor.settings import Settings


class CopyResult:
    """The outcome of one object of a packet, as the transfer service reports it."""

    __slots__ = ("attempts", "checksum", "key", "message", "reason", "size")

    def __init__(
        self,
        key: str,
        *,
        size: int = 0,
        checksum: str = "",
        reason: str = "",
        message: str = "",
        attempts: int = 1,
    ) -> None:
        self.key = key
        self.size = size
        self.checksum = checksum
        self.reason = reason
        self.message = message
        self.attempts = attempts

    @property
    def copied(self) -> bool:
        return not self.reason


class Migrations(Application[UUID]):
    """The write side of cstor: migrations and their objects, as events."""

    name = "cstor"

    def __init__(self, settings: Settings) -> None:
        super().__init__(env=settings.eventsourcing_env())

    # -- migrations --------------------------------------------------------------

    def request(self, **request: Any) -> UUID:
        """Record a new migration request; the planner takes it from here."""
        migration = Migration(**request)
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

    def finish_planning(
        self, migration_id: UUID, *, packets: int, objects: int, bytes: int
    ) -> None:
        migration = self.get(migration_id)
        migration.finish_planning(packets=packets, objects=objects, bytes=bytes)
        self.save(migration)

    def fail(self, migration_id: UUID, *, reason: str, message: str) -> None:
        """Record that a migration cannot go on, with the reason a user will read."""
        migration = self.get(migration_id)
        migration.fail(reason=reason, message=message)
        self.save(migration)

    def complete_if_done(self, migration_id: UUID) -> bool:
        """Complete a running migration once every one of its packets has been transferred."""
        migration = self.get(migration_id)
        if migration.status != Migration.RUNNING:
            return False
        closings = self._packet_closings(migration_id, migration.packets)
        if len(closings) < migration.packets:
            return False
        try:
            migration.complete(
                copied=sum(c.copied for c in closings),  # type: ignore[attr-defined]
                failed=sum(c.failed for c in closings),  # type: ignore[attr-defined]
            )
            self.save(migration)
        except (IntegrityError, MigrationStateError):
            return False  # another planner replica completed it first
        return True

    # -- packets and objects -----------------------------------------------------

    def plan_packet(
        self, migration: Migration, sequence: int, objects: Sequence[PlannedObject]
    ) -> bool:
        """Record a packet and its objects in one transaction; False if it was already planned."""
        transfers = [
            ObjectTransfer(
                migration_id=migration.id,
                key=obj.key,
                size=obj.size,
                etag=obj.etag,
                packet_id=Packet.create_id(migration.id, sequence),
            )
            for obj in objects
        ]
        packet = Packet(
            migration_id=migration.id,
            sequence=sequence,
            source_connection_id=migration.source_connection_id,
            source_bucket=migration.source_bucket,
            source_prefix=migration.source_prefix,
            destination_connection_id=migration.destination_connection_id,
            destination_bucket=migration.destination_bucket,
            destination_prefix=migration.destination_prefix,
            objects=[[obj.key, obj.size, obj.etag] for obj in objects],
        )
        try:
            self.save(*transfers, packet)
        except IntegrityError:
            return False
        return True

    def record_packet(
        self, migration_id: UUID, sequence: int, results: Sequence[CopyResult]
    ) -> bool:
        """Record every object's outcome and close the packet, in one transaction.

        Returns False when the packet was already recorded (a redelivered packet).
        """
        now = datetime.now(UTC)
        events: list[DomainEventProtocol[UUID]] = []
        copied = failed = copied_bytes = 0
        for result in results:
            if result.copied:
                copied += 1
                copied_bytes += result.size
                events.append(
                    copied_event(migration_id, result.key, result.size, result.checksum, now)
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
                    )
                )
        events.append(transferred_event(migration_id, sequence, copied, failed, copied_bytes, now))
        try:
            self.save(*events)
        except IntegrityError:
            return False
        return True

    def packet_transferred(self, migration_id: UUID, sequence: int) -> bool:
        """Whether a packet's outcomes are already recorded (so a redelivery has nothing to do)."""
        return bool(self._packet_closings(migration_id, 1, start=sequence))

    def _packet_closings(
        self, migration_id: UUID, count: int, start: int = 0
    ) -> list[DomainEventProtocol[UUID]]:
        """The Transferred events of packets ``start .. start+count-1``, in one query."""
        if count == 0:
            return []
        ids = [Packet.create_id(migration_id, n) for n in range(start, start + count)]
        recorder = self.pg_recorder
        statement = SQL(
            "SELECT originator_id, originator_version, topic, state FROM {schema}.{table} "
            "WHERE originator_id = ANY(%s) AND originator_version = 2"
        ).format(
            schema=Identifier(recorder.datastore.schema),
            table=Identifier(recorder.events_table_name),
        )
        with recorder.datastore.transaction(commit=False) as curs:
            curs.execute(statement, (ids,))
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
