"""How fast the recorder writes request records into a SQLite file, and what recording costs a request.

    .venv/bin/python bench/bench_recorder.py [--records 200000] [--batch 1000]

Each record is one generation with one attempt, shaped like a real one. Prints:
- the cost of one ``record()`` call (what the response path pays);
- records per second written, from the first ``record()`` until ``close()`` has written them all;
- how late the event loop wakes while records arrive at a steady rate, writing to SQLite versus a
  baseline that discards them: the difference is what writing costs responses;
- the memory one queued record takes (what ``max_pending`` costs during a database outage);
- the CPU one record costs, all threads counted, with and without the write-ahead journal (records
  awaited as the response path awaits them, 50 per pass of the loop, the database discarding them);
- the CPU and thread switches writing to SQLite adds per record while the loop's thread is busy between
  records, as a loaded gateway's is (the writer thread has to win the GIL from it).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sqlite3
import tempfile
import time
import tracemalloc
from collections.abc import Sequence
from pathlib import Path

from tokenmux.store import AttemptRecord, GenerationRecord, Recorder, SQLiteStore, new_generation_id
from tokenmux.store.journal import Journal
from tokenmux.store.spool import Spool


def make_generation(i: int, now: float, rate: float = 20_000) -> GenerationRecord:
    # Ids as the gateway makes them, as if ``rate`` requests arrived per second.
    gid = new_generation_id(now + i / rate)
    attempt = AttemptRecord(
        generation_id=gid,
        attempt=1,
        model="openai/gpt-4.1-nano",
        provider="openai",
        endpoint="openai/gpt-4.1-nano@openai",
        outcome="success",
        prompt_tokens=1200,
        completion_tokens=350,
        cached_tokens=256,
        cost_usd=0.0002,
        ttft_ms=612.5,
        latency_ms=2100.25,
        generation_ms=1487.75,
        throughput_tps=235.3,
        streamed=True,
        finish_reason="stop",
        started_at=now,
    )
    return GenerationRecord(
        id=gid,
        key_id="key_0123456789abcdef",
        requested_model="openai/gpt-4.1-nano",
        model="openai/gpt-4.1-nano",
        provider="openai",
        created_at=now,
        streamed=True,
        finish_reason="stop",
        prompt_tokens=1200,
        completion_tokens=350,
        cached_tokens=256,
        cost_usd=0.0002,
        ttft_ms=612.5,
        latency_ms=2100.25,
        generation_ms=1487.75,
        throughput_tps=235.3,
        attempts=[attempt],
    )


async def watch_loop_lag(stop: asyncio.Event, lags: list[float], tick_s: float = 0.001) -> None:
    while not stop.is_set():
        before = time.perf_counter()
        await asyncio.sleep(tick_s)
        lags.append(time.perf_counter() - before - tick_s)


def percentiles_ms(lags: list[float]) -> str:
    lags = sorted(lags)
    p50, p99 = lags[len(lags) // 2], lags[int(len(lags) * 0.99)]
    return f"p50 {p50 * 1e3:.2f} ms, p99 {p99 * 1e3:.2f} ms, max {lags[-1] * 1e3:.2f} ms"


class DiscardingStore(SQLiteStore):
    """The baseline for loop stalls: the same recorder, but nothing reaches the database."""

    async def write_batch(self, generations: Sequence[GenerationRecord]) -> None:
        return None


async def flood(records: int, batch: int, db_path: Path) -> None:
    """Record as fast as possible and time until everything is in the file."""
    now = time.time()
    generations = [make_generation(i, now) for i in range(records)]
    # The bench holds every record at once (a server holds only the queued ones); keep the collector
    # from walking them all mid-run and charging that to the writer.
    gc.collect()
    gc.freeze()

    store = SQLiteStore(db_path)
    await store.open()
    recorder = Recorder(store, max_batch=batch, close_timeout_s=600)
    recorder.start()

    # Record in bursts the way a busy server would, yielding to the loop between bursts.
    record_s = 0.0
    started = time.perf_counter()
    for offset in range(0, records, 500):
        t0 = time.perf_counter()
        for generation in generations[offset : offset + 500]:
            recorder.record(generation)
        record_s += time.perf_counter() - t0
        await asyncio.sleep(0)
    await recorder.close()
    elapsed = time.perf_counter() - started
    await store.close()
    gc.unfreeze()

    conn = sqlite3.connect(db_path)
    stored = conn.execute("SELECT count(*) FROM generations").fetchone()[0]
    stored_attempts = conn.execute("SELECT count(*) FROM attempts").fetchone()[0]
    conn.close()
    assert stored == records and stored_attempts == records, (stored, stored_attempts)

    print(f"flood: {records:,} records (one attempt each), batches of up to {batch}")
    print(f"  record() per call:      {record_s / records * 1e6:.2f} µs")
    print(f"  written:                {records / elapsed:,.0f} records/s ({elapsed:.2f} s, all stored)")


async def paced(rate: int, seconds: float, db_path: Path, *, write: bool) -> str:
    """Record at a steady rate and measure how late the event loop wakes (what a response would feel)."""
    now = time.time()
    generations = [make_generation(i, now) for i in range(int(rate * seconds))]
    store = SQLiteStore(db_path) if write else DiscardingStore(db_path)
    await store.open()
    recorder = Recorder(store)
    recorder.start()
    stop = asyncio.Event()
    lags: list[float] = []
    watcher = asyncio.create_task(watch_loop_lag(stop, lags))
    per_ms = max(1, rate // 1000)
    for offset in range(0, len(generations), per_ms):
        for generation in generations[offset : offset + per_ms]:
            recorder.record(generation)
        await asyncio.sleep(0.001)
    await recorder.close()
    stop.set()
    await watcher
    await store.close()
    return percentiles_ms(lags)


async def cpu_per_record(records: int, tmp: Path, *, journal: bool) -> float:
    """CPU seconds per record from ``record()`` to written (here: discarded), with its journal entry
    appended, awaited, synced and released when ``journal``."""
    now = time.time()
    generations = [make_generation(i, now) for i in range(records)]
    store = DiscardingStore(tmp / "cpu.db")
    await store.open()
    spool_dir = tmp / "cpu-spool"
    recorder = (
        Recorder(store, spool=Spool(spool_dir), journal=Journal(spool_dir)) if journal else Recorder(store)
    )
    recorder.start()
    started = time.process_time()
    for offset in range(0, records, 50):
        waits = [recorder.record(generation) for generation in generations[offset : offset + 50]]
        for wait in waits:
            if wait is not None:
                await wait
        await asyncio.sleep(0)
    await recorder.close()
    cpu_s = time.process_time() - started
    await store.close()
    return cpu_s / records


def busy(work: int) -> int:
    """Python work standing in for serving a request: the loop's thread wants the GIL all the time."""
    total = 0
    for i in range(work):
        total += i * i
    return total


