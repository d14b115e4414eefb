"""The threads that own SQLite connections, so the event loop never waits on the database.

SQLite allows one writer at a time, so every write goes through one thread that owns the only write
connection and runs jobs in the order they were submitted (datasette's pattern): no lock contention
between our own writes, and a job is a plain function of a connection. Reads run on a small pool of
read-only connections; in WAL mode they proceed while the writer commits. All of these threads run at a
lower priority than the event loop's (``thread_priority.py``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from tokenmux.errors import StoreError
from tokenmux.thread_priority import lower_this_thread

T = TypeVar("T")
Job = Callable[[sqlite3.Connection], T]


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """One transaction on an autocommit connection. ``IMMEDIATE`` takes the write lock up front, so a
    second process writing the same file waits (busy_timeout) instead of failing at commit."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        # Some errors (disk full, I/O) make SQLite roll back by itself; a second ROLLBACK would raise
        # and hide the real error.
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class WriterThread:
    """One thread, one connection, jobs run one at a time in submission order."""

    def __init__(self, connect: Callable[[], sqlite3.Connection], *, name: str) -> None:
        self._connect = connect
        self._jobs: queue.SimpleQueue[tuple[Job[object], concurrent.futures.Future[object]] | None] = (
            queue.SimpleQueue()
        )
        # Daemon: a process that exits without closing the store must not hang on this thread. Flushing
        # on shutdown is the recorder's job (Recorder.close).
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._stopping = False

    async def start(self) -> None:
        """Start the thread and wait until its connection is open; raise what opening raised."""
        self._thread.start()
        await asyncio.wrap_future(self._ready)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self._stopping

    def submit(self, job: Job[T]) -> concurrent.futures.Future[T]:
        if not self.alive:
            raise StoreError("the store is not open (await store.open() first) or has been closed")
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._jobs.put((job, future))  # type: ignore[arg-type]
        return future

    async def run(self, job: Job[T]) -> T:
        return await asyncio.wrap_future(self.submit(job))

    async def stop(self) -> None:
        """Run the jobs already submitted, close the connection, end the thread."""
        if self._stopping:
            return
        self._stopping = True
        if self._thread.is_alive():
            self._jobs.put(None)
            await asyncio.to_thread(self._thread.join)

    def _main(self) -> None:
        lower_this_thread()  # the event loop's thread first, when both want a core
        try:
            conn = self._connect()
        except BaseException as exc:
            self._stopping = True
            self._ready.set_exception(exc)
            return
        self._ready.set_result(None)
        try:
            while (item := self._jobs.get()) is not None:
                job, future = item
                if not future.set_running_or_notify_cancel():
                    continue  # the caller stopped waiting before the job started
                try:
                    result = job(conn)
                except BaseException as exc:
                    future.set_exception(exc)
                else:
                    future.set_result(result)
        finally:
            conn.close()


class ReaderPool:
    """A few threads, each job borrowing one of up to ``size`` read-only connections."""

    def __init__(self, connect: Callable[[], sqlite3.Connection], *, size: int, name: str) -> None:
        self._connect = connect
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=size, thread_name_prefix=name, initializer=lower_this_thread
        )
        # Never more jobs running than workers, so a connection is always free or can be made.
        self._idle: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    async def run(self, job: Job[T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._call, job)

    def _call(self, job: Job[T]) -> T:
        try:
            conn = self._idle.get_nowait()
        except queue.Empty:
            conn = self._connect()
            with self._lock:
                self._all.append(conn)
        try:
            return job(conn)
        finally:
            self._idle.put(conn)

    async def close(self) -> None:
        await asyncio.to_thread(self._executor.shutdown, wait=True)
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
