"""ObjectTransfer and Packet aggregates: what is planned, copied or failed, object by object.

Transfer replicas record outcomes without loading aggregates: a packet carries each
object's planned version, and the outcome event is created at the next version. The
event store's optimistic concurrency (one event per aggregate version) then makes a
second outcome for the same object impossible, whichever replica tries.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event
from eventsourcing.utils import get_topic

PLANNED_VERSION = 1
PACKET_PLANNED_VERSION = 1


def object_id(migration_id: UUID, key: str) -> UUID:
    """The deterministic id of a migration's object: planning twice never plans twice."""
    return uuid5(migration_id, "object/" + key)


def packet_id(migration_id: UUID, sequence: int) -> UUID:
    """The deterministic id of a migration's n-th packet."""
    return uuid5(migration_id, f"packet/{sequence}")


def event_id(originator_id: UUID, originator_version: int) -> UUID:
    """A stable id for one stored event (used to deduplicate it on the bus)."""
    return uuid5(NAMESPACE_URL, f"cstor:{originator_id}/{originator_version}")


class ObjectTransfer(Aggregate):
    """One object of a migration: planned, then copied (verified) or failed."""

    PLANNED = "planned"
    COPIED = "copied"
    FAILED = "failed"

    @staticmethod
    def create_id(migration_id: UUID, key: str, **_: Any) -> UUID:
        return object_id(migration_id, key)

    class Planned(Aggregate.Created):
        """The object is to be copied, in the packet ``packet_id``."""

        migration_id: UUID
        key: str
        size: int
        etag: str
        packet_id: UUID

    @event(Planned)
    def __init__(
        self, *, migration_id: UUID, key: str, size: int, etag: str, packet_id: UUID
    ) -> None:
        self.migration_id = migration_id
        self.key = key
        self.size = size
        self.etag = etag
        self.packet_id = packet_id
        self.status = self.PLANNED
        self.checksum = ""
        self.error = ""

    class Copied(Aggregate.Event):
        """The object was copied and its copy verified (``checksum``), at its ``attempts``-th
        try (version 2: ``attempts`` is missing in 1; version 3: ``key``, for the feed)."""

        class_version = 3
        migration_id: UUID
        size: int
        checksum: str
        attempts: int
        key: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Releases before 2 did not record the attempts of a copy. One is what is known
            of it: a copied object was tried at least once (a few may have taken more)."""
            state.setdefault("attempts", 1)

        @staticmethod
        def upcast_v2_v3(state: dict[str, Any]) -> None:
            """Releases before 3 did not repeat the key; their feed message has none ("")."""
            state.setdefault("key", "")

    @event(Copied)
    def record_copied(
        self, *, migration_id: UUID, size: int, checksum: str, attempts: int, key: str = ""
    ) -> None:
        self.status = self.COPIED
        self.size = size
        self.checksum = checksum

    class Failed(Aggregate.Event):
        """The object could not be copied after ``attempts`` tries (0: it failed while
        planning, before any copy, e.g. its destination copy could not be read; version 2:
        ``key``, for the feed)."""

        class_version = 2
        migration_id: UUID
        reason: str
        message: str
        attempts: int
        key: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Releases before 2 did not repeat the key; their feed message has none ("")."""
            state.setdefault("key", "")

    @event(Failed)
    def record_failed(
        self, *, migration_id: UUID, reason: str, message: str, attempts: int, key: str = ""
    ) -> None:
        self.status = self.FAILED
        self.error = f"{reason}: {message}"

    class Retried(Aggregate.Event):
        """A failed object was put into the new packet ``packet_id`` (version 2: ``key``)."""

        class_version = 2
        migration_id: UUID
        packet_id: UUID
        key: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Releases before 2 did not repeat the key; their feed message has none ("")."""
            state.setdefault("key", "")

    @event(Retried)
    def record_retried(self, *, migration_id: UUID, packet_id: UUID, key: str = "") -> None:
        self.status = self.PLANNED
        self.packet_id = packet_id
        self.error = ""


class Packet(Aggregate):
    """A batch of planned objects that one transfer replica copies, recording their
    outcomes as they come, then closes once (Transferred) with the counts of all."""

    @staticmethod
    def create_id(migration_id: UUID, sequence: int, **_: Any) -> UUID:
        return packet_id(migration_id, sequence)

    class Planned(Aggregate.Created):
        """A packet was planned (version 2: ``skipped`` to ``skipped_total`` may be missing in 1).

        objects: [key, size, etag] to copy (and the object's version, when a retry packs it
        again); skipped: [key, size, reason] left alone. ``last_key`` and the running totals
        are the planner's checkpoint after this packet.
        """

        class_version = 2
        migration_id: UUID
        sequence: int
        source_connection_id: UUID
        source_bucket: str
        destination_connection_id: UUID
        destination_bucket: str
        source_prefix: str
        destination_prefix: str
        objects: list[list[Any]]
        skipped: list[list[Any]]
        last_key: str
        planned_total: int
        bytes_total: int
        skipped_total: int

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """The first release skipped nothing and kept no checkpoint in its packets."""
            state["skipped"] = state.get("skipped") or []
            state.setdefault("last_key", "")
            state.setdefault("planned_total", 0)
            state.setdefault("bytes_total", 0)
            state.setdefault("skipped_total", 0)

    @event(Planned)
    def __init__(
        self,
        *,
        migration_id: UUID,
        sequence: int,
        source_connection_id: UUID,
        source_bucket: str,
        destination_connection_id: UUID,
        destination_bucket: str,
        source_prefix: str,
        destination_prefix: str,
        objects: list[list[Any]],
        skipped: list[list[Any]] | None = None,
        last_key: str = "",
        planned_total: int = 0,
        bytes_total: int = 0,
        skipped_total: int = 0,
    ) -> None:
        self.skipped = skipped or []
        self.last_key = last_key
        self.planned_total = planned_total
        self.bytes_total = bytes_total
        self.skipped_total = skipped_total
        self.migration_id = migration_id
        self.sequence = sequence
        self.objects = objects
        self.transferred = False

    class Transferred(Aggregate.Event):
        """Each of the packet's objects has an outcome: their counts, and the bytes copied."""

        migration_id: UUID
        sequence: int
        copied: int
        failed: int
        bytes: int

    @event(Transferred)
    def record_transferred(
        self, *, migration_id: UUID, sequence: int, copied: int, failed: int, bytes: int
    ) -> None:
        self.transferred = True


