from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from tokenmux.store import GenerationRecord, Recorder, SQLiteStore, StoreUnavailable

GenerationFactory = Callable[..., GenerationRecord]  # the make_generation fixture (conftest.py)


def stored_ids(db_path: Path) -> list[str]:
    conn = sqlite3.connect(db_path)
    try:
        return [row[0] for row in conn.execute("SELECT id FROM generations ORDER BY created_at, id")]
    finally:
        conn.close()


def records(make: GenerationFactory, count: int, prefix: str = "gen") -> list[GenerationRecord]:
    # created_at orders them, so stored_ids() returns them in recording order.
    return [make(f"{prefix}-{i:06d}", created_at=1_000_000.0 + i) for i in range(count)]


@contextmanager
def writer_stalled(store: SQLiteStore) -> Iterator[threading.Event]:
    """Block the store's writer thread (as a long write or a locked file would) until the block ends."""
    writer = store._writer
    assert writer is not None
    release = threading.Event()
    writer.submit(lambda conn: release.wait(30))
    try:
        yield release
    finally:
        release.set()


class UnavailableFirst(SQLiteStore):
    """A real store whose first ``failures`` writes fail as a database outage would."""

    def __init__(self, path: Path, failures: int, error: Exception, *, answers_ping: bool) -> None:
        super().__init__(path)
        self.failures = failures
        self.error = error
        self.answers_ping = answers_ping
        self.calls = 0

    async def write_batch(self, generations: Sequence[GenerationRecord]) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        await super().write_batch(generations)

    async def ping(self) -> bool:
        if not self.answers_ping and self.calls <= self.failures:
            return False
        return await super().ping()


async def test_everything_recorded_is_written_by_close(
    store: SQLiteStore, db_path: Path, make_generation: GenerationFactory
) -> None:
    recorder = Recorder(store, max_batch=1000)
    batch_sizes: list[int] = []
    recorder.add_listener(lambda batch: batch_sizes.append(len(batch)))
    recorder.start()
    generations = records(make_generation, 5000)
    for i, generation in enumerate(generations):
        recorder.record(generation)
        if i % 500 == 0:
            await asyncio.sleep(0)  # let the writer run between bursts, as a server would
    await recorder.close()

    assert stored_ids(db_path) == [g.id for g in generations]
    assert recorder.counters() == {
        "recorded": 5000,
        "written": 5000,
        "failed_writes": 0,
        "pending": 0,
        "dropped": 0,
        "rejected": 0,
    }
    assert sum(batch_sizes) == 5000 and max(batch_sizes) <= 1000
    assert len(batch_sizes) < 50  # written in batches, not a transaction per record


async def test_records_wait_for_a_batch_then_are_written_without_close(
    store: SQLiteStore, make_generation: GenerationFactory
) -> None:
    recorder = Recorder(store, flush_interval_s=0.02)
    recorder.start()
    recorder.record(make_generation("gen-lonely"))
    for _ in range(200):
        if recorder.written:
            break
        await asyncio.sleep(0.01)
    assert recorder.written == 1
    assert await store.get_generation("gen-lonely") is not None
    await recorder.close()


@pytest.mark.parametrize(
    ("error", "answers_ping"),
    [
        (StoreUnavailable("database is locked"), True),  # the store says it is down
        (ConnectionResetError("server closed the connection"), False),  # an untyped error, ping fails
    ],
)
async def test_nothing_is_lost_while_the_database_is_down(
    db_path: Path, make_generation: GenerationFactory, error: Exception, answers_ping: bool
) -> None:
    # Enough failures that mistaking the outage for a bad record (halving 8 -> 1, then giving up on the
    # record after three tries) would lose data.
    async with UnavailableFirst(db_path, 12, error, answers_ping=answers_ping) as store:
        recorder = Recorder(store, max_batch=8, min_backoff_s=0.005, max_backoff_s=0.02)
        recorder.start()
        generations = records(make_generation, 450)
        for generation in generations:
            recorder.record(generation)
        await recorder.flush()
        assert recorder.failed_writes == 12
        assert recorder.written == 450 and recorder.rejected == 0 and recorder.dropped == 0
        await recorder.close()
    assert stored_ids(db_path) == [g.id for g in generations]


