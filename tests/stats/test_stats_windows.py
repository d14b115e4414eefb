"""Figures from a recorded set of attempts, checked against values computed by hand.

Everything goes through the real path: Recorder -> Store.write_batch (log and buckets in one
transaction) -> Stats.refresh -> the accessors, on SQLite and on PostgreSQL. The clock stands at
2024-12-01 10:45:30 UTC (NOW).
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from clock_support import Clock
from records_support import HOUR, MINUTE, NOW, attempt, failure, generation, success
from tokenmux.stats import HOURLY_BARS, Stats
from tokenmux.store import GenerationRecord, Recorder, Store
from tokenmux.store.distribution import TPS_BINS, TTFT_BINS, LogBins

NANO = "openai/gpt-4.1-nano"
MINI = "openai/gpt-4.1-mini"
A = f"{NANO}@openai"
B = f"{MINI}@openai"
C = f"{NANO}@azure"

TOKENS: dict[str, Any] = {"prompt_tokens": 100, "completion_tokens": 50}  # 150 per successful attempt


def scenario() -> list[GenerationRecord]:
    return [
        # A, last 30 minutes: 4 successes (3 streamed, 1 not), 1 provider failure, 1 client error,
        # 1 cancelled.
        success(A, NOW - 1 * MINUTE, ttft_ms=200, tps=50, cached_tokens=50, **TOKENS),
        success(A, NOW - 2 * MINUTE, ttft_ms=400, tps=100, **TOKENS),
        success(A, NOW - 25 * MINUTE, ttft_ms=900, tps=150, **TOKENS),  # 10:20:30, still in the window
        # Not streamed, recorded as before first tokens were only taken from streams: its whole latency
        # as its first token, its tokens/s over the whole call. Neither is a figure.
        success(A, NOW - 5 * MINUTE, ttft_ms=1000, tps=30, streamed=False, **TOKENS),
        failure(A, NOW - 3 * MINUTE, prompt_tokens=1000),  # a failed attempt's tokens are not "processed"
        failure(A, NOW - 4 * MINUTE, counts_for_uptime=False, error_class="client_error"),
        generation(attempt(A, NOW - 6 * MINUTE, outcome="cancelled")),
        # A, 31 minutes ago (10:14:30): in the current hour and the last 24 hours, not the last 30 minutes.
        failure(A, NOW - 31 * MINUTE),
        # A, two hours ago (08:45:30): one success, one provider failure.
        success(A, NOW - 2 * HOUR, ttft_ms=300, tps=80, **TOKENS),
        failure(A, NOW - 2 * HOUR),
        # A, 30 hours ago (2024-11-30 04:45:30): three successes, not streamed.
        *(success(A, NOW - 30 * HOUR, streamed=False, **TOKENS) for _ in range(3)),
        # A, 80 hours ago (2024-11-28 02:45:30): beyond the 72 hourly bars.
        success(A, NOW - 80 * HOUR, ttft_ms=100, **TOKENS),
        # B: two provider failures in the last 30 minutes, one streamed success two hours ago.
        failure(B, NOW - 100),
        failure(B, NOW - 400),
        success(B, NOW - 2 * HOUR, ttft_ms=500, tps=40, **TOKENS),
        # C: only rate limits on the user's own key, which say nothing about the provider.
        failure(C, NOW - 100, counts_for_uptime=False, error_class="rate_limited"),
        failure(C, NOW - 200, counts_for_uptime=False, error_class="rate_limited"),
    ]


@pytest.fixture
async def stats(store: Store, recorder: Recorder, clock: Clock) -> Stats:
    for record in scenario():
        recorder.record(record)
    await recorder.flush()
    stats = Stats(store, clock=clock)
    await stats.refresh()
    return stats


def bars(**at: float) -> list[float | None]:
    """72 hourly bars, None except ``b<index>=value``."""
    out: list[float | None] = [None] * HOURLY_BARS
    for name, value in at.items():
        out[int(name[1:])] = value
    return out


def close_to(estimate: float, true: float, scale: LogBins) -> bool:
    """Within one histogram bin's width of the true value."""
    return abs(math.log(estimate / true)) <= math.log(scale.ratio)


