"""The Migration aggregate: one user's request to copy a bucket, and its lifecycle."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from cstor.domain.exceptions import InvalidRequest, MigrationStateError
from cstor.domain.planning import IF_DIFFERENT, Overwrite
from cstor.domain.route import Route

STORAGE_CLASSES = (
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER",
    "DEEP_ARCHIVE",
    "GLACIER_IR",
    "EXPRESS_ONEZONE",
)
"""The S3 storage classes a migration may give its copies (x-amz-storage-class)."""


def check_storage_class(storage_class: str | None) -> None:
    """Raise InvalidRequest unless ``storage_class`` is None or an S3 storage class."""
    if storage_class is not None and storage_class not in STORAGE_CLASSES:
        raise InvalidRequest(
            f"{storage_class!r} is not an S3 storage class (one of {', '.join(STORAGE_CLASSES)}).",
            field="storage_class",
        )


LIMITS = {"bandwidth_bytes_per_second": 10**15, "concurrent_objects": 10_000}
"""What a migration may limit, across every transfer replica, and the highest each may be
(concurrent objects are slots in Postgres); an absent limit: none."""


def checked_limits(limits: Mapping[str, int | None]) -> dict[str, int]:
    """The limits as a migration keeps them (None dropped); InvalidRequest if one is not >= 1."""
    kept: dict[str, int] = {}
    for name, value in limits.items():
        if name not in LIMITS:
            raise InvalidRequest(
                f"there is no such limit (one of {list(LIMITS)}).", field=f"limits.{name}"
            )
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= LIMITS[name]:
            raise InvalidRequest(
                f"{value!r} is not a whole number from 1 to {LIMITS[name]:,}.",
                field=f"limits.{name}",
            )
        kept[name] = value
    return kept


class Migration(Aggregate):
    """A migration from a source bucket to a destination bucket; its status is a fold of events.

    Its event classes are declared here, field by field: they are the store's schema. An
    event class whose fields grew has a ``class_version`` and an ``upcast_v1_v2`` that gives
    an event written before (by an older release) what it lacked, as the library decodes it,
    so every decoded event has every field.
    """

    REQUESTED = "requested"
    PLANNING = "planning"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    FINISHED = (COMPLETED, FAILED, CANCELLED)

    class Requested(Aggregate.Created):
        """A user asked for a migration (version 2: overwrite to limits may be missing in 1)."""

        class_version = 2
        name: str
        owner: str
        source_connection_id: UUID
        source_bucket: str
        source_prefix: str
        destination_connection_id: UUID
        destination_bucket: str
        destination_prefix: str
        overwrite: Overwrite
        filters: dict[str, Any]
        sync_of: UUID | None
        storage_class: str | None
        limits: dict[str, int]

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Fields added after the first release, as their absence meant: the default
            policy, no filters, not a sync, the destination's storage class, no limits."""
            state.setdefault("overwrite", IF_DIFFERENT)
            state["filters"] = state.get("filters") or {}
            state.setdefault("sync_of", None)
            state.setdefault("storage_class", None)
            state["limits"] = state.get("limits") or {}

    @event(Requested)
    def __init__(
        self,
        *,
        name: str,
        owner: str,
        source_connection_id: UUID,
        source_bucket: str,
        source_prefix: str,
        destination_connection_id: UUID,
        destination_bucket: str,
        destination_prefix: str,
        overwrite: Overwrite,
        filters: dict[str, Any],
        sync_of: UUID | None,
        storage_class: str | None,
        limits: dict[str, int],
    ) -> None:
        # Every field is required: the library keeps no default of a keyword-only parameter
        # (Migrations.request gives them), and the event records each as it is given.
        self.overwrite = overwrite
        self.storage_class = storage_class  # of the copies; None: the destination's default
        self.limits = limits  # see LIMITS; honoured by every transfer replica together
        self.filters = filters
        self.sync_of = sync_of
        self.name = name
        self.owner = owner
        self.source_connection_id = source_connection_id
        self.source_bucket = source_bucket
        self.source_prefix = source_prefix
        self.destination_connection_id = destination_connection_id
        self.destination_bucket = destination_bucket
        self.destination_prefix = destination_prefix
        self.status = self.REQUESTED
        self.packets = 0
        self.objects = 0
        self.bytes = 0
        self.skipped = 0
        self.retried = 0
        self.paused_from = self.REQUESTED
        self.error = ""  # "reason: message" once it fails

    @property
    def finished_at(self) -> datetime | None:
        """When it ended: the time of its last event, the one that ended it (only a retry
        follows an end, and it makes the migration run again). Not set by the ending event's
        method: the library moves modified_on to an event's time after applying it."""
        return self.modified_on if self.status in self.FINISHED else None

    @property
    def route(self) -> Route:
        """Where this migration copies from and to."""
        return Route.of(self)

    def start_planning(self) -> None:
        """Record that the planner has begun listing the source."""
        if self.status != self.REQUESTED:
            raise MigrationStateError(f"migration {self.id} is {self.status}, not requested")
        self._planning_started()

    class PlanningStarted(Aggregate.Event):
        """The planner began listing the source."""

    @event(PlanningStarted)
    def _planning_started(self) -> None:
        self.status = self.PLANNING

    def finish_planning(self, *, packets: int, objects: int, bytes: int, skipped: int) -> None:
        """Record that the whole source was listed and planned into packets."""
        planning = self.status == self.PLANNING or (
            self.status == self.PAUSED and self.paused_from == self.PLANNING
        )
        if not planning:
            raise MigrationStateError(f"migration {self.id} is {self.status}, not planning")
        self._planned(packets=packets, objects=objects, bytes=bytes, skipped=skipped)

    class Planned(Aggregate.Event):
        """The whole source was listed and planned (version 2: ``skipped`` may be missing in 1)."""

        class_version = 2
        packets: int
        objects: int
        bytes: int
        skipped: int

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """The first release skipped nothing: it copied every listed object."""
            state.setdefault("skipped", 0)

    @event(Planned)
    def _planned(self, *, packets: int, objects: int, bytes: int, skipped: int = 0) -> None:
        if self.status == self.PAUSED:
            self.paused_from = self.RUNNING  # planning may finish while copying is paused
        else:
            self.status = self.RUNNING
        self.packets = packets
        self.objects = objects
        self.bytes = bytes
        self.skipped = skipped

    def complete(self, *, copied: int, failed: int) -> None:
        """Record that every planned object reached a terminal state."""
        if self.status != self.RUNNING:
            raise MigrationStateError(f"migration {self.id} is {self.status}, not running")
        self._completed(copied=copied, failed=failed)

    class Completed(Aggregate.Event):
        """Every planned object reached an outcome."""

        copied: int
        failed: int

    @event(Completed)
    def _completed(self, *, copied: int, failed: int) -> None:
        self.status = self.COMPLETED

    def retry_failed(self, *, objects: int, packets: int) -> None:
        """Queue a completed migration's failed objects again, in ``packets`` new packets."""
        if self.status != self.COMPLETED:
            raise MigrationStateError(
                f"migration {self.id} is {self.status}; failures are retried once it completes"
            )
        self._retry_requested(objects=objects, packets=self.packets + packets)

    class RetryRequested(Aggregate.Event):
        """A completed migration's failed objects were queued again; ``packets``: the new total."""

        objects: int
        packets: int

    @event(RetryRequested)
    def _retry_requested(self, *, objects: int, packets: int) -> None:
        self.status = self.RUNNING
        self.packets = packets
        self.retried += objects

    def pause(self) -> None:
        """Stop copying (in flight, between objects and parts); planning and state are kept."""
        if self.status not in (self.REQUESTED, self.PLANNING, self.RUNNING):
            raise MigrationStateError(f"migration {self.id} is {self.status}; it cannot pause")
        self._paused(previous=self.status)

    class Paused(Aggregate.Event):
        """Copying stopped; ``previous``: the status it resumes to."""

        previous: str

    @event(Paused)
    def _paused(self, *, previous: str) -> None:
        self.paused_from = previous
        self.status = self.PAUSED

    def resume(self) -> None:
        """Continue a paused migration where it stopped."""
        if self.status != self.PAUSED:
            raise MigrationStateError(f"migration {self.id} is {self.status}, not paused")
        self._resumed(status=self.paused_from)

    class Resumed(Aggregate.Event):
        """A paused migration went on; ``status``: what it went back to."""

        status: str

    @event(Resumed)
    def _resumed(self, *, status: str) -> None:
        self.status = status

    def cancel(self) -> None:
        """End the migration: nothing more is copied; what was copied stays recorded."""
        if self.status in self.FINISHED:
            raise MigrationStateError(f"migration {self.id} is already {self.status}")
        self._cancelled()

    class Cancelled(Aggregate.Event):
        """A user ended the migration."""

    @event(Cancelled)
    def _cancelled(self) -> None:
        self.status = self.CANCELLED

    def fail(self, *, reason: str, message: str) -> None:
        """Record that the migration cannot go on (e.g. its source bucket is gone)."""
        if self.status in self.FINISHED:
            raise MigrationStateError(f"migration {self.id} is already {self.status}")
        self._failed(reason=reason, message=message)

    class Failed(Aggregate.Event):
        """The migration cannot go on, and why."""

        reason: str
        message: str

    @event(Failed)
    def _failed(self, *, reason: str, message: str) -> None:
        self.status = self.FAILED
        self.error = f"{reason}: {message}"

    def as_dict(self) -> dict[str, Any]:
        """The migration's request as plain values."""
        return {
            "name": self.name,
            **self.route.fields(),
            "overwrite": self.overwrite,
            "filters": self.filters,
            "storage_class": self.storage_class,
            "limits": self.limits,
        }
