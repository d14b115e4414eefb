"""The request log's writer: ``record()`` on the response path, batched writes in the background.

``record()`` appends to a queue and returns; it never awaits, never raises and costs about a
microsecond, so a response never waits on the database. One background task takes what has accumulated
(up to ``max_batch``, at most every ``flush_interval_s`` when traffic is light) and writes it with
``Store.write_batch``.

When a write fails, the batch goes back to the head of the queue:
- the database is down (``StoreUnavailable``, or ``ping()`` fails): wait (backing off up to
  ``max_backoff_s``) and retry the same records; nothing is lost while memory lasts (``max_pending``,
  beyond which the oldest records are dropped and counted);
- the database is up but refuses the batch: one record in it is bad. Halve the batch until the bad record
  is alone, then give up on it after a few tries (``rejected``), so one bad record cannot stall the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence

from tokenmux.store.base import Store, StoreUnavailable
from tokenmux.store.records import GenerationRecord

log = logging.getLogger(__name__)

Listener = Callable[[Sequence[GenerationRecord]], None]

_TRIES_BEFORE_REJECT = 3
_WARN_PERIOD_S = 30.0


class Recorder:
    def __init__(
        self,
        store: Store,
        *,
        max_batch: int = 1000,
        flush_interval_s: float = 0.05,
        max_pending: int = 1_000_000,
        close_timeout_s: float = 10.0,
        min_backoff_s: float = 0.05,
        max_backoff_s: float = 5.0,
    ) -> None:
        if max_batch < 1 or max_pending < 1:
            raise ValueError("max_batch and max_pending must be at least 1")
        self._store = store
        self._max_batch = max_batch
        self._flush_interval_s = flush_interval_s
        self._max_pending = max_pending
        self._close_timeout_s = close_timeout_s
        self._min_backoff_s = min_backoff_s
        self._max_backoff_s = max_backoff_s

        self._pending: deque[GenerationRecord] = deque()
        self._in_flight: Sequence[GenerationRecord] = ()
        # Queued and in-flight records by id, so a generation can be read back before it is written.
        self._unwritten: dict[str, GenerationRecord] = {}
        self._listeners: list[Listener] = []

        self._task: asyncio.Task[None] | None = None
        self._wakeup = asyncio.Event()  # set by record(): there is something to write
        self._hurry = asyncio.Event()  # set by flush()/close(): stop waiting for a fuller batch
        self._progress = asyncio.Event()  # set whenever records leave the queue
        self._closing = False
        self._closed = False
        self._flush_waiters = 0
        self._batch_limit = max_batch  # shrinks while isolating a refused record
        self._backoff_s = min_backoff_s
        self._suspect: tuple[str, int] = ("", 0)  # (generation id, failed tries) of a record alone in a batch
        self._last_warning: dict[str, float] = {}

        # Counters for /metrics. settled = written + dropped + rejected (records that left the queue).
        self.recorded = 0
        self.written = 0
        self.failed_writes = 0
        self.dropped = 0
        self.rejected = 0
        self._settled = 0

    # -- the response path ----------------------------------------------------------------------------

    def record(self, generation: GenerationRecord) -> None:
        """Queue a finished generation for writing. Call from the event loop's thread."""
        try:
            if self._closed:
                self.dropped += 1
                self._warn(
                    "closed", "request record %s arrived after the recorder closed; not stored", generation.id
                )
                return
            pending = self._pending
            if len(pending) >= self._max_pending:
                self._drop_oldest(1)
            pending.append(generation)
            self._unwritten[generation.id] = generation
            self.recorded += 1
            self._wakeup.set()
        except Exception:  # never let bookkeeping break a response
            log.exception("could not queue request record")

    @property
    def pending(self) -> int:
        """Records recorded but not yet written (queued or being written)."""
        return len(self._pending) + len(self._in_flight)

    def unwritten(self) -> list[GenerationRecord]:
        """What is still queued or being written, oldest first: for a spill file when the database
        stays down through shutdown."""
        return [*self._in_flight, *self._pending]

    def counters(self) -> dict[str, int]:
        return {
            "recorded": self.recorded,
            "written": self.written,
            "failed_writes": self.failed_writes,
            "pending": self.pending,
            "dropped": self.dropped,
            "rejected": self.rejected,
        }

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(batch)`` after each batch is written (on the event loop; keep it quick)."""
        self._listeners.append(listener)

    async def get_generation(self, generation_id: str) -> GenerationRecord | None:
        """A generation whether or not it has been written yet."""
        queued = self._unwritten.get(generation_id)
        if queued is not None:
            return queued
        return await self._store.get_generation(generation_id)

    # -- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the background writer on the running event loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="tokenmux-recorder")
            self._task.add_done_callback(self._task_done)

    async def flush(self) -> None:
        """Wait until everything recorded before this call has been written (or dropped)."""
        target = self.recorded
        self.start()
        self._flush_waiters += 1
        try:
            self._hurry.set()
            self._wakeup.set()
            while self._settled < target and not self._task_finished():
                self._progress.clear()
                await self._progress.wait()
        finally:
            self._flush_waiters -= 1

    async def close(self) -> None:
        """Write everything still queued (waiting at most ``close_timeout_s``), then stop."""
        if self._closed:
            return
        self.start()
        assert self._task is not None
        self._closing = True
        self._hurry.set()
        self._wakeup.set()
        try:
            done, _ = await asyncio.wait({self._task}, timeout=self._close_timeout_s)
            if not done:
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
            if self.pending:
                log.warning(
                    "request log: %d records could not be written within %.0f s of shutdown",
                    self.pending,
                    self._close_timeout_s,
                )
        finally:
            self._closed = True
            self._progress.set()

    def _task_finished(self) -> bool:
        return self._closed or (self._task is not None and self._task.done())

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._progress.set()  # a flush() waiting on a writer that died must not wait forever
        if not task.cancelled() and task.exception() is not None:
            log.error("request log writer stopped unexpectedly", exc_info=task.exception())

    # -- the background writer ------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            if not self._pending:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            if len(self._pending) < self._max_batch and not (self._closing or self._flush_waiters):
                # Light traffic: let a batch gather rather than write one row per transaction.
                await self._wait_for_hurry(self._flush_interval_s)
            await self._write_next_batch()

    async def _write_next_batch(self) -> None:
        pending = self._pending
        batch = [pending.popleft() for _ in range(min(self._batch_limit, len(pending)))]
        self._in_flight = batch
        try:
            await self._store.write_batch(batch)
        except asyncio.CancelledError:
            self._requeue(batch)
            raise
        except Exception as exc:
            self._requeue(batch)
            self.failed_writes += 1
            await self._after_failure(batch, exc)
            return
        self._in_flight = ()
        self._backoff_s = self._min_backoff_s
        self._batch_limit = min(self._max_batch, self._batch_limit * 2)
        unwritten = self._unwritten
        for generation in batch:
            unwritten.pop(generation.id, None)
        self.written += len(batch)
        self._settled += len(batch)
        self._progress.set()
        for listener in self._listeners:
            try:
                listener(batch)
            except Exception:
                if self._may_log("listener"):
                    log.exception("request log listener %r failed", listener)

    def _requeue(self, batch: list[GenerationRecord]) -> None:
        self._in_flight = ()
        self._pending.extendleft(reversed(batch))
        overflow = len(self._pending) - self._max_pending
        if overflow > 0:
            self._drop_oldest(overflow)

    async def _after_failure(self, batch: list[GenerationRecord], exc: Exception) -> None:
        if isinstance(exc, StoreUnavailable) or not await self._store_answers():
            self._warn(
                "down",
                "request log: database unavailable, keeping %d records and retrying: %s",
                self.pending,
                exc,
            )
            await self._back_off()
            return
        if len(batch) > 1:
            self._batch_limit = max(1, len(batch) // 2)
            return
        generation_id = batch[0].id
        tries = self._suspect[1] + 1 if self._suspect[0] == generation_id else 1
        self._suspect = (generation_id, tries)
        if tries < _TRIES_BEFORE_REJECT:
            await self._back_off()
            return
        self._pending.popleft()
        self._unwritten.pop(generation_id, None)
        self.rejected += 1
        self._settled += 1
        self._progress.set()
        log.error("request log: the database refuses generation %s, not storing it: %r", generation_id, exc)

    async def _store_answers(self) -> bool:
        try:
            return await asyncio.wait_for(self._store.ping(), 5.0)
        except Exception:
            return False

    async def _back_off(self) -> None:
        delay = self._backoff_s
        self._backoff_s = min(self._max_backoff_s, delay * 2)
        if self._closing:
            await asyncio.sleep(delay)  # close() is already waiting; retry at the normal pace
        else:
            await self._wait_for_hurry(delay)  # a flush() or close() arriving now retries at once

    async def _wait_for_hurry(self, seconds: float) -> None:
        self._hurry.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._hurry.wait(), seconds)

    def _drop_oldest(self, count: int) -> None:
        for _ in range(count):
            dropped = self._pending.popleft()
            self._unwritten.pop(dropped.id, None)
        self.dropped += count
        self._settled += count
        self._progress.set()
        self._warn(
            "full",
            "request log: %d records queued, dropping the oldest (%d dropped so far)",
            self._max_pending,
            self.dropped,
        )

    def _warn(self, kind: str, message: str, *args: object) -> None:
        if self._may_log(kind):
            log.warning(message, *args)

    def _may_log(self, kind: str) -> bool:
        """At most once per period per kind: a database outage or a broken listener must not flood the log."""
        now = time.monotonic()
        if now - self._last_warning.get(kind, -_WARN_PERIOD_S) < _WARN_PERIOD_S:
            return False
        self._last_warning[kind] = now
        return True