async def test_endpoint_figures_match_hand_computed_values(stats: Stats) -> None:
    figures = stats.endpoint_figures(A)
    windows = {key: figures.pop(key) for key in list(figures) if key.startswith(("latency", "throughput"))}
    assert figures == {
        # successes / (successes + provider failures): 4 / (4 + 1); the client error and the
        # cancellation do not count.
        "uptime_last_30m": 80.0,
        # + the 10:14 failure and the 08:45 success and failure: 5 / (5 + 3).
        "uptime_last_1d": 62.5,
        # 10:00 -> 4 / 6, 08:00 -> 1 / 2, 2024-11-30 04:00 (30 hours before 10:00) -> 3 / 3.
        "uptime_hourly": bars(b71=66.67, b69=50.0, b41=100.0),
        "requests_last_30m": 7,
        "requests_last_1d": 10,
        # Cached prompt tokens of the successes over their prompt tokens: 50 / 400, then 50 / 500 (a
        # failed attempt's prompt does not count).
        "cache_hit_last_30m": 12.5,
        "cache_hit_last_1d": 10.0,
        "status": "degraded",
    }
    # (samples) -> exact min, max, avg; nearest-rank percentiles within a bin of the true ones.
    # Both count streamed successes only: not the non-streamed 1000 ms and 30 tokens/s.
    expected = {
        "latency_last_30m": (TTFT_BINS, [200, 400, 900]),
        "latency_last_1d": (TTFT_BINS, [200, 400, 900, 300]),
        "throughput_last_30m": (TPS_BINS, [50, 100, 150]),
        "throughput_last_1d": (TPS_BINS, [50, 100, 150, 80]),
    }
    assert windows.keys() == expected.keys()
    for key, (scale, samples) in expected.items():
        window = windows[key]
        assert window.keys() == {"min", "max", "avg", "p50", "p90", "p99", "samples"}
        assert window["samples"] == len(samples), key
        assert (window["min"], window["max"]) == (min(samples), max(samples)), key
        assert window["avg"] == sum(samples) / len(samples), key
        ordered = sorted(samples)
        for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
            true = ordered[math.ceil(q * len(samples)) - 1]
            assert close_to(window[name], true, scale), (key, name, window[name], true)
            assert min(samples) <= window[name] <= max(samples)
    # 30 minutes: (200 + 400 + 900) / 3 ms and (50 + 100 + 150) / 3 tokens/s.
    assert stats.routing_figures(A) == (500.0, 100.0)
    assert stats.cache_hit_rate(A) == 0.125


async def test_an_endpoint_with_only_failures_is_down_and_routes_on_its_day(stats: Stats) -> None:
    figures = stats.endpoint_figures(B)
    assert figures["uptime_last_30m"] == 0.0
    assert figures["status"] == "down"
    assert figures["latency_last_30m"] is None and figures["throughput_last_30m"] is None
    assert figures["latency_last_1d"] == {
        "min": 500.0,
        "max": 500.0,
        "avg": 500.0,
        "p50": 500.0,
        "p90": 500.0,
        "p99": 500.0,
        "samples": 1,
    }
    assert figures["uptime_last_1d"] == pytest.approx(33.33)
    assert figures["uptime_hourly"] == bars(b71=0.0, b69=100.0)
    assert (figures["requests_last_30m"], figures["requests_last_1d"]) == (2, 3)
    # Nothing measured in the last 30 minutes: routing falls back to the last 24 hours.
    assert stats.routing_figures(B) == (500.0, 40.0)
    assert (figures["cache_hit_last_30m"], figures["cache_hit_last_1d"]) == (None, 0.0)
    assert stats.cache_hit_rate(B) == 0.0


async def test_failures_that_do_not_count_leave_uptime_unknown(stats: Stats) -> None:
    figures = stats.endpoint_figures(C)
    assert figures["uptime_last_30m"] is None and figures["uptime_last_1d"] is None
    assert figures["uptime_hourly"] == [None] * HOURLY_BARS
    assert figures["status"] == "unknown"
    assert figures["requests_last_30m"] == 2
    assert stats.routing_figures(C) == (None, None)
    assert stats.cache_hit_rate(C) is None


