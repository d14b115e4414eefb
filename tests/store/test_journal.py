"""The write-ahead journal: records are in a file before their future is done, segments go once their
records are written, and what a killed process left is taken over at the next start, cut streams billed."""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest

from tokenmux.store import GenerationRecord, Recorder, SQLiteStore
from tokenmux.store import journal as journal_module
from tokenmux.store.crash import CRASH_REASON, adopt_orphans
from tokenmux.store.journal import OPENING, Journal, JournalLine, StreamDraft
from tokenmux.store.spool import Spool

GenerationFactory = Callable[..., GenerationRecord]


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("journal-*.jsonl"))


def journaled_ids(directory: Path) -> list[str]:
    decoder = msgspec.json.Decoder(JournalLine)
    ids = []
    for path in segments(directory):
        for line in path.read_bytes().splitlines():
            entry = decoder.decode(line)
            ids.append(f"r:{entry.r.id}" if entry.r is not None else f"s:{entry.s.id}")  # type: ignore[union-attr]
    return ids


def draft(gid: str, **fields: object) -> StreamDraft:
    """A stream in flight as the journal keeps it."""
    values: dict[str, object] = {
        "id": gid,
        "key_id": "key_0123456789abcdef",
        "requested_model": "openai/gpt-4.1-nano",
        "model": "openai/gpt-4.1-nano",
        "provider": "openai",
        "endpoint": "openai/gpt-4.1-nano@openai",
        "attempt": 1,
        "created_at": 1_732_634_400.25,
        "started_at": 1_732_634_400.5,
        "prompt_tokens": 12,
        "cost_usd": 0.000_001_2,
        "latency_ms": 800.0,
    }
    return StreamDraft(**{**values, **fields})  # type: ignore[arg-type]


def stored(db_path: Path) -> dict[str, tuple[str, str | None, int, int, float]]:
    conn = sqlite3.connect(db_path)
    try:
        rows = conn.execute(
            "SELECT id, status, error_message, prompt_tokens, completion_tokens, cost_usd FROM generations"
        )
        return {row[0]: tuple(row[1:]) for row in rows}  # type: ignore[misc]
    finally:
        conn.close()


