"""What live figures cost: a refresh, the accessors the pages and routing call, and recording with them on.

    .venv/bin/python bench/bench_stats.py [--endpoints 30] [--attempts 1000000] [--records 100000]

1. Aggregates ``--attempts`` attempts spread evenly over the last 72 hours across ``--endpoints``
   endpoints (10 models x 3 providers), written as bucket rows exactly as ``write_batch`` writes them but
   without their log rows (a refresh never reads those: tests/stats/test_stats_refresh_cost.py).
2. Times ``Stats.refresh()`` (four queries, then building the snapshot) and the snapshot accessors
   ``endpoint_figures``, ``routing_figures`` and ``tokens_per_day``.
3. Records ``--records`` requests across the endpoints through ``Recorder`` into SQLite, alternately with
   the aggregation on and with the log alone, and prints records/s and writer CPU per record for each
   (alternating, because on a shared machine back-to-back runs differ more than the two variants).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import random
import sqlite3
import statistics
import tempfile
import time
import timeit
from collections.abc import Callable, Sequence
from pathlib import Path

from tokenmux.stats import Stats
from tokenmux.stats.windows import HOURLY_BARS, build_snapshot, hour_window_start, minute_window_start
from tokenmux.store import AttemptRecord, GenerationRecord, Recorder, SQLiteStore
from tokenmux.store import sqlite as sqlite_store
from tokenmux.store.buckets import BatchDeltas, aggregate
from tokenmux.store.sqlite_threads import write_transaction

PROVIDERS = ("openai", "azure", "together")
MODELS = tuple(f"vendor/model-{i}" for i in range(10))


def synthetic_generations(
    first: int, count: int, total: int, endpoints: list[str], end: float, span_s: float, rng: random.Random
) -> list[GenerationRecord]:
    """Generations ``first`` to ``first + count`` of ``total``, spread evenly over the ``span_s`` seconds
    before ``end`` in time order (as the recorder writes them), each with one attempt: 97 % succeed, 2 %
    fail at the provider, 1 % are the client's own errors."""
    generations = []
    for i in range(first, first + count):
        endpoint = endpoints[i % len(endpoints)]
        model, _, provider = endpoint.partition("@")
        started = end - span_s * (1 - i / total)
        roll = rng.random()
        ok = roll < 0.97
        tps = rng.lognormvariate(4.5, 0.3)  # ~90 tokens/s
        attempt = AttemptRecord(
            generation_id=f"gen-{int(started)}-{i:012x}",
            attempt=1,
            model=model,
            provider=provider,
            endpoint=endpoint,
            outcome="success" if ok else "error",
            error_class=None if ok else "server_error" if roll < 0.99 else "client_error",
            prompt_tokens=1200,
            completion_tokens=350 if ok else 0,
            cost_usd=0.0002 if ok else 0.0,
            ttft_ms=rng.lognormvariate(6.3, 0.4) if ok else None,  # ~550 ms
            latency_ms=4000.0,
            generation_ms=350 / tps * 1000 if ok else None,
            throughput_tps=tps if ok else None,
            streamed=True,
            finish_reason="stop" if ok else None,
            started_at=started,
            counts_for_uptime=roll < 0.99,
        )
        generations.append(
            GenerationRecord(
                id=attempt.generation_id,
                key_id=f"key_{i % 20:016x}",
                requested_model=model,
                model=model if ok else None,
                provider=provider if ok else None,
                created_at=started,
                streamed=True,
                status=attempt.outcome,
                prompt_tokens=attempt.prompt_tokens,
                completion_tokens=attempt.completion_tokens,
                cost_usd=attempt.cost_usd,
                attempts=[attempt],
            )
        )
    return generations


def write_deltas(deltas: BatchDeltas, conn: sqlite3.Connection) -> None:
    with write_transaction(conn):
        sqlite_store._add_to_aggregates(conn, deltas)


async def fill_buckets(store: SQLiteStore, attempts: int, endpoints: list[str], now: float) -> float:
    rng = random.Random(7)
    started = time.perf_counter()
    chunk = 20_000
    for offset in range(0, attempts, chunk):
        count = min(chunk, attempts - offset)
        batch = synthetic_generations(offset, count, attempts, endpoints, now, 72 * 3600, rng)
        await store._write(functools.partial(write_deltas, aggregate(batch)))
    return time.perf_counter() - started


def per_call_us(call: Callable[[], object], number: int) -> float:
    return min(timeit.repeat(call, number=number, repeat=5)) / number * 1e6