async def test_an_endpoint_without_traffic_has_empty_figures(stats: Stats) -> None:
    figures = stats.endpoint_figures("x-ai/grok-4@xai")
    assert figures == {
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
    assert stats.routing_figures("x-ai/grok-4@xai") == (None, None)
    assert stats.cache_hit_rate("x-ai/grok-4@xai") is None


async def test_figures_handed_out_are_copies(stats: Stats) -> None:
    figures = stats.endpoint_figures(A)
    figures["uptime_hourly"][0] = 1.0
    figures["status"] = "up"
    assert stats.endpoint_figures(A)["uptime_hourly"][0] is None
    assert stats.endpoint_figures(A)["status"] == "degraded"


async def test_provider_figures_pool_its_endpoints(stats: Stats) -> None:
    # openai = A + B. Last 30 minutes: (4 + 0) / (4 + 0 + 1 + 2) = 57.14 %.
    assert stats.provider_uptime("openai") == stats.provider_uptime("openai", "30m") == 57.14
    # Last 24 hours: A 5 / (5 + 3), B 1 / (1 + 2) -> 6 / 11.
    assert stats.provider_uptime("openai", "1d") == 54.55
    assert stats.provider_uptime("azure", "1d") is None and stats.provider_uptime("together") is None
    with pytest.raises(ValueError):
        stats.provider_uptime("openai", "1w")  # type: ignore[arg-type]
    assert stats.provider_status("openai") == "degraded"
    # 10:00: (4 + 0) / (6 + 2); 08:00: (1 + 1) / (2 + 1); 2024-11-30 04:00: A alone, 3 / 3.
    assert stats.provider_uptime_hourly("openai") == bars(b71=50.0, b69=66.67, b41=100.0)
    assert stats.provider_status("azure") == "unknown"
    assert stats.provider_uptime_hourly("azure") == [None] * HOURLY_BARS
    assert stats.provider_status("together") == "unknown"
    assert stats.provider_uptime_hourly("together") == [None] * HOURLY_BARS


async def test_tokens_per_day_counts_successful_attempts_and_shows_quiet_days(stats: Stats) -> None:
    assert stats.tokens_per_day(NANO, days=5) == [
        {"date": "2024-11-27", "tokens": 0},
        {"date": "2024-11-28", "tokens": 150},  # the success 80 hours ago
        {"date": "2024-11-29", "tokens": 0},
        {"date": "2024-11-30", "tokens": 450},  # three successes 30 hours ago
        {"date": "2024-12-01", "tokens": 750},  # four successes in the last 30 minutes + one at 08:45
    ]
    assert stats.tokens_per_day(MINI, days=2) == [
        {"date": "2024-11-30", "tokens": 0},
        {"date": "2024-12-01", "tokens": 150},
    ]
    default = stats.tokens_per_day(NANO)
    assert len(default) == 30 and default[0]["date"] == "2024-11-02" and default[-1]["tokens"] == 750
    assert stats.tokens_per_day("nobody/nothing", days=1) == [{"date": "2024-12-01", "tokens": 0}]
    with pytest.raises(ValueError, match="between 1 and 30"):
        stats.tokens_per_day(NANO, days=31)


async def test_windows_move_with_the_clock(stats: Stats, clock: Clock) -> None:
    # 11:12:30: the last 30 minute buckets start at 10:43, which leaves A's successes at 10:44:30 and
    # 10:43:30 and drops the failure at 10:42:30.
    clock.now = NOW + 27 * MINUTE
    await stats.refresh()
    figures = stats.endpoint_figures(A)
    assert (figures["uptime_last_30m"], figures["status"], figures["requests_last_30m"]) == (100.0, "up", 2)
    latency = figures["latency_last_30m"]
    assert (latency["min"], latency["max"], latency["avg"]) == (200.0, 400.0, 300.0)
    # A new hour began: the bars moved one to the left and 11:00 has no traffic yet.
    assert figures["uptime_hourly"] == bars(b70=66.67, b68=50.0, b40=100.0)

    clock.now = NOW + 3 * 24 * HOUR  # 2024-12-04 10:45:30: nothing within 72 hours
    await stats.refresh()
    assert stats.endpoint_figures(A) == stats.endpoint_figures("x-ai/grok-4@xai")
    assert stats.tokens_per_day(NANO, days=4)[0] == {"date": "2024-12-01", "tokens": 750}


async def test_two_batches_in_the_same_minute_add_up(store: Store, recorder: Recorder, clock: Clock) -> None:
    recorder.record(success(A, NOW - 10, ttft_ms=300, tps=60))
    recorder.record(failure(A, NOW - 9))
    await recorder.flush()
    recorder.record(success(A, NOW - 8, ttft_ms=100, tps=90))
    recorder.record(success(A, NOW - 7, ttft_ms=500, tps=30))
    await recorder.flush()
    stats = Stats(store, clock=clock)
    await stats.refresh()
    figures = stats.endpoint_figures(A)
    assert figures["uptime_last_30m"] == 75.0
    assert figures["requests_last_30m"] == 4
    latency, throughput = figures["latency_last_30m"], figures["throughput_last_30m"]
    assert (latency["min"], latency["max"], latency["avg"]) == (100.0, 500.0, 300.0)
    assert (throughput["min"], throughput["max"], throughput["avg"]) == (30.0, 90.0, 60.0)
    assert figures["uptime_hourly"][-1] == 75.0


async def test_key_activity_by_day_and_by_model(store: Store, recorder: Recorder, clock: Clock) -> None:
    cheap = {"prompt_tokens": 10, "completion_tokens": 5, "cost_usd": 0.00001}
    records = [
        success(A, NOW - 60, prompt_tokens=100, completion_tokens=50, cost_usd=0.0001, key_id="key_a"),
        success(C, NOW - 50, prompt_tokens=200, completion_tokens=100, cost_usd=0.0002, key_id="key_a"),
        # Every attempt failed: counted under the name the client asked for.
        generation(
            attempt(A, NOW - 40, outcome="error"),
            attempt(C, NOW - 39, outcome="error"),
            key_id="key_a",
            requested_model=f"{NANO}:nitro",
        ),
        success(B, NOW - 2 * 24 * HOUR, key_id="key_a", **cheap),  # 2024-11-29
        success(B, NOW - 30, key_id="key_b", **cheap),  # someone else's
        success(B, NOW - 20, key_id=None, **cheap),  # no key (auth off)
    ]
    for record in records:
        recorder.record(record)
    await recorder.flush()
    stats = Stats(store, clock=clock)

    activity = await stats.key_activity("key_a", days=3)
    assert activity["by_day"] == [
        {
            "date": "2024-11-29",
            "requests": 1,
            "prompt_tokens": 10,
            "completion_tokens": 5,
            "cost_usd": 0.00001,
        },
        {"date": "2024-11-30", "requests": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0},
        {
            "date": "2024-12-01",
            "requests": 3,
            "prompt_tokens": 300,
            "completion_tokens": 150,
            "cost_usd": 0.0003,
        },
    ]
    assert activity["by_model"] == [
        {"model": NANO, "requests": 2, "prompt_tokens": 300, "completion_tokens": 150, "cost_usd": 0.0003},
        {"model": MINI, "requests": 1, "prompt_tokens": 10, "completion_tokens": 5, "cost_usd": 0.00001},
        {
            "model": f"{NANO}:nitro",
            "requests": 1,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "cost_usd": 0.0,
        },
    ]
    one_day = await stats.key_activity("key_a", days=1)
    assert [d["date"] for d in one_day["by_day"]] == ["2024-12-01"]
    assert [m["model"] for m in one_day["by_model"]] == [NANO, f"{NANO}:nitro"]
    assert await stats.key_activity("key_nobody", days=2) == {
        "by_day": [
            {
                "date": "2024-11-30",
                "requests": 0,
                "prompt_tokens": 0,
                "completion_tokens": 0,
                "cost_usd": 0.0,
            },
            {
                "date": "2024-12-01",
                "requests": 0,
                "prompt_tokens": 0,
                "completion_tokens": 0,
                "cost_usd": 0.0,
            },
        ],
        "by_model": [],
    }

    latest = await stats.recent_generations("key_a", limit=2)
    assert [g.id for g in latest] == [records[2].id, records[1].id]
    assert latest[0] == records[2]  # every field and both attempts, as recorded
    assert [a.endpoint for a in latest[0].attempts] == [A, C]
    everything = await stats.recent_generations("key_a")
    assert [g.id for g in everything] == [records[i].id for i in (2, 1, 0, 3)]
    with pytest.raises(ValueError):
        await stats.recent_generations("key_a", limit=0)
