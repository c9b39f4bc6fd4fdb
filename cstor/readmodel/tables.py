"""The read models' tables, by name, and the facts about them their writer and readers share.

The DDL is a schema migration (`cstor.store.baseline`, applied by `cstor.store.migrations`);
this package owns what is written to these tables (`cstor.readmodel.projection`, the
projector's fold of the events) and what is read from them (`cstor.readmodel.queries`).
"""

from __future__ import annotations

MIGRATIONS = "migrations_view"
"""One row per migration: what it was asked for, its status, and its running totals."""
OBJECTS = "objects_view"
"""One row per object of a migration, at the version of its last outcome."""
THROUGHPUT = "throughput_view"
"""Bytes copied by each migration in each span of `THROUGHPUT_SPANS`, for the chart."""
POSITIONS = "projector_position"
"""How far in the stream the read models are, kept in the transaction of their rows."""

READ_MODELS = (MIGRATIONS, OBJECTS, THROUGHPUT)
"""The tables a rebuild empties and folds again from the event store."""

MIGRATION_CHANGED = "cstor_migration_changed"
"""The NOTIFY channel naming each migration whose row changed (or went)."""

THROUGHPUT_SPANS = (1, 60, 3600)
"""The spans of time, in seconds, the throughput series is kept in (see `THROUGHPUT`)."""

OBJECT_STATUSES = ("planned", "copied", "failed", "skipped")
"""What an object's row may say of it."""
