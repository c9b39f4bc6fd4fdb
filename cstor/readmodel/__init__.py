"""The read models in one place: built by the projector from events, read by the api.

`tables` names them (their DDL is a schema migration in `cstor.store`), `projection`
is their only writer (the projector service runs it from the bus; ``cstor
rebuild-read-models`` from the event store), and `queries` their only reader, answering
typed, frozen values rather than database rows.
"""

from __future__ import annotations

from cstor.readmodel.tables import MIGRATION_CHANGED, OBJECT_STATUSES, THROUGHPUT_SPANS

__all__ = ["MIGRATION_CHANGED", "OBJECT_STATUSES", "THROUGHPUT_SPANS"]
