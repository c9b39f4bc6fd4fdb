"""A migration completes once its last packet closes, with every packet counted once."""

from __future__ import annotations

import asyncio

from cstor.app.migrations import Migrations
from cstor.app.results import CopyResult, PlanTotals
from cstor.domain.planning import PacketDraft, PlannedObject
from cstor.settings import Settings
from cstor.store.migrations import migrate_url
from tests.given import Given


def test_packets_closing_out_of_order_complete_the_migration_once_with_exact_totals(
    database_url: str,
) -> None:
    asyncio.run(migrate_url(database_url))
    app = Migrations(Settings(database_url=database_url).eventsourcing_env())
    try:
        # Given a planned migration of 40 one-object packets
        migration_id = Given(app).planning()
        migration = app.get(migration_id)
        for n in range(40):
            packet = PacketDraft(planned=[PlannedObject(f"k{n:02d}", n, "etag")])
            app.plan_packet(migration, n, packet, PlanTotals(packets=n + 1, objects=n + 1))
        app.finish_planning(migration_id, PlanTotals(packets=40, objects=40))

        # When the packets close out of order (every third one fails), checked after each
        order = [n for n in range(40) if n % 2] + [n for n in reversed(range(40)) if not n % 2]
        for n in order:
            result = (
                CopyResult(f"k{n:02d}", reason="not-found", message="gone")
                if n % 3 == 0
                else CopyResult(f"k{n:02d}", size=n, checksum="md5:00")
            )
            app.record_packet(migration_id, n, [result])
            # Then it completes with the last packet, not before
            assert app.complete_if_done(migration_id) == (n == order[-1])

        # And the completion counts each packet's outcome once
        assert not app.complete_if_done(migration_id)
        last = app.notifications(0, 10_000)[-1]
        completed = app.mapper.to_domain_event(last)
        assert type(completed).__qualname__ == "Migration.Completed"
        failed = len([n for n in range(40) if n % 3 == 0])
        assert (completed.copied, completed.failed) == (40 - failed, failed)  # type: ignore[attr-defined]
    finally:
        app.close()
