"""A batch of events folded in memory: the object rows it touches and the totals it adds.

Object events are many (one planned and one outcome per object), so a batch gathers
their rows and each migration's totals here and writes them once (`writes.save`),
instead of a statement per event. Nothing here does I/O.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from cstor import contracts
from cstor.domain import transfer
from cstor.readmodel.tables import THROUGHPUT_SPANS


@dataclass
class ObjectRow:
    """An object's row of `tables.OBJECTS`, as loaded or as the batch left it."""

    id: UUID
    migration_id: UUID
    key: str
    status: str
    size: int
    etag: str
    checksum: str
    error: str
    attempts: int
    reason: str
    version: int
    updated_at: datetime


@dataclass
class Totals:
    """What a batch adds to a migration's counts (`tables.MIGRATIONS`)."""

    objects_planned: int = 0
    bytes_planned: int = 0
    objects_copied: int = 0
    bytes_copied: int = 0
    objects_failed: int = 0
    objects_skipped: int = 0
    bytes_skipped: int = 0
    packets_transferred: int = 0
    updated_at: datetime | None = None


@dataclass
class Batch:
    """The rows a batch of events changed, keyed for one write each."""

    objects: dict[UUID, ObjectRow]
    changed: set[UUID] = field(default_factory=set)
    totals: dict[UUID, Totals] = field(default_factory=lambda: defaultdict(Totals))
    # Bytes copied by (migration, span, start of the span): the throughput chart's series.
    throughput: dict[tuple[UUID, int, int], int] = field(default_factory=lambda: defaultdict(int))


OBJECT_EVENTS = (
    contracts.ObjectPlanned,
    contracts.ObjectCopied,
    contracts.ObjectFailed,
    contracts.ObjectRetried,
    contracts.PacketPlanned,
    contracts.PacketTransferred,
)
"""The events a batch folds in memory; the others change a migration's row directly."""
ObjectEvent = (
    contracts.ObjectPlanned
    | contracts.ObjectCopied
    | contracts.ObjectFailed
    | contracts.ObjectRetried
    | contracts.PacketPlanned
    | contracts.PacketTransferred
)


def object_ids(events: list[contracts.Event]) -> list[UUID]:
    """The ids of the object rows the events may change (to load them at once)."""
    ids = [
        e.object_id
        for e in events
        if isinstance(
            e,
            contracts.ObjectPlanned
            | contracts.ObjectCopied
            | contracts.ObjectFailed
            | contracts.ObjectRetried,
        )
    ]
    for e in events:
        if isinstance(e, contracts.PacketPlanned):
            ids += [transfer.object_id(e.migration_id, s.key) for s in e.skipped]
    return ids


def apply(batch: Batch, event: ObjectEvent) -> None:
    """Fold one object or packet event into the batch."""
    match event:
        case contracts.ObjectPlanned():
            _object_planned(batch, event)
        case contracts.ObjectCopied() | contracts.ObjectFailed():
            _object_outcome(batch, event)
        case contracts.ObjectRetried():
            _object_retried(batch, event)
        case contracts.PacketPlanned():
            _packet_planned(batch, event)
        case contracts.PacketTransferred():
            totals = batch.totals[event.migration_id]
            totals.packets_transferred += 1
            totals.updated_at = event.occurred_at


def _object_planned(batch: Batch, event: contracts.ObjectPlanned) -> None:
    if event.object_id in batch.objects:
        return
    batch.objects[event.object_id] = ObjectRow(
        id=event.object_id,
        migration_id=event.migration_id,
        key=event.key,
        status="planned",
        size=event.size,
        etag=event.etag,
        checksum="",
        error="",
        reason="",
        attempts=0,
        version=event.version,
        updated_at=event.occurred_at,
    )
    batch.changed.add(event.object_id)
    totals = batch.totals[event.migration_id]
    totals.objects_planned += 1
    totals.bytes_planned += event.size
    totals.updated_at = event.occurred_at


def _object_retried(batch: Batch, event: contracts.ObjectRetried) -> None:
    """A failed object queued again: planned once more, no longer counted as failed."""
    row = batch.objects.get(event.object_id)
    if row is None or row.version >= event.version:
        return
    if row.status == "failed":
        batch.totals[event.migration_id].objects_failed -= 1
    row.status, row.error, row.version = "planned", "", event.version
    row.updated_at = event.occurred_at
    batch.changed.add(row.id)


def _packet_planned(batch: Batch, event: contracts.PacketPlanned) -> None:
    """Skipped objects ride in their packet's event; each becomes a row, counted once."""
    totals = batch.totals[event.migration_id]
    for skipped in event.skipped:
        object_id = transfer.object_id(event.migration_id, skipped.key)
        if object_id in batch.objects:
            continue
        batch.objects[object_id] = ObjectRow(
            id=object_id,
            migration_id=event.migration_id,
            key=skipped.key,
            status="skipped",
            size=skipped.size,
            etag="",
            checksum="",
            error="",
            reason=skipped.reason,
            attempts=0,
            version=0,
            updated_at=event.occurred_at,
        )
        batch.changed.add(object_id)
        totals.objects_skipped += 1
        totals.bytes_skipped += skipped.size
        totals.updated_at = event.occurred_at


def _object_outcome(batch: Batch, event: contracts.ObjectCopied | contracts.ObjectFailed) -> None:
    row = batch.objects.get(event.object_id)
    # An object's planned event always precedes its outcome on the stream; an outcome at or
    # below the row's version was applied already (a duplicate), so it is not counted again.
    if row is None or row.version >= event.version:
        return
    totals = batch.totals[event.migration_id]
    if isinstance(event, contracts.ObjectCopied):
        row.status, row.size, row.checksum, row.error = "copied", event.size, event.checksum, ""
        row.attempts = event.attempts
        totals.objects_copied += 1
        totals.bytes_copied += event.size
        second = int(event.occurred_at.timestamp())
        for span in THROUGHPUT_SPANS:
            batch.throughput[(event.migration_id, span, second - second % span)] += event.size
    else:
        row.status, row.error, row.attempts = (
            "failed",
            f"{event.reason}: {event.message}",
            event.attempts,
        )
        totals.objects_failed += 1
    row.version = event.version
    row.updated_at = event.occurred_at
    totals.updated_at = event.occurred_at
    batch.changed.add(row.id)
