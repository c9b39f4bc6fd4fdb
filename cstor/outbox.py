"""Map stored domain events to bus contracts: the bus carries only what the store recorded."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from cstor import contracts
from cstor.domain.migration import Migration
from cstor.domain.transfer import ObjectTransfer, Packet, event_id


def _common(event: Any, position: int, migration_id: UUID) -> dict[str, Any]:
    return {
        "event_id": event_id(event.originator_id, event.originator_version),
        "migration_id": migration_id,
        "occurred_at": event.timestamp,
        "position": position,
    }


def _migration_requested(event: Any, position: int) -> contracts.Event:
    return contracts.MigrationRequested(
        **_common(event, position, event.originator_id),
        name=event.name,
        owner=event.owner,
        source_connection_id=event.source_connection_id,
        source_bucket=event.source_bucket,
        source_prefix=event.source_prefix,
        destination_connection_id=event.destination_connection_id,
        destination_bucket=event.destination_bucket,
        destination_prefix=event.destination_prefix,
        overwrite=getattr(event, "overwrite", "if-different"),
        filters=getattr(event, "filters", None) or {},
        sync_of=getattr(event, "sync_of", None),
        storage_class=getattr(event, "storage_class", None),
        limits=contracts.MigrationLimits(**(getattr(event, "limits", None) or {})),
    )


def _migration_planning_started(event: Any, position: int) -> contracts.Event:
    return contracts.MigrationPlanningStarted(**_common(event, position, event.originator_id))


def _migration_planned(event: Any, position: int) -> contracts.Event:
    return contracts.MigrationPlanned(
        **_common(event, position, event.originator_id),
        packets=event.packets,
        objects=event.objects,
        bytes=event.bytes,
        skipped=getattr(event, "skipped", 0),
    )


def _migration_completed(event: Any, position: int) -> contracts.Event:
    return contracts.MigrationCompleted(
        **_common(event, position, event.originator_id), copied=event.copied, failed=event.failed
    )


def _migration_failed(event: Any, position: int) -> contracts.Event:
    return contracts.MigrationFailed(
        **_common(event, position, event.originator_id), reason=event.reason, message=event.message
    )


def _migration_retry_requested(event: Any, position: int) -> contracts.Event:
    return contracts.MigrationRetryRequested(
        **_common(event, position, event.originator_id),
        objects=event.objects,
        packets=event.packets,
    )


def _object_retried(event: Any, position: int) -> contracts.Event:
    return contracts.ObjectRetried(
        **_common(event, position, event.migration_id),
        object_id=event.originator_id,
        packet_id=event.packet_id,
        version=event.originator_version,
    )


def _migration_paused(event: Any, position: int) -> contracts.Event:
    return contracts.MigrationPaused(**_common(event, position, event.originator_id))


def _migration_resumed(event: Any, position: int) -> contracts.Event:
    return contracts.MigrationResumed(
        **_common(event, position, event.originator_id), status=event.status
    )


def _migration_cancelled(event: Any, position: int) -> contracts.Event:
    return contracts.MigrationCancelled(**_common(event, position, event.originator_id))


def _object_planned(event: Any, position: int) -> contracts.Event:
    return contracts.ObjectPlanned(
        **_common(event, position, event.migration_id),
        object_id=event.originator_id,
        key=event.key,
        size=event.size,
        etag=event.etag,
        packet_id=event.packet_id,
        version=event.originator_version,
    )


def _object_copied(event: Any, position: int) -> contracts.Event:
    return contracts.ObjectCopied(
        **_common(event, position, event.migration_id),
        object_id=event.originator_id,
        size=event.size,
        checksum=event.checksum,
        version=event.originator_version,
    )


def _object_failed(event: Any, position: int) -> contracts.Event:
    return contracts.ObjectFailed(
        **_common(event, position, event.migration_id),
        object_id=event.originator_id,
        reason=event.reason,
        message=event.message,
        attempts=event.attempts,
        version=event.originator_version,
    )


def _packet_planned(event: Any, position: int) -> contracts.Event:
    return contracts.PacketPlanned(
        **_common(event, position, event.migration_id),
        packet_id=event.originator_id,
        sequence=event.sequence,
        source_connection_id=event.source_connection_id,
        source_bucket=event.source_bucket,
        source_prefix=event.source_prefix,
        destination_connection_id=event.destination_connection_id,
        destination_bucket=event.destination_bucket,
        destination_prefix=event.destination_prefix,
        objects=[contracts.PacketObject(*entry) for entry in event.objects],
        skipped=[
            contracts.SkippedObject(key, size, reason)
            for key, size, reason in getattr(event, "skipped", None) or []
        ],
        last_key=getattr(event, "last_key", ""),
    )


def _packet_transferred(event: Any, position: int) -> contracts.Event:
    return contracts.PacketTransferred(
        **_common(event, position, event.migration_id),
        packet_id=event.originator_id,
        sequence=event.sequence,
        copied=event.copied,
        failed=event.failed,
        bytes=event.bytes,
    )


_TRANSLATIONS: dict[type[Any], Callable[[Any, int], contracts.Event]] = {
    Migration.Requested: _migration_requested,  # type: ignore[attr-defined]
    Migration.PlanningStarted: _migration_planning_started,  # type: ignore[attr-defined]
    Migration.Planned: _migration_planned,  # type: ignore[attr-defined]
    Migration.Completed: _migration_completed,  # type: ignore[attr-defined]
    Migration.Failed: _migration_failed,  # type: ignore[attr-defined]
    Migration.RetryRequested: _migration_retry_requested,  # type: ignore[attr-defined]
    ObjectTransfer.Retried: _object_retried,  # type: ignore[attr-defined]
    Migration.Paused: _migration_paused,  # type: ignore[attr-defined]
    Migration.Resumed: _migration_resumed,  # type: ignore[attr-defined]
    Migration.Cancelled: _migration_cancelled,  # type: ignore[attr-defined]
    ObjectTransfer.Planned: _object_planned,  # type: ignore[attr-defined]
    ObjectTransfer.Copied: _object_copied,  # type: ignore[attr-defined]
    ObjectTransfer.Failed: _object_failed,  # type: ignore[attr-defined]
    Packet.Planned: _packet_planned,  # type: ignore[attr-defined]
    Packet.Transferred: _packet_transferred,  # type: ignore[attr-defined]
}


def to_contract(event: Any, position: int) -> contracts.Event:
    """The bus message for one stored domain event."""
    return _TRANSLATIONS[type(event)](event, position)