async def test_one_record_the_database_refuses_does_not_hold_up_the_rest(
    store: SQLiteStore, db_path: Path, make_generation: GenerationFactory
) -> None:
    recorder = Recorder(store, max_batch=64, min_backoff_s=0.001, max_backoff_s=0.002)
    recorder.start()
    generations = records(make_generation, 200)
    poison = generations[137]
    poison.error_message = object()  # type: ignore[assignment]  # sqlite3 cannot bind it
    for generation in generations:
        recorder.record(generation)
    await asyncio.wait_for(recorder.close(), 10)

    assert recorder.rejected == 1 and recorder.written == 199
    assert stored_ids(db_path) == [g.id for g in generations if g is not poison]


async def test_record_never_blocks_while_the_writer_is_stalled(
    store: SQLiteStore, db_path: Path, make_generation: GenerationFactory
) -> None:
    recorder = Recorder(store, max_batch=1000, flush_interval_s=0.001)
    recorder.start()
    generations = records(make_generation, 10_000)
    with writer_stalled(store) as release:
        started = time.perf_counter()
        for generation in generations:
            recorder.record(generation)
        elapsed = time.perf_counter() - started
        await asyncio.sleep(0.1)  # the recorder's task now waits on a write that cannot proceed
        assert recorder.written == 0 and recorder.pending == 10_000
        release.set()
        await recorder.flush()
    assert elapsed < 2.0  # ~10 ms expected; generous for slow CI machines
    assert recorder.written == 10_000
    await recorder.close()
    assert len(stored_ids(db_path)) == 10_000


async def test_over_max_pending_the_oldest_records_are_dropped(
    store: SQLiteStore, db_path: Path, make_generation: GenerationFactory
) -> None:
    recorder = Recorder(store, max_pending=100)
    generations = records(make_generation, 150)
    for generation in generations:  # not started yet: everything queues
        recorder.record(generation)
    assert recorder.dropped == 50 and recorder.pending == 100
    await recorder.close()  # starts the writer and drains
    assert stored_ids(db_path) == [g.id for g in generations[50:]]
    assert recorder.written == 100


async def test_a_generation_can_be_read_before_it_is_written(
    store: SQLiteStore, make_generation: GenerationFactory
) -> None:
    recorder = Recorder(store)
    recorder.start()
    generation = make_generation("gen-early", attempts=2)
    with writer_stalled(store):
        recorder.record(generation)
        assert await recorder.get_generation("gen-early") is generation
    await recorder.flush()
    stored = await recorder.get_generation("gen-early")
    assert stored == generation and stored is not generation
    assert await recorder.get_generation("gen-never") is None
    await recorder.close()


async def test_a_failing_listener_does_not_stop_writes_or_other_listeners(
    store: SQLiteStore, make_generation: GenerationFactory, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder(store)
    seen: list[str] = []

    def broken(batch: Sequence[GenerationRecord]) -> None:
        raise RuntimeError("stats bug")

    recorder.add_listener(broken)
    recorder.add_listener(lambda batch: seen.extend(g.id for g in batch))
    recorder.start()
    for generation in records(make_generation, 30):
        recorder.record(generation)
    await recorder.close()
    assert recorder.written == 30 and len(seen) == 30
    assert "listener" in caplog.text


async def test_close_gives_up_after_its_timeout_when_the_database_stays_down(
    db_path: Path, make_generation: GenerationFactory
) -> None:
    async with UnavailableFirst(db_path, 10**9, StoreUnavailable("disk full"), answers_ping=True) as store:
        recorder = Recorder(store, close_timeout_s=0.3, min_backoff_s=0.01, max_backoff_s=0.05)
        recorder.start()
        for generation in records(make_generation, 20):
            recorder.record(generation)
        started = time.perf_counter()
        await recorder.close()
        assert time.perf_counter() - started < 5
        assert recorder.written == 0 and recorder.pending == 20 and recorder.failed_writes >= 2
        await recorder.flush()  # returns: nothing more will be written

        recorder.record(make_generation("gen-late"))  # after close: counted, not raised
        assert recorder.dropped == 1 and recorder.recorded == 20


def test_recorder_refuses_nonsense_limits(store: SQLiteStore) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Recorder(store, max_pending=0)
