"""Event contracts on the bus: what the event store recorded, as plain self-explaining JSON.

Every message on ``cstor.>`` is one of these tagged structs. Schema changes only add
fields with defaults, so an older consumer can read a newer message. No secrets, ever.
Each is made from one stored event class (``cstor.outbox.CONTRACTS`` says which); a field
added here is a field of that event, given to older stored events by its upcaster.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from cstor.domain.planning import IF_DIFFERENT
from cstor.domain.route import Route


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """Common to every event: which event, of which migration, recorded when and where."""

    event_id: UUID
    migration_id: UUID
    occurred_at: datetime
    position: int  # the event's position in the event store's notification log


class MigrationLimits(msgspec.Struct, frozen=True, kw_only=True):
    """How much a migration may do at once, across every transfer replica; None: no limit."""

    bandwidth_bytes_per_second: int | None = None
    concurrent_objects: int | None = None


class MigrationRequested(Event, frozen=True, kw_only=True, tag="migration.requested"):
    name: str
    owner: str
    source_connection_id: UUID
    source_bucket: str
    source_prefix: str
    destination_connection_id: UUID
    destination_bucket: str
    destination_prefix: str
    overwrite: str = IF_DIFFERENT  # a str, not planning.Overwrite: a policy added later still reads
    filters: dict[str, Any] = {}
    sync_of: UUID | None = None
    storage_class: str | None = None  # of the copies; None: the destination's default
    limits: MigrationLimits = MigrationLimits()


class MigrationPlanningStarted(Event, frozen=True, kw_only=True, tag="migration.planning_started"):
    pass


class MigrationPlanned(Event, frozen=True, kw_only=True, tag="migration.planned"):
    packets: int
    objects: int
    bytes: int
    skipped: int = 0


class MigrationCompleted(Event, frozen=True, kw_only=True, tag="migration.completed"):
    copied: int
    failed: int


class MigrationFailed(Event, frozen=True, kw_only=True, tag="migration.failed"):
    reason: str
    message: str


class MigrationRetryRequested(Event, frozen=True, kw_only=True, tag="migration.retry_requested"):
    objects: int
    packets: int


class ObjectRetried(Event, frozen=True, kw_only=True, tag="object.retried", omit_defaults=True):
    """``key`` came later: an event stored without it is published as it always was."""

    object_id: UUID
    packet_id: UUID
    version: int
    key: str = ""


class MigrationPaused(Event, frozen=True, kw_only=True, tag="migration.paused"):
    pass


class MigrationResumed(Event, frozen=True, kw_only=True, tag="migration.resumed"):
    status: str  # what it went back to: planning or running


class MigrationCancelled(Event, frozen=True, kw_only=True, tag="migration.cancelled"):
    pass


class ObjectPlanned(Event, frozen=True, kw_only=True, tag="object.planned"):
    object_id: UUID
    key: str
    size: int
    etag: str
    packet_id: UUID
    version: int


class ObjectCopied(Event, frozen=True, kw_only=True, tag="object.copied", omit_defaults=True):
    """A verified copy, at its ``attempts``-th try. ``attempts`` came later: 1 (a copy at
    its first try) is left out, so that such a copy is the message it always was."""

    object_id: UUID
    size: int
    checksum: str
    version: int
    attempts: int = 1
    key: str = ""  # later still; "" (left out) for a copy stored without it


class ObjectFailed(Event, frozen=True, kw_only=True, tag="object.failed", omit_defaults=True):
    """``key`` came later: an event stored without it is published as it always was."""

    object_id: UUID
    reason: str
    message: str
    attempts: int
    version: int
    key: str = ""


class PacketObject(msgspec.Struct, frozen=True, array_like=True):
    """One object of a packet: what a transfer replica needs to copy and verify it."""

    key: str
    size: int
    etag: str
    version: int = 1  # the object's version once packed: its outcome is the next one


class SkippedObject(msgspec.Struct, frozen=True, array_like=True):
    """An object planning left alone, and why."""

    key: str
    size: int
    reason: str


class PacketPlanned(Event, frozen=True, kw_only=True, tag="packet.planned"):
    packet_id: UUID
    sequence: int
    source_connection_id: UUID
    source_bucket: str
    source_prefix: str
    destination_connection_id: UUID
    destination_bucket: str
    destination_prefix: str
    objects: list[PacketObject]
    skipped: list[SkippedObject] = []
    last_key: str = ""

    @property
    def route(self) -> Route:
        """Where the packet's objects are copied from and to."""
        return Route.of(self)


class PacketTransferred(Event, frozen=True, kw_only=True, tag="packet.transferred"):
    packet_id: UUID
    sequence: int
    copied: int
    failed: int
    bytes: int


AnyEvent = (
    MigrationRequested
    | MigrationPlanningStarted
    | MigrationPlanned
    | MigrationCompleted
    | MigrationFailed
    | MigrationRetryRequested
    | MigrationPaused
    | MigrationResumed
    | MigrationCancelled
    | ObjectRetried
    | ObjectPlanned
    | ObjectCopied
    | ObjectFailed
    | PacketPlanned
    | PacketTransferred
)

encoder = msgspec.json.Encoder()
decoder = msgspec.json.Decoder(AnyEvent)


def subject_of(event: Event) -> str:
    """``cstor.<aggregate>.<migration id>.<event>``, from the event's tag."""
    aggregate, name = str(type(event).__struct_config__.tag).split(".", 1)
    return f"cstor.{aggregate}.{event.migration_id}.{name}"
