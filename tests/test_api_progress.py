"""Rate, time left and the throughput chart of a migration's progress card."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet
from litestar.testing import AsyncTestClient

from cstor.settings import Settings
from services.api import charts
from services.api.app import create_app
from tests.sessions import sign_up
from tests.test_dashboard import record_migration, record_objects

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
    assert 'height="96.0"' in svg  # the peak bar fills the chart
    assert str(charts.throughput_svg([], 1.0)) == ""


@pytest.fixture
async def client(database_url: str, nats_url: str) -> AsyncIterator[Client]:
    settings = Settings(
        database_url=database_url, nats_url=nats_url, secret_key=Fernet.generate_key().decode()
    )
    async with AsyncTestClient(app=create_app(settings)) as client:
        await sign_up(client)
        yield client


async def test_the_progress_card_shows_rate_time_left_and_the_chart(
    client: Client, database_url: str
) -> None:
    # Given a running migration, half its bytes copied in three minutes
    owner = str((await client.get("/api/v1/me")).json()["id"])
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
