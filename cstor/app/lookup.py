"""The one lookup the use cases need beyond the library's own: events at a version.

Packets and objects have deterministic ids and their outcomes sit at fixed versions, so
"has this packet closed?" or "has this object an outcome?" is "is there an event of this
id at that version?", asked of many ids at once. The library answers it one id at a time
(`select_events`); the Postgres recorder (`cstor.store.recorder.ColumnarRecorder`)
answers it for all of them in one statement. The application uses whichever the recorder
it runs on offers (`lookup_for`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable
from uuid import UUID

from eventsourcing.persistence import AggregateRecorder, StoredEvent


@runtime_checkable
class EventLookup(Protocol):
    """Finds the stored events of many originators at one version."""

    def events_at(self, originator_ids: Sequence[UUID], version: int) -> list[StoredEvent]:
        """The stored events at ``version`` of those of ``originator_ids`` that have one,
        in no particular order."""
        ...


class RecorderLookup:
    """`EventLookup` over any of the library's recorders, one id at a time."""

    def __init__(self, recorder: AggregateRecorder) -> None:
        self.recorder = recorder

    def events_at(self, originator_ids: Sequence[UUID], version: int) -> list[StoredEvent]:
        found: list[StoredEvent] = []
        for originator_id in originator_ids:
            found += self.recorder.select_events(originator_id, gt=version - 1, lte=version)
        return found


def lookup_for(recorder: AggregateRecorder) -> EventLookup:
    """The recorder's own lookup if it has one (Postgres: one statement), else one by one."""
    if isinstance(recorder, EventLookup):
        return recorder
    return RecorderLookup(recorder)