async def eventually(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    """Wait for background work; the limit only stops a broken journal from hanging the test run."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_a_record_is_in_the_journal_when_its_future_is_done_and_gone_once_written(
    store: SQLiteStore, db_path: Path, tmp_path: Path, make_generation: GenerationFactory
) -> None:
    spool_dir = tmp_path / "spool"
    journal = Journal(spool_dir, segment_age_s=0.0)  # a new segment for every batch: each can go
    recorder = Recorder(store, spool=Spool(spool_dir), journal=journal)
    first, second = make_generation("gen-a"), make_generation("gen-b")
    written_a, written_b = recorder.record(first), recorder.record(second)
    assert written_a is not None and written_b is not None
    assert segments(spool_dir) == []  # one write for the pass of the loop, not one per record
    await asyncio.gather(written_a, written_b)
    assert journaled_ids(spool_dir) == ["r:gen-a", "r:gen-b"]
    assert len(segments(spool_dir)) == 1
    recorder.start()
    await recorder.flush()
    assert set(stored(db_path)) == {"gen-a", "gen-b"}
    await eventually(lambda: segments(spool_dir) == [])
    await recorder.close()
    assert list(spool_dir.iterdir()) == []


async def test_a_segment_its_writer_holds_is_not_taken_over(
    tmp_path: Path, make_generation: GenerationFactory
) -> None:
    spool_dir = tmp_path / "spool"
    journal = Journal(spool_dir)
    live = journal.append(make_generation("gen-live"))
    await live
    spool = Spool(spool_dir)
    adopted = await asyncio.to_thread(adopt_orphans, spool_dir, spool)
    assert adopted.segments == 0 and spool.pending() == []
    assert journaled_ids(spool_dir) == ["r:gen-live"]
    await journal.close()  # the record was never written: its segment stays, unlocked, for the next start
    adopted = await asyncio.to_thread(adopt_orphans, spool_dir, spool)
    assert adopted.segments == 1 and [g.id for g in adopted.records] == ["gen-live"]
    assert segments(spool_dir) == [] and len(spool.pending()) == 1


# A process that journals what it is given on stdin, then dies by SIGKILL the moment its appends are done:
# records (finished generations) are appended and awaited, drafts are streams that began and never ended.
_KILLED_WRITER = """
import asyncio, os, signal, sys
import msgspec
from tokenmux.store.journal import Journal, StreamDraft
from tokenmux.store.records import GenerationRecord

finished, drafts = msgspec.json.decode(
    sys.stdin.buffer.read(), type=tuple[list[GenerationRecord], list[StreamDraft]]
)

async def main():
    journal = Journal(sys.argv[1], segment_bytes=2000)  # several segments
    for draft in drafts:
        journal.started(draft)
    for generation in finished:  # one pass of the loop each: one write each
        await journal.append(generation)
    os.kill(os.getpid(), signal.SIGKILL)

asyncio.run(main())
"""


async def test_records_and_cut_streams_of_a_killed_process_are_written_at_the_next_start(
    store: SQLiteStore, db_path: Path, tmp_path: Path, make_generation: GenerationFactory
) -> None:
    spool_dir = tmp_path / "spool"
    finished = [make_generation(f"gen-{i:03d}") for i in range(20)]
    # Two streams began: one ended (its record is among the finished), one was cut by the crash.
    ended = draft("gen-005")
    cut = draft("gen-cut", prompt_tokens=321, completion_tokens=40, cost_usd=0.000_05)
    payload = msgspec.json.encode((finished, [ended, cut]))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _KILLED_WRITER, str(spool_dir), stdin=subprocess.PIPE
    )
    await proc.communicate(payload)
    assert proc.returncode == -signal.SIGKILL
    assert len(segments(spool_dir)) > 1
    # A partial line, as a write cut short by a crash leaves: skipped, the rest is read.
    with open(segments(spool_dir)[-1], "ab") as f:
        f.write(b'{"r":{"id":"gen-torn"')

    recorder = Recorder(store, spool=Spool(spool_dir), journal=Journal(spool_dir))
    recorder.start()
    await eventually(lambda: recorder.written == 21)
    rows = stored(db_path)
    assert set(rows) == {g.id for g in finished} | {"gen-cut"}
    assert rows["gen-005"][:2] == ("success", None)  # its own record, not a crash record
    assert rows["gen-cut"] == ("error", CRASH_REASON, 321, 40, 0.000_05)  # billed what the draft says
    await recorder.close()
    assert segments(spool_dir) == [] and list(spool_dir.glob("records-*")) == []


async def test_a_crash_record_never_replaces_a_record_already_written(
    store: SQLiteStore, db_path: Path, tmp_path: Path, make_generation: GenerationFactory
) -> None:
    """A stream's start can outlive its record's segment; the id is stored once, as it ended."""
    spool_dir = tmp_path / "spool"
    await store.write_batch([make_generation("gen-done", status="success")])
    journal = Journal(spool_dir)
    journal.started(draft("gen-done"))
    await journal.append(make_generation("gen-other"))
    await journal.close()  # neither entry was released: both stay, as after a crash
    recorder = Recorder(store, spool=Spool(spool_dir), journal=Journal(spool_dir))
    recorder.start()
    await eventually(lambda: recorder.replayed == 2 and recorder.pending == 0)
    await recorder.close()
    rows = stored(db_path)
    assert set(rows) == {"gen-done", "gen-other"} and rows["gen-done"][:2] == ("success", None)


def test_the_journal_files_are_private(tmp_path: Path, make_generation: GenerationFactory) -> None:
    async def write() -> None:
        journal = Journal(tmp_path / "spool")
        await journal.append(make_generation("gen-a"))
        assert [oct(p.stat().st_mode & 0o777) for p in segments(tmp_path / "spool")] == ["0o600"]
        assert oct((tmp_path / "spool").stat().st_mode & 0o777) == "0o700"
        await journal.close()

    asyncio.run(write())
    assert os.listdir(tmp_path / "spool")  # never released: kept for the next start


async def test_a_streams_newer_draft_replaces_the_older_and_its_record_releases_both(
    tmp_path: Path, make_generation: GenerationFactory
) -> None:
    spool_dir = tmp_path / "spool"
    journal = Journal(spool_dir, segment_age_s=0.0)  # every write in a segment of its own
    journal.started(draft("gen-s"))
    await journal.append(make_generation("gen-other"))
    journal.started(draft("gen-s", completion_tokens=10))
    ended = make_generation("gen-s")
    await journal.append(ended)
    journal.release([make_generation("gen-other")])
    # The first segment (first draft, gen-other) has nothing left that is needed: it goes.
    await eventually(lambda: len(segments(spool_dir)) == 1)
    assert journaled_ids(spool_dir) == ["s:gen-s", "r:gen-s"]
    journal.release([ended])
    await eventually(lambda: segments(spool_dir) == [])
    await journal.close()


async def test_a_journal_that_cannot_be_written_delays_no_response_and_is_counted(
    store: SQLiteStore, db_path: Path, tmp_path: Path, make_generation: GenerationFactory
) -> None:
    not_a_directory = tmp_path / "spool"
    not_a_directory.write_text("a file where the spool directory should be")
    recorder = Recorder(store, journal=Journal(not_a_directory))
    written = recorder.record(make_generation("gen-a"))
    assert written is not None
    await written  # done, though nothing could be appended
    assert recorder.counters()["journal_failures"] == 1
    recorder.start()
    await recorder.flush()
    assert set(stored(db_path)) == {"gen-a"}  # the database still gets it
    await recorder.close()


async def test_a_recovery_running_while_a_segment_is_created_never_takes_it(
    tmp_path: Path, make_generation: GenerationFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process's start (a replica sharing the directory) recovers dead writers' segments at any
    moment, also between a new segment's creation and its lock."""
    spool_dir = tmp_path / "spool"
    real_flock = fcntl.flock
    recoveries: list[int] = []
    recovering = False

    def recovery_first(fd: int, operation: int) -> None:
        nonlocal recovering
        if not recoveries and not recovering:  # the journal's lock of its new segment: recovery runs first
            recovering = True
            recoveries.append(adopt_orphans(spool_dir, Spool(tmp_path / "other-spool")).segments)
        real_flock(fd, operation)

    monkeypatch.setattr(journal_module.fcntl, "flock", recovery_first)
    journal = Journal(spool_dir)
    await journal.append(make_generation("gen-1"))
    monkeypatch.setattr(journal_module.fcntl, "flock", real_flock)
    assert recoveries == [0]
    assert journaled_ids(spool_dir) == ["r:gen-1"]  # in a file recovery can find after a crash
    await journal.close()


def test_a_segment_a_dead_writer_was_creating_is_removed_once_it_is_old(tmp_path: Path) -> None:
    """A writer holds its new segment's name for microseconds before renaming it: one left for a while is
    a dead writer's (and empty), one just made may be a live writer's that has not locked it yet."""
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    dead = spool_dir / f"journal-00000000000000000001-1-000000-abcdef.jsonl{OPENING}"
    dead.touch()
    an_hour_ago = time.time() - 3600
    os.utime(dead, (an_hour_ago, an_hour_ago))
    fresh = spool_dir / f"journal-00000000000000000002-2-000000-abcdef.jsonl{OPENING}"
    fresh.touch()
    adopted = adopt_orphans(spool_dir, Spool(spool_dir))
    assert adopted.segments == 0
    assert not dead.exists() and fresh.exists()
