"""Rate, time left and the throughput chart of a migration's progress card."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient

from cstor import contracts
from cstor.readmodel.projection import project
from cstor.store.migrations import migrate
from services.api.migrations import charts
from services.api.queries import ReadModels
from tests.readmodel_rows import record_migration, record_objects

Client = AsyncTestClient[Any]
MiB = 1024 * 1024


def test_rate_and_time_left_follow_the_bytes_copied_so_far() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    # 12 MiB in 2 minutes: 0.1 MiB/s; 12 MiB more takes 2 minutes more
    speed = charts.rate(12 * MiB, start, start + timedelta(minutes=2))
    assert charts.per_second(speed) == "102.4 KiB/s"
    assert charts.duration(charts.eta(12 * MiB, speed)) == "2m 00s"
    assert charts.duration(charts.eta(0, 0.0)) == "0s"
    assert charts.duration(charts.eta(MiB, 0.0)) == "—"  # nothing copied yet: unknown
    assert charts.rate(MiB, None, start) == 0.0
    assert charts.duration(timedelta(hours=2, minutes=5)) == "2h 05m"


def test_the_chart_is_an_accessible_svg_of_bars_scaled_to_the_peak() -> None:
    svg = str(charts.throughput_svg([0, 1024, 2048], 1.0, width=300, height=100))
    assert svg.startswith("<svg")
    assert 'role="img"' in svg
    assert "peak 2.0 KiB/s" in svg
    assert svg.count("<rect") == 3
    assert 'height="52.0"' in svg  # the peak bar fills the plot (100 less the margins)
    # Labelled axes with units: time since the start, throughput in the peak's unit
    assert ">Time since start</text>" in svg
    assert ">Throughput (KiB/s)</text>" in svg
    assert ">2.0</text>" in svg  # the y axis's top tick: the peak in KiB/s
    assert ">3s</text>" in svg  # the x axis's end: 3 bins of 1 s
    mib = str(charts.throughput_svg([5 * 1024 * 1024], 2.0))
    assert ">Throughput (MiB/s)</text>" in mib
    assert ">2.5</text>" in mib
    assert str(charts.throughput_svg([], 1.0)) == ""


async def test_the_progress_card_shows_rate_time_left_and_the_chart(
    client: Client, database_url: str, owner: str
) -> None:
    # Given a running migration, half its bytes copied in three minutes
    migration_id = await record_migration(database_url, owner)
    await record_objects(database_url, migration_id, 9)

    # When its progress is polled
    html = (await client.get(f"/migrations/{migration_id}/progress")).text

    # Then it shows the rate, the time left at that rate, and the throughput chart
    assert "Rate" in html
    assert "KiB/s" in html
    assert "Time left" in html
    assert "3m 0" in html or "2m 5" in html  # about three minutes more
    assert '<svg class="throughput"' in html
    assert 'aria-label="Throughput over time' in html


async def test_the_chart_draws_the_projectors_series_however_many_objects(
    client: Client, database_url: str, owner: str
) -> None:
    # Given a migration of 30,000 objects projected from its events: 10,000 copied in its
    # first minute, 20,000 in its third, one copied event delivered twice
    migration_id = uuid.uuid4()
    # (on a whole minute: the series counts by the second, the minute and the hour)
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=3)
    events: list[contracts.Event] = [
        contracts.MigrationRequested(
            **_common(migration_id, start),
            name="big",
            owner=owner,
            source_connection_id=uuid.uuid4(),
            source_bucket="s",
            source_prefix="",
            destination_connection_id=uuid.uuid4(),
            destination_bucket="d",
            destination_prefix="",
        ),
        contracts.MigrationPlanningStarted(**_common(migration_id, start)),
    ]
    for n in range(30_000):
        object_id = uuid.uuid4()
        copied_at = start + timedelta(seconds=n % 60 if n < 10_000 else 120 + n % 60)
        events.append(
            contracts.ObjectPlanned(
                **_common(migration_id, start),
                object_id=object_id,
                key=f"k{n:05d}",
                size=1000,
                etag="e",
                packet_id=uuid.uuid4(),
                version=1,
            )
        )
        events.append(
            contracts.ObjectCopied(
                **_common(migration_id, copied_at),
                object_id=object_id,
                size=1000,
                checksum="md5:00",
                version=2,
            )
        )
    events.append(events[-1])  # a redelivery: the same object's outcome again
    conn = await asyncpg.connect(database_url)
    try:
        await project(conn, list(enumerate(events, start=1)))
    finally:
        await conn.close()

    # When its series is read in three bins of a minute, and its progress is polled
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    try:
        end = start + timedelta(minutes=3)
        bins = await ReadModels(pool).throughput(migration_id, start, end, 3)
        seconds = await ReadModels(pool).throughput(migration_id, start, end, 180)
    finally:
        await pool.close()
    html = (await client.get(f"/migrations/{migration_id}/progress")).text

    # Then every byte copied is in the minute it was copied in, once, and the chart is drawn
    assert bins == [10_000 * 1000, 0, 20_000 * 1000]
    assert sum(seconds[:60]) == 10_000 * 1000  # by the second, as finely
    assert sum(seconds[60:120]) == 0
    assert sum(seconds[120:]) == 20_000 * 1000
    assert html.count("<rect") == charts.CHART_BINS
    assert 'aria-label="Throughput over time; peak' in html


def _common(migration_id: uuid.UUID, at: datetime) -> dict[str, Any]:
    return {"event_id": uuid.uuid4(), "migration_id": migration_id, "occurred_at": at,
            "position": 0}  # fmt: skip


async def test_a_read_model_older_than_the_series_is_filled_from_its_copied_objects(
    client: Client, database_url: str, owner: str
) -> None:
    # Given a migration whose copied objects were projected before the series existed
    migration_id = await record_migration(database_url, owner)
    await record_objects(database_url, migration_id, 9)  # 6 copied: n = 1, 2, 4, 5, 7, 8
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    try:
        # (a database of the version before numbered migrations, made before the series)
        await pool.execute("DROP TABLE throughput_view; DROP TABLE schema_migrations")

        # When the schema is migrated (as every service does when it starts)
        await migrate(pool)

        # Then the series holds every copied byte, by the second, the minute and the hour
        totals = await pool.fetch(
            "SELECT span, sum(bytes)::bigint AS bytes FROM throughput_view"
            " WHERE migration_id = $1 GROUP BY span ORDER BY span",
            migration_id,
        )
    finally:
        await pool.close()
    copied = 2048 * (1 + 2 + 4 + 5 + 7 + 8)
    assert [(row["span"], row["bytes"]) for row in totals] == [
        (1, copied),
        (60, copied),
        (3600, copied),
    ]
