from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from tokenmux.store import GenerationRecord, Recorder, SQLiteStore, StoreUnavailable
from tokenmux.store.spool import Spool

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
        "spooled": 0,
        "replayed": 0,
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


# -- the disk spool ------------------------------------------------------------------------------------


class WriteLog(UnavailableFirst):
    """``UnavailableFirst`` that also counts how often each generation id reached a successful write."""

    def __init__(self, path: Path, failures: int = 0) -> None:
        super().__init__(path, failures, StoreUnavailable("connection refused"), answers_ping=False)
        self.writes: Counter[str] = Counter()

    async def write_batch(self, generations: Sequence[GenerationRecord]) -> None:
        await super().write_batch(generations)
        self.writes.update(g.id for g in generations)

    def come_back(self) -> None:
        self.failures = 0


def spooled_ids(spool: Spool) -> list[str]:
    return [g.id for path in spool.pending() for g in spool.read(path)]


async def eventually(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    """Wait for background work; the limit only stops a broken recorder from hanging the test run."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_records_the_database_did_not_take_before_shutdown_are_written_at_the_next_start(
    db_path: Path, tmp_path: Path, make_generation: GenerationFactory, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(tmp_path / "spool")
    generations = records(make_generation, 120)
    async with WriteLog(db_path, failures=10**9) as down:
        recorder = Recorder(
            down, max_batch=50, close_timeout_s=0.2, min_backoff_s=0.01, max_backoff_s=0.02, spool=spool
        )
        recorder.start()
        for generation in generations:
            recorder.record(generation)
        await eventually(lambda: down.calls >= 2)  # a batch is in flight or retrying when close() comes
        with caplog.at_level(logging.WARNING, logger="tokenmux.store.recorder"):
            await recorder.close()
    assert len(spool.pending()) == 1
    assert sorted(spooled_ids(spool)) == [g.id for g in generations]
    assert spool.read(spool.pending()[0]) == generations  # every field, attempts included
    assert recorder.unwritten() == [] and recorder.pending == 0
    assert recorder.counters() | {"failed_writes": 0} == {  # how many retries fit in 0.2 s varies
        "recorded": 120,
        "written": 0,
        "failed_writes": 0,
        "pending": 0,
        "dropped": 0,
        "rejected": 0,
        "spooled": 120,
        "replayed": 0,
    }
    assert "120 records" in caplog.text and str(spool.pending()[0]) in caplog.text

    async with WriteLog(db_path) as up:
        again = Recorder(up, max_batch=50, spool=spool)
        again.start()
        await eventually(lambda: again.written == 120 and not spool.pending())
        await again.close()
    assert stored_ids(db_path) == [g.id for g in generations]
    assert up.writes == Counter({g.id: 1 for g in generations})  # each exactly once
    assert again.counters()["replayed"] == 120 and again.counters()["spooled"] == 0
    assert again.counters()["recorded"] == 0
    assert spool.pending() == []


class Hanging(SQLiteStore):
    """A database that accepts a write and never answers."""

    async def write_batch(self, generations: Sequence[GenerationRecord]) -> None:
        await asyncio.Event().wait()


async def test_a_batch_still_in_flight_when_close_gives_up_is_spooled_too(
    db_path: Path, tmp_path: Path, make_generation: GenerationFactory
) -> None:
    spool = Spool(tmp_path / "spool")
    generations = records(make_generation, 30)
    async with Hanging(db_path) as store:
        recorder = Recorder(store, max_batch=10, close_timeout_s=0.2, spool=spool)
        recorder.start()
        for generation in generations:
            recorder.record(generation)
        await eventually(lambda: len(recorder._in_flight) == 10)
        await recorder.close()
    assert sorted(spooled_ids(spool)) == [g.id for g in generations]
    assert recorder.spooled == 30 and recorder.pending == 0


async def test_replayed_records_wait_in_the_queue_while_the_database_is_still_down(
    db_path: Path, tmp_path: Path, make_generation: GenerationFactory
) -> None:
    spool = Spool(tmp_path / "spool")
    first = spool.write(records(make_generation, 30, "gen-a"))
    spool.write(records(make_generation, 30, "gen-b"))
    async with WriteLog(db_path, failures=10**9) as down:
        recorder = Recorder(down, close_timeout_s=0.2, min_backoff_s=0.01, max_backoff_s=0.02, spool=spool)
        recorder.start()
        await eventually(lambda: recorder.replayed == 30)
        assert recorder.pending == 30
        assert await recorder.get_generation("gen-a-000007") is not None  # readable while queued
        assert first in spool.pending()  # not written yet: the file is its only durable copy
        await recorder.close()
    # The queued records went back to disk and the file they came from is gone: no record twice on disk.
    assert first not in spool.pending()
    assert sorted(spooled_ids(spool)) == sorted(
        g.id for p in ("gen-a", "gen-b") for g in records(make_generation, 30, p)
    )
    assert recorder.written == 0 and recorder.spooled == 30


async def test_over_max_pending_the_oldest_records_go_to_the_spool_and_come_back(
    db_path: Path, tmp_path: Path, make_generation: GenerationFactory
) -> None:
    spool = Spool(tmp_path / "spool")
    generations = records(make_generation, 50)
    async with WriteLog(db_path, failures=10**9) as store:
        recorder = Recorder(
            store, max_batch=8, max_pending=20, min_backoff_s=0.005, max_backoff_s=0.01, spool=spool
        )
        recorder.start()
        for start in range(0, 50, 10):  # bursts, with the event loop running between them as in a server
            for generation in generations[start : start + 10]:
                recorder.record(generation)
            await eventually(lambda: recorder.pending <= 20)
        assert recorder.dropped == 0
        assert recorder.spooled == 30
        assert sorted(spooled_ids(spool)) == [g.id for g in generations[:30]]  # the oldest
        assert recorder.pending == 20 and recorder.written == 0

        store.come_back()
        await eventually(lambda: recorder.written == 50 and not spool.pending())
        await recorder.close()
    assert stored_ids(db_path) == [g.id for g in generations]
    assert store.writes == Counter({g.id: 1 for g in generations})
    counters = recorder.counters()
    assert (counters["recorded"], counters["spooled"], counters["replayed"]) == (50, 30, 30)
    assert (counters["dropped"], counters["pending"]) == (0, 0)


async def test_overflow_waiting_for_the_disk_is_bounded_too(
    store: SQLiteStore, tmp_path: Path, make_generation: GenerationFactory
) -> None:
    spool = Spool(tmp_path / "spool")
    recorder = Recorder(store, max_pending=20, spool=spool)
    generations = records(make_generation, 50)
    for generation in generations:  # one burst: the spooler cannot run before it ends
        recorder.record(generation)
    # 20 queued, 20 more on their way to disk; beyond that memory would grow unbounded, so records drop.
    assert recorder.pending == 40 and recorder.dropped == 10
    await eventually(lambda: recorder.spooled == 20)
    assert recorder.pending == 20
    assert sorted(spooled_ids(spool)) == [g.id for g in generations[:20]]
    await recorder.close()
    assert recorder.written == 20
    c = recorder.counters()
    assert c["recorded"] == c["written"] + c["dropped"] + c["spooled"] + c["rejected"] + c["pending"]


async def test_when_the_spool_cannot_be_written_overflow_is_dropped_and_counted(
    store: SQLiteStore, tmp_path: Path, make_generation: GenerationFactory, caplog: pytest.LogCaptureFixture
) -> None:
    in_the_way = tmp_path / "spool"
    in_the_way.write_text("a file where the spool directory should be")
    recorder = Recorder(store, max_pending=10, spool=Spool(in_the_way))
    generations = records(make_generation, 25)
    for generation in generations:  # not started: everything queues, the overflow heads for the spool
        recorder.record(generation)
    await eventually(lambda: recorder.dropped == 15)
    assert recorder.spooled == 0 and recorder.pending == 10
    assert "could not spool" in caplog.text
    await recorder.close()
    assert recorder.written == 10


async def test_a_damaged_spool_file_does_not_stop_the_others_being_replayed(
    store: SQLiteStore, db_path: Path, tmp_path: Path, make_generation: GenerationFactory
) -> None:
    spool = Spool(tmp_path / "spool")
    good_before = records(make_generation, 5, "gen-a")
    spool.write(good_before)
    damaged = spool.write(records(make_generation, 5, "gen-b"))
    damaged.write_bytes(damaged.read_bytes()[:-30])
    good_after = records(make_generation, 5, "gen-c")
    spool.write(good_after)

    recorder = Recorder(store, spool=spool)
    recorder.start()
    await eventually(lambda: not spool.pending())
    await recorder.close()
    assert sorted(stored_ids(db_path)) == sorted(g.id for g in good_before + good_after)
    assert damaged.with_name(damaged.name + ".bad").exists()
