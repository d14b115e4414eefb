"""Keeping the snapshot fresh: the first read at start, the periodic loop, the recorder listener."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys

import pytest

from clock_support import Clock
from records_support import NOW, success
from tokenmux.stats import Stats
from tokenmux.store import Recorder, Store, StoreError

A = "openai/gpt-4.1-nano@openai"


async def until(condition: object, timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.005)


async def test_start_reads_at_once_and_aclose_stops(store: Store, clock: Clock) -> None:
    await store.write_batch([success(A, NOW - 5, ttft_ms=100)])
    stats = Stats(store, clock=clock, interval_s=60.0)
    assert stats.refreshed_at is None
    assert stats.endpoint_figures(A)["requests_last_30m"] == 0
    await stats.start()
    assert stats.refreshed_at == NOW
    assert stats.endpoint_figures(A)["requests_last_30m"] == 1
    await stats.start()  # already running: nothing more
    await stats.aclose()
    await stats.aclose()


async def test_a_written_batch_brings_the_next_refresh_forward(
    store: Store, recorder: Recorder, clock: Clock
) -> None:
    # The periodic refresh is a minute away: only the listener can make the new figures appear.
    stats = Stats(store, clock=clock, interval_s=60.0, min_interval_s=0.01)
    recorder.add_listener(stats.batch_written)
    await stats.start()
    try:
        recorder.record(success(A, NOW - 5, ttft_ms=100))
        await recorder.flush()
        await until(lambda: stats.endpoint_figures(A)["requests_last_30m"] == 1)
        recorder.record(success(A, NOW - 4, ttft_ms=100))
        await recorder.flush()
        await until(lambda: stats.endpoint_figures(A)["requests_last_30m"] == 2)
    finally:
        await stats.aclose()


async def test_the_loop_refreshes_every_interval(store: Store, clock: Clock) -> None:
    stats = Stats(store, clock=clock)
    loop = asyncio.create_task(stats.run_refresher(interval_s=0.02))
    try:
        await until(lambda: stats.refreshed_at == NOW)
        # Another replica writes (no listener here); the clock moves on.
        await store.write_batch([success(A, NOW + 30, ttft_ms=100)])
        clock.now = NOW + 60
        await until(lambda: stats.refreshed_at == NOW + 60)
        assert stats.endpoint_figures(A)["requests_last_30m"] == 1
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)


async def test_a_failing_refresh_keeps_the_last_figures_and_logs_once(
    store: Store, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    await store.write_batch([success(A, NOW - 5, ttft_ms=100)])
    stats = Stats(store, clock=clock, interval_s=0.01, min_interval_s=0.0)
    await stats.start()
    try:
        await store.close()  # the database goes away under the running refresher
        with caplog.at_level(logging.ERROR, logger="tokenmux.stats.live"):
            await until(lambda: stats.failed_refreshes >= 3)
        assert stats.endpoint_figures(A)["requests_last_30m"] == 1
        assert stats.refreshed_at == NOW
        assert len([r for r in caplog.records if "could not refresh" in r.message]) == 1
        with pytest.raises(StoreError):
            await stats.refresh()
    finally:
        await stats.aclose()


def test_stats_refuses_no_days(store: Store) -> None:
    with pytest.raises(ValueError):
        Stats(store, days=0)


@pytest.mark.parametrize(
    "imports",
    [
        "tokenmux.stats, tokenmux.store",
        "tokenmux.store, tokenmux.stats",
        "tokenmux.store.base",
        "tokenmux.stats.live",
    ],
)
def test_either_package_may_be_imported_first(imports: str) -> None:
    # Stats reads the store's bucket rows (store.buckets) and the store imports nothing of stats: a cycle
    # would show only in a fresh interpreter.
    done = subprocess.run(
        [sys.executable, "-c", f"import {imports}"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
