"""How the dashboard writes byte counts and percentages (services/api/dashboard.py)."""

from __future__ import annotations

from services.api.dashboard import human_bytes, percent


def test_byte_counts_and_percentages_read_as_people_write_them() -> None:
    assert human_bytes(0) == "0 B"
    assert human_bytes(1023) == "1023 B"
    assert human_bytes(1536) == "1.5 KiB"
    assert human_bytes(12 * 1024 * 1024) == "12.0 MiB"
    assert human_bytes(5 * 1024**4) == "5.0 TiB"
    assert percent(1, 3) == "33%"
    assert percent(999, 1000) == "99%"  # never 100% before the last object
    assert percent(0, 0) == "0%"
