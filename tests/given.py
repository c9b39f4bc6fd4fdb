"""Migrations brought to a state through the use cases, for a unit test to start from.

The unit tests' `given` fixture (tests/unit/conftest.py) is one of these over an
application on the library's in-memory recorder.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID, uuid4

from cstor.app.migrations import Migrations
from cstor.app.results import CopyResult, PlanTotals
from cstor.domain.planning import PacketDraft, PlannedObject


class Given:
    """Migrations brought to a state through the use cases, for a test to start from."""

    def __init__(self, app: Migrations) -> None:
        self.app = app

    def requested(self, **request: Any) -> UUID:
        fields: dict[str, Any] = {
            "name": "photos",
            "owner": "someone",
            "source_connection_id": uuid4(),
            "source_bucket": "source",
            "source_prefix": "in/",
            "destination_connection_id": uuid4(),
            "destination_bucket": "destination",
            "destination_prefix": "out/",
        }
        return self.app.request(**(fields | request))

    def planning(self) -> UUID:
        migration_id = self.requested()
        self.app.start_planning(migration_id)
        return migration_id

    def plan(
        self, migration_id: UUID, packets: Sequence[Sequence[str]], *, size: int = 10
    ) -> PlanTotals:
        """Plan packets of the given keys (each object ``size`` bytes), from sequence 0."""
        migration = self.app.get(migration_id)
        totals = PlanTotals()
        for sequence, keys in enumerate(packets):
            packet = PacketDraft(
                planned=[PlannedObject(key, size, f"etag-{key}") for key in keys],
                last_key=keys[-1] if keys else "",
            )
            totals = PlanTotals(
                packets=totals.packets + 1,
                objects=totals.objects + len(keys),
                bytes=totals.bytes + size * len(keys),
            )
            assert self.app.plan_packet(migration, sequence, packet, totals)
        return totals

    def running(self, *packets: Sequence[str]) -> UUID:
        """A migration planned into ``packets`` (default: one packet of one object, "a")."""
        migration_id = self.planning()
        totals = self.plan(migration_id, packets or (["a"],))
        self.app.finish_planning(migration_id, totals)
        return migration_id

    def completed(self, *packets: Sequence[str], failing: Sequence[str] = ()) -> UUID:
        """A migration whose packets were each copied, but for the keys ``failing``."""
        migration_id = self.running(*packets)
        for sequence, keys in enumerate(packets or (["a"],)):
            outcomes = [self.result(key, failing) for key in keys]
            self.app.record_packet(migration_id, sequence, outcomes)
        assert self.app.complete_if_done(migration_id)
        return migration_id

    def paused(self, previous: str) -> UUID:
        """A migration paused while it was ``previous``."""
        migration_id = self.in_state(previous)
        self.app.pause(migration_id)
        return migration_id

    def failed(self) -> UUID:
        migration_id = self.running()
        self.app.fail(migration_id, reason="no-bucket", message="the source bucket is gone")
        return migration_id

    def cancelled(self) -> UUID:
        migration_id = self.running()
        self.app.cancel(migration_id)
        return migration_id

    def in_state(self, status: str) -> UUID:
        """A migration in ``status``; "paused" is paused while running."""
        if status == "paused":
            return self.paused("running")
        makers = {
            "requested": self.requested,
            "planning": self.planning,
            "running": self.running,
            "completed": self.completed,
            "failed": self.failed,
            "cancelled": self.cancelled,
        }
        return makers[status]()

    @staticmethod
    def result(key: str, failing: Sequence[str] = (), *, version: int = 1) -> CopyResult:
        """A verified copy of ``key`` (10 bytes), or its failure if it is in ``failing``."""
        if key in failing:
            return CopyResult(key, reason="not-found", message="gone", attempts=3, version=version)
        return CopyResult(key, size=10, checksum="md5:00", version=version)

    def topics(self) -> list[str]:
        """The class of every event recorded, in order (``Migration.Requested``, ...)."""
        return [
            type(self.app.mapper.to_domain_event(n)).__qualname__
            for n in self.app.notifications(0, 1_000_000)
        ]
