"""Objects' outcomes: the events recording a batch of them, and those already recorded.

An object packed at version v has its outcome (Copied or Failed) at version v + 1, so a
second outcome for it, from a redelivered packet or another replica, collides with the
first in the store and is refused: nothing is ever counted twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Mapper

from cstor.app.lookup import EventLookup
from cstor.app.results import CopyResult, Tally
from cstor.domain.transfer import copied_event, failed_event, object_id, transferred_event


def outcome_events(
    migration_id: UUID,
    sequence: int,
    results: Sequence[CopyResult],
    *,
    close: bool,
    earlier: Tally,
    now: datetime,
) -> list[DomainEventProtocol[UUID]]:
    """Each result's event and, if ``close``, the packet's closing with its counts
    (``earlier``, the outcomes recorded before this batch, added in)."""
    events: list[DomainEventProtocol[UUID]] = []
    copied, failed, copied_bytes = earlier.copied, earlier.failed, earlier.bytes
    for result in results:
        if result.copied:
            copied += 1
            copied_bytes += result.size
            events.append(
                copied_event(
                    migration_id,
                    result.key,
                    result.size,
                    result.checksum,
                    result.attempts,
                    now,
                    result.version,
                )
            )
        else:
            failed += 1
            events.append(
                failed_event(
                    migration_id,
                    result.key,
                    result.reason,
                    result.message,
                    result.attempts,
                    now,
                    result.version,
                )
            )
    if close:
        events.append(transferred_event(migration_id, sequence, copied, failed, copied_bytes, now))
    return events


def recorded_outcomes(
    lookup: EventLookup,
    mapper: Mapper[UUID],
    migration_id: UUID,
    objects: Sequence[tuple[str, int]],
) -> tuple[set[str], Tally]:
    """Which of ``objects`` (key, packed version) have their outcome, and its tally."""
    by_version: dict[int, dict[UUID, str]] = defaultdict(dict)
    for key, version in objects:
        by_version[version + 1][object_id(migration_id, key)] = key
    done: set[str] = set()
    copied = failed = copied_bytes = 0
    for version, keys in by_version.items():
        for stored in lookup.events_at(list(keys), version):
            done.add(keys[stored.originator_id])  # type: ignore[index]
            if stored.topic.endswith("ObjectTransfer.Copied"):
                copied += 1
                copied_bytes += mapper.to_domain_event(stored).size  # type: ignore[attr-defined]
            else:
                failed += 1
    return done, Tally(copied, failed, copied_bytes)
