"""Plan a migration: list the source page by page and record packets as they fill."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

from cstor import s3
from cstor.domain.migration import Migration
from cstor.domain.planning import PacketLimits, PlannedObject, plan_packets
from cstor.eventstore import Migrations

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlanTotals:
    packets: int
    objects: int
    bytes: int


def listed_objects(endpoint: s3.Endpoint, migration: Migration) -> Iterator[PlannedObject]:
    """The source objects to copy, streamed page by page in key order."""
    for page in s3.list_pages(endpoint, migration.source_bucket, migration.source_prefix):
        for listed in page:
            yield PlannedObject(key=listed.key, size=listed.size, etag=listed.etag)


def plan_migration(
    app: Migrations, migration: Migration, endpoint: s3.Endpoint, limits: PacketLimits
) -> PlanTotals:
    """Record every packet of a migration; packets already recorded (a replan) are kept as is.

    Packets are recorded as soon as they fill, so copying starts while listing goes on.
    """
    packets = objects = total_bytes = 0
    for sequence, packet in enumerate(plan_packets(listed_objects(endpoint, migration), limits)):
        if not app.plan_packet(migration, sequence, packet):
            log.info("packet %d of %s was already planned", sequence, migration.id)
        packets += 1
        objects += len(packet)
        total_bytes += sum(obj.size for obj in packet)
    return PlanTotals(packets=packets, objects=objects, bytes=total_bytes)
