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


MARGIN_LEFT, MARGIN_TOP, MARGIN_RIGHT, MARGIN_BOTTOM = 64, 8, 12, 40
# The x axis's first and last labels start and end at the plot's edges, inside the chart.
X_ANCHORS = {0.0: "start", 0.5: "middle", 1.0: "end"}


def throughput_svg(
    bytes_per_bin: list[int], seconds_per_bin: float, *, width: int = 640, height: int = 160
) -> Markup:
    """An accessible bar chart of throughput over time, as inline SVG, with labelled axes:
    time since the start (x) and bytes per second in the peak's unit (y)."""
    if not bytes_per_bin or seconds_per_bin <= 0:
        return Markup("")
    rates = [b / seconds_per_bin for b in bytes_per_bin]
    peak = max(rates) or 1.0
    plot_w = width - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = height - MARGIN_TOP - MARGIN_BOTTOM
    bar = plot_w / len(rates)
    bars = []
    for n, value in enumerate(rates):
        tall = value / peak * plot_h
        bars.append(
            f'<rect x="{MARGIN_LEFT + n * bar:.1f}" y="{MARGIN_TOP + plot_h - tall:.1f}"'
            f' width="{max(bar - 1, 1):.1f}" height="{tall:.1f}">'
            f"<title>{escape(per_second(value))}</title></rect>"
        )
    axes = _axes(peak, seconds_per_bin * len(rates), plot_w, plot_h)
    summary = f"Throughput over time; peak {per_second(peak)}"
    # Every value put in is a number or escaped above.
    return Markup(  # noqa: S704
        f'<svg class="throughput" viewBox="0 0 {width} {height}" role="img"'
        f' aria-label="{escape(summary)}">'
        f"{''.join(bars)}{axes}</svg>"
    )


def _axes(peak: float, total_seconds: float, plot_w: float, plot_h: float) -> str:
    """The axis lines, ticks at 0, half and the end, and the axes' titles with units."""
    scale, unit = _unit(peak)
    bottom = MARGIN_TOP + plot_h
    parts = [
        f'<line class="axis" x1="{MARGIN_LEFT}" y1="{MARGIN_TOP}" x2="{MARGIN_LEFT}"'
        f' y2="{bottom}"/>',
        f'<line class="axis" x1="{MARGIN_LEFT}" y1="{bottom}" x2="{MARGIN_LEFT + plot_w}"'
        f' y2="{bottom}"/>',
    ]
    for share in (0.0, 0.5, 1.0):
        y = bottom - share * plot_h
        parts.append(
            f'<text class="tick" x="{MARGIN_LEFT - 4}" y="{y + 3:.1f}" text-anchor="end">'
            f"{peak * share / scale:.1f}</text>"
        )
        x = MARGIN_LEFT + share * plot_w
        at = duration(timedelta(seconds=round(total_seconds * share)))
        parts.append(
            f'<text class="tick" x="{x:.1f}" y="{bottom + 14}" text-anchor="{X_ANCHORS[share]}">'
            f"{escape(at)}</text>"
        )
    parts.append(
        f'<text class="axis-title" x="{MARGIN_LEFT + plot_w / 2:.1f}" y="{bottom + 32}"'
        ' text-anchor="middle">Time since start</text>'
    )
    parts.append(
        f'<text class="axis-title" transform="translate(14 {MARGIN_TOP + plot_h / 2:.1f})'
        f' rotate(-90)" text-anchor="middle">Throughput ({unit})</text>'
    )
    return "".join(parts)


def _unit(value: float) -> tuple[float, str]:
    """The unit a rate is shown in, and its size in bytes per second."""
    units = ("B/s", "KiB/s", "MiB/s", "GiB/s")
    unit = 0
    while value >= 1024 ** (unit + 1) and unit < len(units) - 1:
        unit += 1
    return float(1024**unit), units[unit]


def per_second(value: float) -> str:
    units = ("B/s", "KiB/s", "MiB/s", "GiB/s")
    unit = 0
    while value >= 1024 and unit < len(units) - 1:
        value, unit = value / 1024, unit + 1
    return f"{value:.1f} {units[unit]}"
