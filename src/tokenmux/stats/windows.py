"""From bucket rows to the figures of one moment: windows, uptime, status, the 72-hour bars.

Pure functions of the rows a refresh read and the moment it read them, so tests can check every figure
against hand-computed values without a database or a clock.

Windows end with the bucket that holds ``now`` (still filling): the 30-minute window is the last 30
minute buckets, the 24-hour window the last 24 hour buckets, the hourly bars the last 72 hour buckets.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from tokenmux.store.buckets import DAY_S, HOUR_S, MINUTE_S, BucketCounts, EndpointBucket, ModelDay, utc_day
from tokenmux.store.distribution import Distribution

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


def cache_hit_percent(window: EndpointBucket | None) -> float | None:
    """The share of the successes' prompt tokens read from the provider's prompt cache, as a percent;
    None when no prompt tokens were counted."""
    if window is None or not window.prompt_tokens:
        return None
    return round(100.0 * window.cached_tokens / window.prompt_tokens, 2)


def status_of(uptime: float | None) -> str:
    if uptime is None:
        return "unknown"
    if uptime >= UP_AT:
        return "up"
    return "degraded" if uptime >= DEGRADED_AT else "down"


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
        "cache_hit_last_30m": None,
        "cache_hit_last_1d": None,
        "status": "unknown",
    }


@dataclass(frozen=True, slots=True)
class ProviderFigures:
    """Every endpoint of one provider pooled."""

    uptime_hourly: list[float | None]
    uptime_last_30m: float | None
    uptime_last_1d: float | None
    status: str


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every figure as of ``taken_at``; replaced whole at each refresh, never changed."""

    taken_at: float
    endpoints: dict[str, Figures]
    routing: dict[str, tuple[float | None, float | None]]
    # endpoint -> share (0..1) of prompt tokens read from the cache, last 30 minutes else 24 hours
    cache_hits: dict[str, float]
    providers: dict[str, ProviderFigures]
    days: tuple[str, ...]  # oldest first, today last
    tokens_by_model: dict[str, dict[str, int]]  # model -> day -> tokens


class _Bars:
    """Successes and provider-caused failures per hour bar, oldest first."""

    __slots__ = ("failures", "successes")

    def __init__(self) -> None:
        self.successes = [0] * HOURLY_BARS
        self.failures = [0] * HOURLY_BARS

    def pool(self, other: _Bars) -> None:
        self.successes = [a + b for a, b in zip(self.successes, other.successes, strict=True)]
        self.failures = [a + b for a, b in zip(self.failures, other.failures, strict=True)]

    def uptimes(self) -> list[float | None]:
        # uptime_percent inlined: this runs 72 times per endpoint per refresh.
        return [
            round(100.0 * s / (s + f), 2) if s + f else None
            for s, f in zip(self.successes, self.failures, strict=True)
        ]


def build_snapshot(
    now: float,
    recent: Iterable[EndpointBucket],
    day: Iterable[EndpointBucket],
    hourly: Iterable[BucketCounts],
    model_days: Iterable[ModelDay],
    *,
    days: int,
) -> Snapshot:
    """The figures at ``now`` from each endpoint's summed last 30 minute buckets (``recent``) and last 24
    hour buckets (``day``), the counts of the last 72 hour buckets and the day rows of tokens."""
    first_bar = hour_window_start(now)
    bars: dict[str, _Bars] = {}
    for row in hourly:
        bar = (row.start_s - first_bar) // HOUR_S
        if 0 <= bar < HOURLY_BARS:
            endpoint_bars = bars.get(row.endpoint)
            if endpoint_bars is None:
                endpoint_bars = bars[row.endpoint] = _Bars()
            endpoint_bars.successes[bar] += row.successes
            endpoint_bars.failures[bar] += row.failures

    recent_by_endpoint = {w.endpoint: w for w in recent}
    day_by_endpoint = {w.endpoint: w for w in day}
    endpoints: dict[str, Figures] = {}
    routing: dict[str, tuple[float | None, float | None]] = {}
    cache_hits: dict[str, float] = {}
    provider_bars: dict[str, _Bars] = defaultdict(_Bars)
    # provider -> [successes, provider-caused failures] over the last 30 minutes and 24 hours
    provider_recent: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    provider_day: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for endpoint in recent_by_endpoint.keys() | day_by_endpoint.keys() | bars.keys():
        last_30m, last_1d = recent_by_endpoint.get(endpoint), day_by_endpoint.get(endpoint)
        endpoint_bars = bars.get(endpoint)
        endpoints[endpoint] = _endpoint_figures(last_30m, last_1d, endpoint_bars)
        routing[endpoint] = (
            _average(last_30m, last_1d, lambda w: w.ttft),
            _average(last_30m, last_1d, lambda w: w.tps),
        )
        for window in (last_30m, last_1d):
            if window is not None and window.prompt_tokens:
                cache_hits[endpoint] = window.cached_tokens / window.prompt_tokens
                break
        provider = endpoint.rpartition("@")[2]
        if endpoint_bars is not None:
            provider_bars[provider].pool(endpoint_bars)
        for window, pooled in ((last_30m, provider_recent), (last_1d, provider_day)):
            if window is not None:
                pooled[provider][0] += window.successes
                pooled[provider][1] += window.failures

    providers = {}
    for provider in provider_bars.keys() | provider_recent.keys() | provider_day.keys():
        uptime = uptime_percent(*provider_recent[provider])
        providers[provider] = ProviderFigures(
            provider_bars[provider].uptimes(),
            uptime,
            uptime_percent(*provider_day[provider]),
            status_of(uptime),
        )

    tokens_by_model: dict[str, dict[str, int]] = defaultdict(dict)
    for model_day in model_days:
        tokens_by_model[model_day.model][model_day.day] = model_day.tokens
    return Snapshot(
        now, endpoints, routing, cache_hits, providers, day_names(now, days), dict(tokens_by_model)
    )


def _endpoint_figures(
    recent: EndpointBucket | None, day: EndpointBucket | None, bars: _Bars | None
) -> Figures:
    figures = empty_figures()
    if recent is not None:
        uptime = uptime_percent(recent.successes, recent.failures)
        figures["uptime_last_30m"] = uptime
        figures["status"] = status_of(uptime)
        figures["latency_last_30m"] = recent.ttft.summary()
        figures["throughput_last_30m"] = recent.tps.summary()
        figures["requests_last_30m"] = recent.attempts
        figures["cache_hit_last_30m"] = cache_hit_percent(recent)
    if day is not None:
        figures["uptime_last_1d"] = uptime_percent(day.successes, day.failures)
        figures["latency_last_1d"] = day.ttft.summary()
        figures["throughput_last_1d"] = day.tps.summary()
        figures["requests_last_1d"] = day.attempts
        figures["cache_hit_last_1d"] = cache_hit_percent(day)
    if bars is not None:
        figures["uptime_hourly"] = bars.uptimes()
    return figures


def _average(
    recent: EndpointBucket | None,
    day: EndpointBucket | None,
    measure: Callable[[EndpointBucket], Distribution],
) -> float | None:
    """The 30-minute average of a measure, or the 24-hour one when the last 30 minutes have none."""
    for window in (recent, day):
        if window is not None:
            average = measure(window).avg
            if average is not None:
                return average
    return None
