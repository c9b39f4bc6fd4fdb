"""What each migration is doing right now, as far as this replica knows: running, paused...

The event store is the truth and is read at the start of every packet; between
packets, NATS tells the replica at once when a migration is paused, resumed or
cancelled, so copying stops within seconds: between objects, and between the parts
of a large object (whose upload is kept when paused, aborted when cancelled).
"""

from __future__ import annotations

import logging
from uuid import UUID

import anyio
from nats.aio.client import Client
from nats.aio.msg import Msg

from cstor import contracts
from cstor.app.migrations import Migrations
from cstor.domain.migration import Migration

log = logging.getLogger(__name__)

STOPPED = (Migration.PAUSED, Migration.CANCELLED)


class MigrationStates:
    """Each migration's status: read from the store, kept current by the event feed."""

    def __init__(self, app: Migrations) -> None:
        self.app = app
        self._status: dict[UUID, str] = {}

    async def follow(self, nc: Client) -> None:
        """Listen for pauses, resumes and cancellations (a plain subscription: no replay)."""
        for name in ("paused", "resumed", "cancelled"):
            await nc.subscribe(f"cstor.migration.*.{name}", cb=self._on_event)

    async def refresh(self, migration_id: UUID) -> Migration:
        """The migration as the event store has it now (its status, its storage class...)."""
        migration = await anyio.to_thread.run_sync(self.app.get, migration_id)
        self._status[migration_id] = migration.status
        return migration

    def stopped(self, migration_id: UUID) -> bool:
        """Whether copying for this migration should stop (paused or cancelled)."""
        return self._status.get(migration_id) in STOPPED

    def status(self, migration_id: UUID) -> str:
        return self._status.get(migration_id, "")

    async def _on_event(self, msg: Msg) -> None:
        try:
            event = contracts.decoder.decode(msg.data)
        except Exception:  # not ours to judge here; the consumers see it too
            return
        match event:
            case contracts.MigrationPaused():
                self._status[event.migration_id] = Migration.PAUSED
            case contracts.MigrationCancelled():
                self._status[event.migration_id] = Migration.CANCELLED
            case contracts.MigrationResumed():
                self._status[event.migration_id] = event.status
