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

With a ``Spool`` (``spool.py``), records pushed out of a full queue go to disk instead of being dropped, and
so does whatever ``close()`` could not write in time (``spooled``). Records waiting for the disk are bounded
by ``max_pending`` too; beyond that, or when the disk refuses them, they are dropped after all. ``start()`` replays the
spooled files into the queue in the background (``replayed``), a part at a time as the queue has room, so
replayed records take the same write path (and wait the same way while the database is down). A file is
removed once every record it gave the queue has been written, or spooled again; if one was dropped after
all, the file stays for the next start.

With a ``Journal`` (``journal.py``), every record is also appended to a file before its response ends
(``record()`` returns the future to await), and its entry is released once the record is written or
spooled, so a process that dies loses none of the records it answered for: ``start()`` first takes over
what dead processes left in the journal (``crash.py``), as a spool file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from tokenmux.errors import StoreUnavailable
from tokenmux.store.base import Store
from tokenmux.store.crash import Adopted, adopt_orphans
from tokenmux.store.journal import Journal, StreamDraft
from tokenmux.store.records import GenerationRecord
from tokenmux.store.spool import Spool

log = logging.getLogger(__name__)

Listener = Callable[[Sequence[GenerationRecord]], None]

_TRIES_BEFORE_REJECT = 3
_WARN_PERIOD_S = 30.0


