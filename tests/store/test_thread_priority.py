"""The database's threads run below the event loop's priority (``thread_priority.py``), so the work no
request waits on (the request log's batches, page queries) gives way to the loop when both want a core."""

from __future__ import annotations

import os
import sqlite3
import sys
import threading

import pytest

from tokenmux.store.sqlite_threads import ReaderPool, WriterThread
from tokenmux.thread_priority import NICE_INCREMENT, lower_this_thread

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="per-thread priorities are Linux's"
)


def nice_here(_conn: object = None) -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def connect() -> sqlite3.Connection:
    return sqlite3.connect(":memory:", check_same_thread=False)


def test_a_lowered_thread_runs_at_a_higher_nice_value_and_the_others_do_not() -> None:
    before = nice_here()
    seen: list[tuple[bool, int]] = []

    def run() -> None:
        seen.append((lower_this_thread(), nice_here()))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert seen == [(True, min(19, before + NICE_INCREMENT))]
    assert nice_here() == before  # only the thread that asked


async def test_the_sqlite_writer_and_readers_run_lowered() -> None:
    lowered = min(19, nice_here() + NICE_INCREMENT)
    writer = WriterThread(connect, name="test-writer")
    await writer.start()
    readers = ReaderPool(connect, size=2, name="test-reader")
    try:
        assert await writer.run(nice_here) == lowered
        assert await readers.run(nice_here) == lowered
    finally:
        await writer.stop()
        await readers.close()
    assert nice_here() == lowered - NICE_INCREMENT or lowered == 19  # the loop's thread is not lowered