def context_switches() -> int:
    """Voluntary and involuntary switches of every thread of this process so far (threads that ended are
    not counted: take both readings while the store is open)."""
    total = 0
    for task in Path("/proc/self/task").iterdir():
        try:
            status = (task / "status").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        for line in status.splitlines():
            if "ctxt_switches:" in line:
                total += int(line.split()[1])
    return total


async def busy_loop_cost(records: int, tmp: Path, *, write: bool, work: int = 300) -> tuple[float, float]:
    """CPU seconds and context switches per record while the loop's thread is busy between records, the
    way a loaded gateway's is: the writer thread has to win the GIL from it for every hand-off."""
    now = time.time()
    generations = [make_generation(i, now) for i in range(records)]
    store = SQLiteStore(tmp / f"busy-{write}.db") if write else DiscardingStore(tmp / "busy-base.db")
    await store.open()
    recorder = Recorder(store)
    recorder.start()
    switches = context_switches()
    started = time.process_time()
    for offset in range(0, records, 8):
        for generation in generations[offset : offset + 8]:
            busy(work)
            recorder.record(generation)
        await asyncio.sleep(0)
    await recorder.flush()
    cpu_s = time.process_time() - started
    switches = context_switches() - switches
    await recorder.close()
    await store.close()
    return cpu_s / records, switches / records


async def run(records: int, batch: int, rate: int, tmp: Path) -> None:
    writing = baseline = (0.0, 0.0)
    for _ in range(2):  # interleaved, so drift of the machine falls on both
        baseline = min(baseline, await busy_loop_cost(30_000, tmp, write=False), key=lambda r: r[0] or 1e9)
        writing = min(writing, await busy_loop_cost(30_000, tmp, write=True), key=lambda r: r[0] or 1e9)
    print("writing to SQLite while the loop is busy (all threads, less the same run discarding records):")
    print(f"  CPU per record:         {(writing[0] - baseline[0]) * 1e6:.1f} µs")
    print(f"  context switches:       {writing[1] - baseline[1]:.3f} per record")
    plain = await cpu_per_record(50_000, tmp, journal=False)
    journaled = await cpu_per_record(50_000, tmp, journal=True)
    print("CPU per record, all threads (database discarding writes):")
    print(f"  without the journal:    {plain * 1e6:.1f} µs")
    print(f"  with the journal:       {journaled * 1e6:.1f} µs (+{(journaled - plain) * 1e6:.1f} µs)")
    await flood(records, batch, tmp / "flood.db")
    print(f"event loop lateness while recording {rate:,} records/s (1 ms timer):")
    print(f"  writing to SQLite:      {await paced(rate, 3.0, tmp / 'paced.db', write=True)}")
    print(f"  baseline, no writes:    {await paced(rate, 3.0, tmp / 'base.db', write=False)}")


def record_size_bytes() -> float:
    now = time.time()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = [make_generation(i, now) for i in range(10_000)]
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before) / len(kept)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=2000, help="records/s for the loop lateness test")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(args.records, args.batch, args.rate, Path(tmp)))
    print(f"memory per queued record: ~{record_size_bytes():,.0f} bytes (generation + one attempt)")


if __name__ == "__main__":
    main()
