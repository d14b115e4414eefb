"""From bucket rows to the figures of one moment: windows, uptime, status, the 72-hour bars.

Pure functions of the rows a refresh read and the moment it read them, so tests can check every figure
against hand-computed values without a database or a clock.

Windows end with the bucket that holds ``now`` (still filling): the 30-minute window is the last 30
minute buckets, the 24-hour window the last 24 hour buckets, the hourly bars the last 72 hour buckets.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from tokenmux.stats.buckets import DAY_S, HOUR_S, MINUTE_S, EndpointBucket, ModelDay, utc_day
from tokenmux.stats.distribution import Distribution

WINDOW_MINUTES = 30
WINDOW_DAY_HOURS = 24
HOURLY_BARS = 72

# Status from the last 30 minutes' uptime percent.
UP_AT = 95.0
DEGRADED_AT = 50.0

Figures = dict[str, Any]


def minute_window_start(now: float) -> int:
    return int(now // MINUTE_S) * MINUTE_S - (WINDOW_MINUTES - 1) * MINUTE_S


def hour_window_start(now: float, hours: int = HOURLY_BARS) -> int:
    return int(now // HOUR_S) * HOUR_S - (hours - 1) * HOUR_S


def day_names(now: float, days: int) -> tuple[str, ...]:
    """The last ``days`` UTC dates up to today's, oldest first."""
    today = int(now // DAY_S)
    return tuple(utc_day((today - back) * DAY_S) for back in range(days - 1, -1, -1))


def uptime_percent(successes: int, failures: int) -> float | None:
    """successes / (successes + provider-caused failures), as a percent; None when nothing counted."""
    counted = successes + failures
    return round(100.0 * successes / counted, 2) if counted else None


def status_of(uptime: float | None) -> str:
    if uptime is None:
        return "unknown"
    if uptime >= UP_AT:
        return "up"
    return "degraded" if uptime >= DEGRADED_AT else "down"


def merged(buckets: Sequence[EndpointBucket]) -> EndpointBucket | None:
    """One bucket holding the sum of ``buckets`` (one endpoint's window), or None for no buckets."""
    if not buckets:
        return None
    first = buckets[0]
    total = EndpointBucket(first.span_s, first.start_s, first.endpoint)
    for bucket in buckets:
        total.attempts += bucket.attempts
        total.successes += bucket.successes
        total.failures += bucket.failures
    total.ttft = _merged_distributions([b.ttft for b in buckets])
    total.tps = _merged_distributions([b.tps for b in buckets])
    return total


def _merged_distributions(parts: list[Distribution]) -> Distribution:
    # Summing bin columns at once is several times faster than merging bucket by bucket.
    with_samples = [d for d in parts if d.count]
    if not with_samples:
        return Distribution(parts[0].scale)
    lows = [d.min for d in with_samples if d.min is not None]
    highs = [d.max for d in with_samples if d.max is not None]
    return Distribution(
        parts[0].scale,
        sum(d.count for d in with_samples),
        math.fsum(d.total for d in with_samples),
        min(lows) if lows else None,
        max(highs) if highs else None,
        [sum(column) for column in zip(*(d.counts for d in with_samples), strict=True)],
    )


def empty_figures() -> Figures:
    """An endpoint's figures before any traffic."""
    return {
        "uptime_last_30m": None,
        "uptime_last_1d": None,
        "uptime_hourly": [None] * HOURLY_BARS,
        "latency_last_30m": None,
        "latency_last_1d": None,
        "throughput_last_30m": None,
        "throughput_last_1d": None,
        "requests_last_30m": 0,
        "requests_last_1d": 0,
        "status": "unknown",
    }


@dataclass(frozen=True, slots=True)
class ProviderFigures:
    uptime_hourly: list[float | None]
    uptime_last_30m: float | None
    status: str


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every figure as of ``taken_at``; replaced whole at each refresh, never changed."""

    taken_at: float
    endpoints: dict[str, Figures]
    routing: dict[str, tuple[float | None, float | None]]
    providers: dict[str, ProviderFigures]
    days: tuple[str, ...]  # oldest first, today last
    tokens_by_model: dict[str, dict[str, int]]  # model -> day -> tokens


def build_snapshot(
    now: float,
    minute_rows: Iterable[EndpointBucket],
    hour_rows: Iterable[EndpointBucket],
    model_days: Iterable[ModelDay],
    *,
    days: int,
) -> Snapshot:
    """The figures at ``now`` from the last 30 minute buckets, the last 72 hour buckets and the day rows."""
    minute_since = minute_window_start(now)
    hour_starts = range(hour_window_start(now), hour_window_start(now, 1) + 1, HOUR_S)
    day_since = hour_window_start(now, WINDOW_DAY_HOURS)

    minutes_by_endpoint: dict[str, list[EndpointBucket]] = defaultdict(list)
    for bucket in minute_rows:
        if bucket.start_s >= minute_since:
            minutes_by_endpoint[bucket.endpoint].append(bucket)
    hours_by_endpoint: dict[str, dict[int, EndpointBucket]] = defaultdict(dict)
    for bucket in hour_rows:
        if bucket.start_s >= hour_starts.start:
            hours_by_endpoint[bucket.endpoint][bucket.start_s] = bucket

    endpoints: dict[str, Figures] = {}
    routing: dict[str, tuple[float | None, float | None]] = {}
    # provider -> [successes, failures] per hour bar, and over the last 30 minutes
    provider_hours: dict[str, list[list[int]]] = defaultdict(lambda: [[0, 0] for _ in hour_starts])
    provider_recent: dict[str, list[int]] = defaultdict(lambda: [0, 0])

    for endpoint in minutes_by_endpoint.keys() | hours_by_endpoint.keys():
        recent = merged(minutes_by_endpoint.get(endpoint, []))
        by_hour = hours_by_endpoint.get(endpoint, {})
        day = merged([b for start, b in by_hour.items() if start >= day_since])
        endpoints[endpoint] = _endpoint_figures(recent, day, [by_hour.get(h) for h in hour_starts])
        routing[endpoint] = (_first(recent, day, "ttft"), _first(recent, day, "tps"))

        provider = endpoint.rpartition("@")[2]
        pooled = provider_hours[provider]
        for i, start in enumerate(hour_starts):
            hour = by_hour.get(start)
            if hour is not None:
                pooled[i][0] += hour.successes
                pooled[i][1] += hour.failures
        if recent is not None:
            provider_recent[provider][0] += recent.successes
            provider_recent[provider][1] += recent.failures

    providers = {}
    for provider, pooled in provider_hours.items():
        uptime = uptime_percent(*provider_recent[provider])
        providers[provider] = ProviderFigures(
            [uptime_percent(s, f) for s, f in pooled], uptime, status_of(uptime)
        )

    tokens_by_model: dict[str, dict[str, int]] = defaultdict(dict)
    for row in model_days:
        tokens_by_model[row.model][row.day] = row.tokens
    return Snapshot(now, endpoints, routing, providers, day_names(now, days), dict(tokens_by_model))


def _endpoint_figures(
    recent: EndpointBucket | None, day: EndpointBucket | None, hours: list[EndpointBucket | None]
) -> Figures:
    figures = empty_figures()
    if recent is not None:
        uptime = uptime_percent(recent.successes, recent.failures)
        figures["uptime_last_30m"] = uptime
        figures["status"] = status_of(uptime)
        figures["latency_last_30m"] = recent.ttft.summary()
        figures["throughput_last_30m"] = recent.tps.summary()
        figures["requests_last_30m"] = recent.attempts
    if day is not None:
        figures["uptime_last_1d"] = uptime_percent(day.successes, day.failures)
        figures["latency_last_1d"] = day.ttft.summary()
        figures["throughput_last_1d"] = day.tps.summary()
        figures["requests_last_1d"] = day.attempts
    figures["uptime_hourly"] = [None if h is None else uptime_percent(h.successes, h.failures) for h in hours]
    return figures


def _first(recent: EndpointBucket | None, day: EndpointBucket | None, measure: str) -> float | None:
    """The 30-minute average of a measure, or the 24-hour one when the last 30 minutes have none."""
    for window in (recent, day):
        if window is not None:
            average: float | None = getattr(window, measure).avg
            if average is not None:
                return average
    return None
