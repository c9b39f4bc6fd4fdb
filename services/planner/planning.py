"""Plan a migration: decide each source object and record packets as they fill."""

from __future__ import annotations

import logging

from cstor import s3
from cstor.app.migrations import Migrations
from cstor.app.results import PlanTotals
from cstor.decisions import Scope, decisions
from cstor.domain import planning
from cstor.domain.migration import Migration

log = logging.getLogger(__name__)


def plan_migration(
    app: Migrations,
    migration: Migration,
    source: s3.Endpoint,
    destination: s3.Endpoint,
    limits: planning.PacketLimits,
) -> PlanTotals:
    """Record every packet of a migration, resuming after the last one already recorded.

    Packets are recorded as soon as they fill, so copying starts while listing goes on;
    each carries the last key and running totals, the checkpoint a restart resumes from.
    """
    sequence, last_key, totals = app.planning_checkpoint(migration.id)
    if sequence:
        log.info("resuming planning of %s after %r (packet %d)", migration.id, last_key, sequence)
    for packet in planning.plan_packets(
        decisions(Scope.of(migration), source, destination, last_key), limits
    ):
        totals = PlanTotals(
            packets=totals.packets + 1,
            objects=totals.objects + packet.objects,
            bytes=totals.bytes + packet.bytes,
            skipped=totals.skipped + len(packet.skipped),
        )
        if not app.plan_packet(migration, sequence, packet, totals):
            log.info("packet %d of %s was already planned", sequence, migration.id)
        else:
            for failed in packet.failed:
                log.warning(
                    "%r of %s failed while planning (%s): %s",
                    failed.key,
                    migration.id,
                    failed.reason,
                    failed.message,
                    extra={"key": failed.key},
                )
        sequence += 1
    return totals
