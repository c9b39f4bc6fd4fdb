"""Every Postgres advisory-lock key cstor takes, named in one place.

Advisory locks share one key space per database with anything else that takes them, so
two uses picking the same number would wait on each other for no reason (the api once
took the event store's key to create the accounts tables). Each key here has one use.
The one-bigint keys are below; the two-int4 space is the transfer's object slots only
(`migration_slots`), so the two kinds never meet.
"""

from __future__ import annotations

from uuid import UUID

SCHEMA_MIGRATIONS = 7366537
"""Held (for its transaction) by the process applying `cstor.store.migrations`.

The key the read-model schema was made under before numbered migrations, so a process
of the older kind starting at the same time still takes turns with a new one.
"""

EVENT_STORE_SCHEMA = 7366538
"""Held (for its transaction) by schema migration 2, which makes the event store's tables.

The eventsourcing library made them at start under this key before (for its session),
so a process of that older kind starting at the same time still takes turns.
"""

OUTBOX_RELAY = 0x63_73_74_6F_72  # "cstor"
"""Held (for its session) by the one relay publishing the store's events."""

READ_MODEL_REBUILD = 7366540
"""Held by ``cstor rebuild-read-models``; each projector transaction takes it shared."""


def migration_slots(migration_id: UUID) -> int:
    """The migration's first key among the two-int4 advisory locks: its object slots.

    The slot ``(key, k)`` is the k-th of the migration's concurrent objects. Four bytes of
    its id: two migrations limited at the same time share slots only if theirs are equal,
    one chance in four billion.
    """
    return int.from_bytes(migration_id.bytes[:4], "big", signed=True)
