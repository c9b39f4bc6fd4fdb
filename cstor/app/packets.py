"""Packets as the use cases read them: by sequence, at their planned or closed version.

A packet's id is derived from its migration and sequence, its plan is version 1 and its
closing (Transferred) version 2, so the packets a use case asks about are looked up by
id and version (`cstor.app.lookup`), without loading aggregates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Mapper

from cstor.app.lookup import EventLookup
from cstor.domain.migration import Migration
from cstor.domain.transfer import PACKET_PLANNED_VERSION, Packet

PLANNED = PACKET_PLANNED_VERSION
CLOSED = PACKET_PLANNED_VERSION + 1


def new_packet(
    migration: Migration,
    sequence: int,
    objects: list[list[Any]],
    *,
    skipped: list[list[Any]] | None = None,
    last_key: str = "",
    totals: tuple[int, int, int] = (0, 0, 0),
) -> Packet:
    """The migration's packet ``sequence`` of ``objects``, on the migration's route.

    ``totals`` (objects, bytes, skipped) and ``last_key`` are the planner's checkpoint
    after this packet; a packet of retried objects has none.
    """
    planned_total, bytes_total, skipped_total = totals
    return Packet(
        migration_id=migration.id,
        sequence=sequence,
        **migration.route.fields(),
        objects=objects,
        skipped=skipped or [],
        last_key=last_key,
        planned_total=planned_total,
        bytes_total=bytes_total,
        skipped_total=skipped_total,
    )


class PacketEvents:
    """A migration's packets' events at one version, read many at a time."""

    def __init__(self, lookup: EventLookup, mapper: Mapper[UUID]) -> None:
        self.lookup = lookup
        self.mapper = mapper

    def of(
        self, migration_id: UUID, sequences: Sequence[int], version: int
    ) -> list[DomainEventProtocol[UUID]]:
        """The events at ``version`` of those of the packets ``sequences`` that have one."""
        if not sequences:
            return []
        ids = [Packet.create_id(migration_id, n) for n in sequences]
        return [self.mapper.to_domain_event(e) for e in self.lookup.events_at(ids, version)]

    def count_planned(self, migration_id: UUID) -> int:
        """How many packets are planned: they are planned in order, so the first missing
        sequence is the count (read a thousand at a time)."""
        planned = 0
        while True:
            found = self.of(migration_id, range(planned, planned + 1000), PLANNED)
            planned += len(found)
            if len(found) < 1000:
                return planned


class ClosedPackets:
    """Each running migration's closed packets, by sequence: (copied, failed).

    A closed packet stays closed, so each closing is read from the store once, not once
    per completion check (which made a migration's checks quadratic in its packets). The
    cache is this process's: another replica's checks read the store for themselves.
    """

    def __init__(self, packets: PacketEvents) -> None:
        self.packets = packets
        self._known: dict[UUID, dict[int, tuple[int, int]]] = {}

    def closings(self, migration_id: UUID, count: int) -> list[tuple[int, int]] | None:
        """(copied, failed) of each of the first ``count`` packets; None while one is open.

        Packets not known closed are read in order, in chunks of ten, then twenty and
        so on, stopping at the first chunk with one still open: a check costs about the
        packets closed since the last one, whatever the migration's size.
        """
        known = self._known.setdefault(migration_id, {})
        pending = [n for n in range(count) if n not in known]
        start, size = 0, 10
        while start < len(pending):
            chunk = pending[start : start + size]
            found = self.packets.of(migration_id, chunk, CLOSED)
            for closing in found:
                known[closing.sequence] = (closing.copied, closing.failed)  # type: ignore[attr-defined]
            if len(found) < len(chunk):
                return None
            start, size = start + size, min(1000, 2 * size)
        return [known[n] for n in range(count)]

    def forget(self, migration_id: UUID) -> None:
        """Drop a finished migration's closings: no check will ask for them again."""
        self._known.pop(migration_id, None)