_OBJECT_TRANSFER_TOPIC = get_topic(ObjectTransfer)


def planned_event(
    migration_id: UUID, key: str, size: int, etag: str, packet: UUID, timestamp: datetime
) -> ObjectTransfer.Planned:
    """The event creating an object's transfer, built directly (planning creates many)."""
    return ObjectTransfer.Planned(  # type: ignore[call-arg]  # the library makes it a dataclass
        originator_id=object_id(migration_id, key),
        originator_version=PLANNED_VERSION,
        timestamp=timestamp,
        originator_topic=_OBJECT_TRANSFER_TOPIC,
        migration_id=migration_id,
        key=key,
        size=size,
        etag=etag,
        packet_id=packet,
    )


def retried_event(
    migration_id: UUID, key: str, failed_version: int, packet: UUID, timestamp: datetime
) -> ObjectTransfer.Retried:
    """The event putting a failed object into a new packet (its version after the failure)."""
    return ObjectTransfer.Retried(  # type: ignore[call-arg]  # the library makes it a dataclass
        originator_id=object_id(migration_id, key),
        originator_version=failed_version + 1,
        timestamp=timestamp,
        migration_id=migration_id,
        packet_id=packet,
        key=key,
    )


def copied_event(
    migration_id: UUID,
    key: str,
    size: int,
    checksum: str,
    attempts: int,
    timestamp: datetime,
    planned_version: int = PLANNED_VERSION,
) -> ObjectTransfer.Copied:
    """The event recording a verified copy of an object still at its planned version, and
    how many times it was tried."""
    return ObjectTransfer.Copied(  # type: ignore[call-arg]  # the library makes it a dataclass
        originator_id=object_id(migration_id, key),
        originator_version=planned_version + 1,
        timestamp=timestamp,
        migration_id=migration_id,
        size=size,
        checksum=checksum,
        attempts=attempts,
        key=key,
    )


def failed_event(
    migration_id: UUID,
    key: str,
    reason: str,
    message: str,
    attempts: int,
    timestamp: datetime,
    planned_version: int = PLANNED_VERSION,
) -> ObjectTransfer.Failed:
    """The event recording that an object still at its planned version could not be copied."""
    return ObjectTransfer.Failed(  # type: ignore[call-arg]  # the library makes it a dataclass
        originator_id=object_id(migration_id, key),
        originator_version=planned_version + 1,
        timestamp=timestamp,
        migration_id=migration_id,
        reason=reason,
        message=message,
        attempts=attempts,
        key=key,
    )


def transferred_event(
    migration_id: UUID, sequence: int, copied: int, failed: int, bytes: int, timestamp: datetime
) -> Packet.Transferred:
    """The event closing a packet once each of its objects has an outcome."""
    return Packet.Transferred(  # type: ignore[call-arg]  # the library makes it a dataclass
        originator_id=packet_id(migration_id, sequence),
        originator_version=PACKET_PLANNED_VERSION + 1,
        timestamp=timestamp,
        migration_id=migration_id,
        sequence=sequence,
        copied=copied,
        failed=failed,
        bytes=bytes,
    )
