"""Pause, resume and cancel: an operator's hold on a running migration."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

import anyio
from eventsourcing.persistence import IntegrityError

from cstor.domain.exceptions import Conflict
from services.api.deps import Services
from services.api.migrations.commands import get_migration
from services.api.migrations.schemas import MigrationOut


async def pause(services: Services, owner: str, migration_id: UUID) -> MigrationOut:
    """Stop copying within seconds (between objects and parts); resume goes on from there."""
    return await _change(services, owner, migration_id, services.migrations.pause)


async def resume(services: Services, owner: str, migration_id: UUID) -> MigrationOut:
    return await _change(services, owner, migration_id, services.migrations.resume)


async def cancel(services: Services, owner: str, migration_id: UUID) -> MigrationOut:
    """End a migration: nothing more is copied; what was copied stays recorded."""
    return await _change(services, owner, migration_id, services.migrations.cancel)


async def _change(
    services: Services, owner: str, migration_id: UUID, command: Callable[[UUID], None]
) -> MigrationOut:
    await get_migration(services, owner, migration_id)  # 404 unless it is theirs
    try:  # a MigrationStateError, a Conflict, says why the state forbids it
        await anyio.to_thread.run_sync(command, migration_id)
    except IntegrityError:
        raise Conflict("The migration changed meanwhile; look at it and try again.") from None
    return await get_migration(services, owner, migration_id)
