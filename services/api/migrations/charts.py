"""A migration's rate, ETA and throughput chart: pure functions the progress view uses."""

from __future__ import annotations

from datetime import datetime, timedelta
from html import escape

from markupsafe import Markup

CHART_BINS = 40


def rate(bytes_copied: int, started: datetime | None, until: datetime) -> float:
    """Bytes per second over the whole run so far (0 before it starts)."""
    if started is None:
        return 0.0
    seconds = (until - started).total_seconds()
    return bytes_copied / seconds if seconds > 0 else 0.0


def eta(bytes_left: int, bytes_per_second: float) -> timedelta | None:
    """How long the rest takes at this rate; None when that cannot be known."""
    if bytes_left <= 0:
        return timedelta(0)
    if bytes_per_second <= 0:
        return None
    return timedelta(seconds=round(bytes_left / bytes_per_second))


def duration(span: timedelta | None) -> str:
    """``"about 3m 20s"``-style; a dash when unknown."""
    if span is None:
        return "—"
    seconds = int(span.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {seconds:02d}s" if minutes else f"{seconds}s"


def throughput_svg(
    bytes_per_bin: list[int], seconds_per_bin: float, *, width: int = 640, height: int = 120
) -> Markup:
    """An accessible bar chart of bytes per second over time, as inline SVG."""
    if not bytes_per_bin or seconds_per_bin <= 0:
        return Markup("")
    rates = [b / seconds_per_bin for b in bytes_per_bin]
    peak = max(rates) or 1.0
    bar = width / len(rates)
    bars = []
    for n, value in enumerate(rates):
        tall = value / peak * (height - 4)
        bars.append(
            f'<rect x="{n * bar:.1f}" y="{height - tall:.1f}" width="{max(bar - 1, 1):.1f}"'
            f' height="{tall:.1f}"><title>{escape(per_second(value))}</title></rect>'
        )
    summary = f"Throughput over time; peak {per_second(peak)}"
    # Every value put in is a number or escaped above.
    return Markup(  # noqa: S704
        f'<svg class="throughput" viewBox="0 0 {width} {height}" role="img"'
        f' aria-label="{escape(summary)}" preserveAspectRatio="none">'
        f"{''.join(bars)}</svg>"
    )


def per_second(value: float) -> str:
    units = ("B/s", "KiB/s", "MiB/s", "GiB/s")
    unit = 0
    while value >= 1024 and unit < len(units) - 1:
        value, unit = value / 1024, unit + 1
    return f"{value:.1f} {units[unit]}"
