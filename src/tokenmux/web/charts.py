"""Geometry of the server-rendered SVG charts: bars for values per day, 72 coloured bars for hourly uptime.

The templates only place what is computed here, so a chart is plain markup: it shows without JavaScript,
with no chart library, and its hover text is an SVG ``<title>`` or an HTML ``title`` attribute.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from tokenmux.web import formatting

# Uptime colour thresholds, in percent (the model page's contract: >= 95 green, >= 85 amber, else red).
UPTIME_GOOD = 95.0
UPTIME_FAIR = 85.0
_CHAR_WIDTH = 7.0  # about how wide a digit or letter of an axis label is, in chart units


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    title: str  # the hover text


@dataclass(frozen=True, slots=True)
class Tick:
    position: float  # y of a grid line, or x of a day label
    label: str
    anchor: str = "middle"  # SVG text-anchor: the last day label ends at the plot's edge, not past it


@dataclass(frozen=True, slots=True)
class BarChart:
    width: int
    height: int
    plot_left: float
    plot_bottom: float
    bars: tuple[Bar, ...]
    grid: tuple[Tick, ...]
    days: tuple[Tick, ...]
    total: float

    @property
    def empty(self) -> bool:
        return self.total == 0


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten that is at least ``value`` (axis top)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power * (1 + 1e-9):
            return step * power
    return 10 * power


def daily_bar_chart(
    points: Sequence[tuple[str, float]],
    *,
    unit: str,
    width: int = 720,
    height: int = 220,
    gridlines: int = 4,
    day_labels: int = 6,
) -> BarChart:
    """Bars for ``(iso_date, value)`` points, oldest first, with grid lines and about ``day_labels``
    labelled days. The geometry is in SVG user units: the browser scales the whole chart to its box."""
    left, right, top, bottom = 44.0, 8.0, 10.0, 26.0
    plot_width = width - left - right
    plot_height = height - top - bottom
    peak = nice_ceiling(max((v for _, v in points), default=0.0))
    slot = plot_width / max(len(points), 1)
    # A few days of data must not become a few slabs: bars stay slim and the gap takes the rest.
    bar_width = min(slot * 0.8, 36.0)
    gap = slot - bar_width
    bars = []
    for i, (day, value) in enumerate(points):
        bar_height = plot_height * value / peak
        # A non-zero day stays visible as a sliver even beside a much larger one.
        if value > 0:
            bar_height = max(bar_height, 1.5)
        bars.append(
            Bar(
                x=round(left + i * slot + gap / 2, 2),
                y=round(top + plot_height - bar_height, 2),
                width=round(bar_width, 2),
                height=round(bar_height, 2),
                title=f"{formatting.day_label(day)}: {formatting.compact(value)} {unit}",
            )
        )
    grid = tuple(
        Tick(
            position=round(top + plot_height - plot_height * k / gridlines, 2),
            label=formatting.compact(peak * k / gridlines),
        )
        for k in range(gridlines + 1)
    )
    every = max(1, math.ceil(len(points) / day_labels))
    days = []
    for i in range(len(points)):
        if (len(points) - 1 - i) % every:
            continue  # counted back from the latest day, which always has its label
        label = formatting.day_label(points[i][0])
        centre = left + (i + 0.5) * slot
        # A label centred under the last bar could run past the edge: then it ends at the edge instead.
        if centre + len(label) * _CHAR_WIDTH / 2 > left + plot_width:
            days.append(Tick(round(left + plot_width, 2), label, anchor="end"))
        else:
            days.append(Tick(round(centre, 2), label))
    return BarChart(
        width=width,
        height=height,
        plot_left=left,
        plot_bottom=top + plot_height,
        bars=tuple(bars),
        grid=grid,
        days=tuple(days),
        total=sum(v for _, v in points),
    )


@dataclass(frozen=True, slots=True)
class ResponsiveChart:
    """The same bars drawn twice: a wide screen and a phone each get text at a readable size, which one
    scaled drawing cannot give both. CSS shows one of them."""

    wide: BarChart
    narrow: BarChart


def responsive_daily_chart(points: Sequence[tuple[str, float]], *, unit: str) -> ResponsiveChart:
    return ResponsiveChart(
        wide=daily_bar_chart(points, unit=unit, width=960, height=220),
        narrow=daily_bar_chart(points, unit=unit, width=360, height=200, day_labels=3),
    )


@dataclass(frozen=True, slots=True)
class HourBar:
    level: str  # "good" | "fair" | "poor" | "none": the CSS class that colours it
    title: str  # "Oct 10, 2025 - 3 PM UTC: 100.00%"


def uptime_level(uptime_percent: float | None) -> str:
    if uptime_percent is None:
        return "none"
    if uptime_percent >= UPTIME_GOOD:
        return "good"
    if uptime_percent >= UPTIME_FAIR:
        return "fair"
    return "poor"


@functools.lru_cache(maxsize=4)
def _hour_labels(current_hour: int, count: int) -> tuple[str, ...]:
    # Every provider's bars share these labels, and they change once an hour: format them once.
    return tuple(formatting.hour_label(current_hour - (count - 1 - i) * 3600) for i in range(count))


def hourly_uptime_bars(hourly: Sequence[float | None], now: float) -> tuple[HourBar, ...]:
    """One bar per hour, oldest first; the last entry is the hour ``now`` falls in."""
    labels = _hour_labels(math.floor(now / 3600) * 3600, len(hourly))
    return tuple(
        HourBar(
            level=uptime_level(value),
            title=f"{label}: {'no traffic' if value is None else formatting.percent(value)}",
        )
        for label, value in zip(labels, hourly, strict=True)
    )