async def measure_stats(endpoints: list[str], attempts: int, db_path: Path) -> None:
    now = time.time()
    store = SQLiteStore(db_path)
    await store.open()
    fill_s = await fill_buckets(store, attempts, endpoints, now)

    stats = Stats(store)
    refresh_ms, refresh_cpu_ms = [], []
    for _ in range(20):
        t0, cpu0 = time.perf_counter(), time.process_time()
        await stats.refresh()
        refresh_ms.append((time.perf_counter() - t0) * 1e3)
        refresh_cpu_ms.append((time.process_time() - cpu0) * 1e3)  # every thread: SQLite's and Python's
    recent = await store.endpoint_windows(60, minute_window_start(now))
    day = await store.endpoint_windows(3600, hour_window_start(now, 24))
    hours = await store.endpoint_counts(3600, hour_window_start(now, HOURLY_BARS))
    minutes = await store.endpoint_counts(60, minute_window_start(now))
    model_days = await store.model_days("2000-01-01")
    build_ms = per_call_us(lambda: build_snapshot(now, recent, day, hours, model_days, days=30), 20) / 1e3
    await store.close()

    day_rows = sum(1 for h in hours if h.start_s >= hour_window_start(now, 24))
    key = endpoints[0]
    figures = stats.endpoint_figures(key)
    assert figures["requests_last_1d"] > 0 and len(figures["uptime_hourly"]) == HOURLY_BARS, figures
    print(
        f"stats: {attempts:,} attempts over 72 h, {len(endpoints)} endpoints (aggregated in {fill_s:.1f} s)"
    )
    print(
        f"  a refresh reads:        {len(minutes):,} minute rows and {day_rows:,} hour rows "
        f"summed in SQL, {len(hours):,} hour counts, {len(model_days)} model-day rows"
    )
    print(
        f"  refresh():              median {statistics.median(refresh_ms):.1f} ms, "
        f"max {max(refresh_ms):.1f} ms (20 runs); CPU median {statistics.median(refresh_cpu_ms):.1f} ms, "
        f"building the snapshot {build_ms:.1f} ms of it"
    )
    print(f"  endpoint_figures():     {per_call_us(lambda: stats.endpoint_figures(key), 20_000):.2f} µs")
    print(f"  routing_figures():      {per_call_us(lambda: stats.routing_figures(key), 200_000):.3f} µs")
    model = key.partition("@")[0]
    print(f"  tokens_per_day(30):     {per_call_us(lambda: stats.tokens_per_day(model), 20_000):.2f} µs")
    print(f"  e.g. {key}: latency 30m {figures['latency_last_30m']}, uptime 1d {figures['uptime_last_1d']}")


class LogOnlyStore(SQLiteStore):
    """The baseline: the request log as written before the aggregates existed (its SQL, no buckets)."""

    async def write_batch(self, generations: Sequence[GenerationRecord]) -> None:
        def insert(conn: sqlite3.Connection) -> None:
            with write_transaction(conn):
                conn.executemany(
                    sqlite_store._INSERT_GENERATION, map(sqlite_store._generation_row, generations)
                )
                conn.executemany(
                    sqlite_store._INSERT_ATTEMPT,
                    ((g.id, *sqlite_store._att_rest(a)) for g in generations for a in g.attempts),
                )

        if generations:
            await self._write(insert)


async def flood(store: SQLiteStore, generations: list[GenerationRecord]) -> tuple[float, float]:
    """Record everything as a busy server would; (records/s until all are written, writer CPU µs/record)."""
    await store.open()
    writer = store._writer
    assert writer is not None
    cpu_before = await writer.run(lambda conn: time.thread_time())
    recorder = Recorder(store, close_timeout_s=600)
    recorder.start()
    started = time.perf_counter()
    for offset in range(0, len(generations), 500):
        for generation in generations[offset : offset + 500]:
            recorder.record(generation)
        await asyncio.sleep(0)
    await recorder.close()
    elapsed = time.perf_counter() - started
    cpu = await writer.run(lambda conn: time.thread_time()) - cpu_before
    await store.close()
    return len(generations) / elapsed, cpu / len(generations) * 1e6


async def measure_recording(endpoints: list[str], records: int, tmp: Path, rounds: int = 3) -> None:
    # As if the records arrived at 10,000/s: a batch spans a fraction of a second, as in a busy gateway.
    generations = synthetic_generations(
        0, records, records, endpoints, time.time(), records / 10_000, random.Random(3)
    )
    results: dict[str, list[tuple[float, float]]] = {"log + aggregates": [], "log only (baseline)": []}
    for i in range(rounds):
        for name, store_class in (("log + aggregates", SQLiteStore), ("log only (baseline)", LogOnlyStore)):
            results[name].append(
                await flood(store_class(tmp / f"flood-{i}-{store_class.__name__}.db"), generations)
            )
    print(
        f"recording: {records:,} records across {len(endpoints)} endpoints through Recorder (best of {rounds})"
    )
    for name, runs in results.items():
        rate = max(r for r, _ in runs)
        cpu = min(c for _, c in runs)
        print(f"  {name:22s}  {rate:,.0f} records/s, writer thread CPU {cpu:.1f} µs/record")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--endpoints", type=int, default=30)
    parser.add_argument("--attempts", type=int, default=1_000_000)
    parser.add_argument("--records", type=int, default=100_000, help="records for the recording test")
    args = parser.parse_args()
    endpoints = [f"{m}@{p}" for m in MODELS for p in PROVIDERS][: args.endpoints]
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(measure_stats(endpoints, args.attempts, Path(tmp) / "stats.db"))
        asyncio.run(measure_recording(endpoints, args.records, Path(tmp)))


if __name__ == "__main__":
    main()