class _ReplayedFile:
    """A spool file being replayed, and which of the records it queued have not left the queue yet."""

    __slots__ = ("all_queued", "lost", "outstanding", "path")

    def __init__(self, path: Path) -> None:
        self.path = path
        self.outstanding: set[str] = set()
        self.all_queued = False
        self.lost = False  # one of its records was dropped: the file is its only copy

    def release(self, generations: Iterable[GenerationRecord], *, lost: bool) -> None:
        outstanding = self.outstanding
        for generation in generations:
            if generation.id in outstanding:
                outstanding.discard(generation.id)
                self.lost = self.lost or lost

    @property
    def removable(self) -> bool:
        return self.all_queued and not self.outstanding and not self.lost


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
        spool: Spool | None = None,
        journal: Journal | None = None,
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
        self._spool = spool
        self._journal = journal

        self._pending: deque[GenerationRecord] = deque()
        self._in_flight: Sequence[GenerationRecord] = ()
        # Queued and in-flight records by id, so a generation can be read back before it is written.
        self._unwritten: dict[str, GenerationRecord] = {}
        self._listeners: list[Listener] = []
        # Pushed out of a full queue, on their way to the spool (the part being written, then the rest).
        self._overflow_writing: Sequence[GenerationRecord] = ()
        self._overflow: list[GenerationRecord] = []
        self._replaying: _ReplayedFile | None = None

        self._task: asyncio.Task[None] | None = None
        self._spooler: asyncio.Task[None] | None = None  # writes the overflow to the spool
        self._replayer: asyncio.Task[None] | None = None  # feeds spooled files back into the queue
        self._spool_grew = asyncio.Event()
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

        # Counters for /metrics. Records enter the queue by record() (recorded) or from the spool (replayed)
        # and leave it written, dropped, rejected or spooled: those four add up to settled.
        self.recorded = 0
        self.written = 0
        self.failed_writes = 0
        self.dropped = 0
        self.rejected = 0
        self.spooled = 0
        self.replayed = 0
        self._settled = 0

    # -- the response path ----------------------------------------------------------------------------

    def record(self, generation: GenerationRecord) -> asyncio.Future[None] | None:
        """Queue a finished generation for writing. Call from the event loop's thread. With a journal,
        the future is done once the record is in it: await it before the response ends."""
        try:
            if self._closed:
                self.dropped += 1
                self._warn(
                    "closed", "request record %s arrived after the recorder closed; not stored", generation.id
                )
                return None
            pending = self._pending
            if len(pending) >= self._max_pending:
                self._make_room(1)
            pending.append(generation)
            self._unwritten[generation.id] = generation
            self.recorded += 1
            self._wakeup.set()
            if self._journal is not None:
                return self._journal.append(generation)
        except Exception:  # never let bookkeeping break a response
            log.exception("could not queue request record")
        return None

    def stream_started(self, draft: StreamDraft) -> None:
        """A stream began; ``draft`` is its record should the process die before it ends (journal only)."""
        if self._journal is not None and not self._closed:
            try:
                self._journal.started(draft)
            except Exception:
                log.exception("could not journal a stream's start")

    @property
    def pending(self) -> int:
        """Records in the recorder's hands: queued, being written, or on their way to the spool."""
        return len(self._pending) + len(self._in_flight) + len(self._overflow_writing) + len(self._overflow)

    def unwritten(self) -> list[GenerationRecord]:
        """What is still queued, being written or on its way to the spool, oldest first."""
        return [*self._overflow_writing, *self._overflow, *self._in_flight, *self._pending]

    def counters(self) -> dict[str, int]:
        journal = {"journal_failures": self._journal.failures} if self._journal is not None else {}
        return journal | {
            "recorded": self.recorded,
            "written": self.written,
            "failed_writes": self.failed_writes,
            "pending": self.pending,
            "dropped": self.dropped,
            "rejected": self.rejected,
            "spooled": self.spooled,
            "replayed": self.replayed,
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
        """Start the background writer on the running event loop, and the replay of spooled records."""
        loop = asyncio.get_running_loop()
        if self._task is None:
            self._task = loop.create_task(self._run(), name="tokenmux-recorder")
            self._task.add_done_callback(self._task_done)
        if self._spool is not None and self._replayer is None and not self._closing:
            self._replayer = loop.create_task(
                self._replay_spool(self._spool), name="tokenmux-recorder-replay"
            )
            self._replayer.add_done_callback(self._helper_done)

    async def flush(self) -> None:
        """Wait until everything queued before this call has been written (or dropped, or spooled)."""
        target = self.recorded + self.replayed
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
        """Write everything still queued (waiting at most ``close_timeout_s``), then stop. With a spool,
        what could not be written in that time is spooled for the next start."""
        if self._closed:
            return
        self._closing = True  # before start(): a recorder closed without starting replays nothing
        self.start()
        assert self._task is not None
        self._hurry.set()
        self._wakeup.set()
        try:
            if self._replayer is not None:
                self._replayer.cancel()  # take nothing more from the spool; what it queued is drained below
                await asyncio.gather(self._replayer, return_exceptions=True)
            done, _ = await asyncio.wait({self._task}, timeout=self._close_timeout_s)
            if not done:
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
            if self._spool is not None:
                await self._spool_leftovers(self._spool)
            if self.pending:
                log.warning(
                    "request log: %d records could not be written within %.0f s of shutdown",
                    self.pending,
                    self._close_timeout_s,
                )
        finally:
            self._closed = True
            self._progress.set()
            if self._journal is not None:
                await self._journal.close()

    def _task_finished(self) -> bool:
        return self._closed or (self._task is not None and self._task.done())

    async def _spool_leftovers(self, spool: Spool) -> None:
        if self._spooler is not None:
            await asyncio.gather(self._spooler, return_exceptions=True)  # the overflow reaches disk first
        # The overflow is empty unless record() overflowed the queue again while close() waited.
        leftovers = [*self._overflow, *self._in_flight, *self._pending]
        if leftovers:
            self._overflow = []
            self._in_flight = ()
            self._pending.clear()
            self._overflow_writing = leftovers
            try:
                path = await self._save_to_spool(spool, leftovers)
            finally:
                self._overflow_writing = ()
            if path is not None:
                log.warning(
                    "request log: %d records could not be written within %.0f s of shutdown; kept in %s",
                    len(leftovers),
                    self._close_timeout_s,
                    path,
                )
        replaying = self._replaying
        if replaying is not None and replaying.removable:  # its last records were just written or spooled
            await asyncio.to_thread(spool.remove, replaying.path)
        self._replaying = None

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._progress.set()  # a flush() waiting on a writer that died must not wait forever
        if not task.cancelled() and task.exception() is not None:
            log.error("request log writer stopped unexpectedly", exc_info=task.exception())

    def _helper_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("request log: %s stopped unexpectedly", task.get_name(), exc_info=task.exception())

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
        self.written += len(batch)
        self._settle(batch, lost=False)
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
            self._make_room(overflow)

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
        rejected = self._pending.popleft()
        self.rejected += 1
        # Not lost to the spool: the database would refuse it again at every replay.
        self._settle((rejected,), lost=False)
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

    def _settle(self, generations: Sequence[GenerationRecord], *, lost: bool) -> None:
        """Book records that left the recorder's hands; ``lost`` when nothing else holds a copy."""
        unwritten = self._unwritten
        for generation in generations:
            unwritten.pop(generation.id, None)
        if not lost and self._journal is not None:
            self._journal.release(generations)  # the journal's copy stays for a record that was lost
        self._settled += len(generations)
        self._progress.set()
        replaying = self._replaying
        if replaying is not None and replaying.outstanding:
            replaying.release(generations, lost=lost)

    # -- over max_pending -----------------------------------------------------------------------------

    def _make_room(self, count: int) -> None:
        """Take the ``count`` oldest records out of the queue: to the spool when there is one, else drop."""
        on_the_way = len(self._overflow) + len(self._overflow_writing)
        # Bounded too: when the disk cannot keep up, memory still must not grow without limit.
        if self._spool is not None and on_the_way + count <= self._max_pending and self._spooler_running():
            pending = self._pending
            overflow = self._overflow
            for _ in range(count):
                overflow.append(pending.popleft())
        else:
            self._drop_oldest(count)

    def _spooler_running(self) -> bool:
        if self._spooler is None or self._spooler.done():
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # record() called with no event loop: no spooler can run
                return False
            assert self._spool is not None
            self._spooler = loop.create_task(
                self._spool_overflow(self._spool), name="tokenmux-recorder-spool"
            )
            self._spooler.add_done_callback(self._helper_done)
        return True

    async def _spool_overflow(self, spool: Spool) -> None:
        # Whatever overflowed while a file was being written goes into the next one: one file per burst.
        while self._overflow:
            batch = self._overflow
            self._overflow = []
            self._overflow_writing = batch
            try:
                path = await self._save_to_spool(spool, batch)
            finally:
                self._overflow_writing = ()
            if path is not None:
                self._warn(
                    "spooled",
                    "request log: %d records queued; moved the oldest to %s (%d spooled so far)",
                    self._max_pending,
                    path,
                    self.spooled,
                )

    async def _save_to_spool(self, spool: Spool, batch: Sequence[GenerationRecord]) -> Path | None:
        """Write ``batch`` to a spool file (in a thread: fsync must not stall responses) and book it."""
        try:
            path = await asyncio.to_thread(spool.write, batch)
        except Exception as exc:
            self.dropped += len(batch)
            self._settle(batch, lost=True)
            if self._may_log("spool_failed"):
                log.error(
                    "request log: could not spool %d records to %s; dropped: %r",
                    len(batch),
                    spool.directory,
                    exc,
                )
            return None
        self.spooled += len(batch)
        self._settle(batch, lost=False)
        self._spool_grew.set()
        return path

    def _drop_oldest(self, count: int) -> None:
        pending = self._pending
        unwritten = self._unwritten
        replaying = self._replaying if self._replaying is not None and self._replaying.outstanding else None
        for _ in range(count):
            dropped = pending.popleft()
            unwritten.pop(dropped.id, None)
            if replaying is not None:
                replaying.release((dropped,), lost=True)
        self.dropped += count
        self._settled += count
        self._progress.set()
        self._warn(
            "full",
            "request log: %d records queued, dropping the oldest (%d dropped so far)",
            self._max_pending,
            self.dropped,
        )

    # -- replaying the spool --------------------------------------------------------------------------

    async def _replay_spool(self, spool: Spool) -> None:
        if self._journal is not None:
            # Journal segments of processes that died (or stopped with records unwritten) become a spool
            # file first, so their records come back the same way.
            try:
                adopted = await asyncio.to_thread(adopt_orphans, self._journal.directory, spool)
            except Exception as exc:  # the segments stay for the next start; the spool is replayed anyway
                log.error("request log: could not take over the journal a stopped process left: %r", exc)
            else:
                self._log_adopted(adopted)
        kept: set[Path] = set()  # files to leave for the next start: a record they queued was dropped

        while True:
            self._spool_grew.clear()  # before listing, so a file spooled after the listing is not missed
            files = [path for path in await asyncio.to_thread(spool.pending) if path not in kept]
            if not files:
                await self._spool_grew.wait()
                continue
            for path in files:
                if not await self._replay_file(spool, path):
                    kept.add(path)

    @staticmethod
    def _log_adopted(adopted: Adopted) -> None:
        if adopted.segments:
            log.warning(
                "request log: took over %d records (%d of them streams cut by a crash) from %d journal "
                "segments a stopped process left",
                len(adopted.records),
                adopted.crashed,
                adopted.segments,
            )

    async def _replay_file(self, spool: Spool, path: Path) -> bool:
        """Queue the file's records and remove it once they have all left the queue for good. False
        when it must stay: one of its records was dropped."""
        # A part at a time, and only into the lower half of the queue: the other half stays free for new
        # records, so replaying during an outage does not push records straight back out to the spool.
        part = max(1, self._max_pending // 4)
        fill_to = max(1, self._max_pending // 2)
        await self._wait_until_queue_at_most(fill_to - part)  # not read into memory before there is room
        generations = await asyncio.to_thread(spool.read, path)
        replaying = _ReplayedFile(path)
        self._replaying = replaying
        for start in range(0, len(generations), part):
            chunk = generations[start : start + part]
            await self._wait_until_queue_at_most(fill_to - len(chunk))
            self._queue_replayed(chunk, replaying)
        replaying.all_queued = True
        while replaying.outstanding:
            self._progress.clear()
            await self._progress.wait()
        self._replaying = None
        if replaying.lost:
            log.warning("request log: records replayed from %s were dropped; keeping the file", path)
            return False
        await asyncio.to_thread(spool.remove, path)
        if generations:
            log.info("request log: replayed %d records spooled in %s", len(generations), path)
        return True

    async def _wait_until_queue_at_most(self, size: int) -> None:
        while self.pending > size:
            self._progress.clear()
            await self._progress.wait()

    def _queue_replayed(self, generations: Sequence[GenerationRecord], replaying: _ReplayedFile) -> None:
        pending = self._pending
        unwritten = self._unwritten
        outstanding = replaying.outstanding
        for generation in generations:
            outstanding.add(generation.id)
            pending.append(generation)
            unwritten[generation.id] = generation
        self.replayed += len(generations)
        self._wakeup.set()

    # -- logging --------------------------------------------------------------------------------------

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
