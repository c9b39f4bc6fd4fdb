"""NATS subject names: they read like sentences, e.g. ``cstor.object.<migration>.copied``."""

from __future__ import annotations

from uuid import UUID

ALL = "cstor.>"
MIGRATION_REQUESTED = "cstor.migration.*.requested"
MIGRATION_PLANNED = "cstor.migration.*.planned"
MIGRATION_RESUMED = "cstor.migration.*.resumed"
MIGRATION_CONTROL = "cstor.migration.*.*"  # paused, resumed, cancelled (and the rest)
PACKET_PLANNED = "cstor.packet.*.planned"
PACKET_TRANSFERRED = "cstor.packet.*.transferred"


def subject(aggregate: str, migration_id: UUID, event_name: str) -> str:
    """The subject of one event: ``cstor.<aggregate>.<migration id>.<event>``."""
    return f"cstor.{aggregate}.{migration_id}.{event_name}"
