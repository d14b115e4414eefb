"""The request log's write-ahead journal: every record reaches a file before its response ends.

The recorder keeps records in memory until the database takes them; a process killed meanwhile (``kill -9``,
the OOM killer) would lose them. So each record is also appended to a journal file in the spool directory,
and the attempt loop waits for that append before it sends the last bytes of a response: a client that
received a whole response can count on its record surviving a crash of the process. Appends are batched:
``append`` queues the record and a callback that runs once per event-loop pass encodes everything queued
meanwhile and writes it with one ``write`` (to the page cache: microseconds), then wakes the waiters. A
background task ``fdatasync``s what was written at most every ``sync_interval_s`` in a thread, which bounds
what a crash of the machine itself (power, kernel) can lose to the records of that interval.

A stream also gets a ``StreamDraft`` entry when its first content goes out, and again as it delivers more:
what it is to be billed if the process dies then (``attempts/running.py``; ``store/crash.py`` bills the
last one at the next start when no record of the stream follows).

The journal is a series of segment files (``journal-<time>-<pid>-<random>.jsonl``, JSON lines); a segment is
replaced by a new one every ``segment_bytes`` or ``segment_age_s``, and deleted once every record in it has
been written to the database (``release``) or kept elsewhere (the spool). A process holds an exclusive
``flock`` on each segment it has open, taken before the segment gets its name, so another process (a
replica sharing the directory, the next start) takes only segments whose writer is dead
(``store/crash.py``). At a clean shutdown a segment still holding records the database did not take stays
behind, to be replayed at the next start like a crashed one.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import itertools
import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path

import msgspec

from tokenmux.store.records import GenerationRecord

log = logging.getLogger(__name__)

PREFIX = "journal-"
SUFFIX = ".jsonl"
# A segment being created, before its lock is taken: never a dead writer's journal.
OPENING = ".opening"
_WARN_PERIOD_S = 30.0

_numbers = itertools.count()


class StreamDraft(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What the journal keeps of a stream in flight: enough to bill it should the process die. A Struct, not
    a ``GenerationRecord``: every stream writes one, and this costs a fraction to build and encode."""

    id: str
    key_id: str | None
    requested_model: str
    model: str
    provider: str
    endpoint: str
    attempt: int
    created_at: float  # unix seconds: the request's
    started_at: float  # unix seconds: the serving attempt's
    prompt_tokens: int
    completion_tokens: int = 0
    cost_usd: float
    latency_ms: float
    dropped_params: tuple[str, ...] = ()


class JournalLine(msgspec.Struct, omit_defaults=True):
    """One line of a segment: a finished generation (``r``) or a stream in flight (``s``)."""

    r: GenerationRecord | None = None
    s: StreamDraft | None = None


class _Segment:
    __slots__ = ("fd", "opened", "outstanding", "path", "retired", "size", "synced")

    def __init__(self, path: Path, fd: int, opened: float) -> None:
        self.path = path
        self.fd = fd
        self.opened = opened
        self.size = 0
        self.outstanding = 0  # entries still needed: records not yet in the database, streams not ended
        self.retired = False  # no more appends; deleted once nothing in it is outstanding
        self.synced = True


class Journal:
    """The segments one process writes in ``directory``. Every method but ``close`` is synchronous and
    must be called on the event loop's thread."""

    def __init__(
        self,
        directory: Path,
        *,
        sync_interval_s: float = 0.05,
        segment_bytes: int = 4 * 1024 * 1024,
        segment_age_s: float = 10.0,
    ) -> None:
        self.directory = Path(directory)
        self.sync_interval_s = sync_interval_s
        self._segment_bytes = segment_bytes
        self._segment_age_s = segment_age_s
        self._current: _Segment | None = None
        self._segments: list[_Segment] = []  # every open segment, the current one last
        # Entries still outstanding, by generation id: where the record was written, where the stream began.
        self._record_in: dict[str, _Segment] = {}
        self._start_in: dict[str, _Segment] = {}
        self._batch = bytearray()
        self._batch_records: list[GenerationRecord] = []
        self._batch_starts: list[str] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._flush_scheduled = False
        self._encoder = msgspec.json.Encoder()
        self._syncer: asyncio.Task[None] | None = None
        self._to_sync = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None  # see _running_loop
        self._closed = False
        self._syncing = False  # a sync runs in a thread: no descriptor may be closed meanwhile
        self._new_files = False  # a segment was created since the directory was last synced
        self._last_warning = -_WARN_PERIOD_S
        # Counters: entries appended, write failures (records then go to the database unjournaled).
        self.appended = 0
        self.failures = 0

    # -- the response path ------------------------------------------------------------------------------

    def append(self, generation: GenerationRecord) -> asyncio.Future[None]:
        """Queue a finished generation; the future is done once it is in the file (or the write failed,
        which is logged: a response never fails for the journal's sake)."""
        loop = self._running_loop()
        waiter = loop.create_future()
        if self._closed:
            waiter.set_result(None)
            return waiter
        self._add(b'{"r":', generation)
        self._batch_records.append(generation)
        self._waiters.append(waiter)
        self._schedule(loop)
        return waiter

    def started(self, draft: StreamDraft) -> None:
        """A stream began: ``draft`` is its record should the process die before it ends."""
        if self._closed:
            return
        self._add(b'{"s":', draft)
        self._batch_starts.append(draft.id)
        self._schedule(self._running_loop())

    def release(self, generations: Iterable[GenerationRecord]) -> None:
        """These records are in the database (or kept elsewhere): their entries, and the start of their
        streams, are no longer needed."""
        if self._batch:
            self._flush()  # a record released before its own append ran must not be tracked after
        record_in = self._record_in
        start_in = self._start_in
        for generation in generations:
            gid = generation.id
            segment = record_in.pop(gid, None)
            if segment is not None:
                self._drop_entry(segment)
            segment = start_in.pop(gid, None)
            if segment is not None:
                self._drop_entry(segment)

    @property
    def segments(self) -> int:
        return len(self._segments)

    # -- writing ------------------------------------------------------------------------------------------

    def _add(self, opening: bytes, entry: GenerationRecord | StreamDraft) -> None:
        batch = self._batch
        batch += opening
        self._encoder.encode_into(entry, batch, -1)
        batch += b"}\n"
        self.appended += 1

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        # Held once found: on CPython 3.11 every asyncio.get_running_loop() is a getpid system call.
        loop = self._loop
        if loop is None or loop.is_closed():
            loop = self._loop = asyncio.get_running_loop()
        return loop

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            # One write for everything appended during this pass of the loop.
            loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        data = self._batch
        if not data:
            return
        records, starts, waiters = self._batch_records, self._batch_starts, self._waiters
        self._batch = bytearray()
        self._batch_records, self._batch_starts, self._waiters = [], [], []
        try:
            segment = self._writable()
            view = memoryview(data)
            while view:
                view = view[os.write(segment.fd, view) :]
        except OSError as exc:
            self.failures += 1
            if self._current is not None:
                self._retire(self._current)  # it may end in half a line: the next write starts a new one
            self._warn(
                "request log: could not append %d records to the journal in %s: %s",
                len(records),
                self.directory,
                exc,
            )
        else:
            segment.size += len(data)
            segment.outstanding += len(records) + len(starts)
            record_in = self._record_in
            for generation in records:
                record_in[generation.id] = segment
            start_in = self._start_in
            for gid in starts:
                earlier = start_in.get(gid)
                start_in[gid] = segment
                if earlier is not None:  # a stream's newer draft replaces its older one
                    self._drop_entry(earlier)
            if segment.synced:
                segment.synced = False
                self._start_syncer()
                self._to_sync.set()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _writable(self) -> _Segment:
        current = self._current
        if current is not None:
            if current.size < self._segment_bytes and time.monotonic() - current.opened < self._segment_age_s:
                return current
            self._retire(current)
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.directory / _new_name()
        # Created under a name recovery does not look at, locked, then renamed into place: another
        # process's recovery (``store/crash.py``) must never find a segment before its lock is taken, or it
        # would take the fresh file for a dead writer's and delete it under this one.
        opening = path.with_name(path.name + OPENING)
        # 0o600: records name API keys and carry upstream error messages.
        fd = os.open(opening, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # ours while this process lives
            os.rename(opening, path)
        except OSError:
            os.close(fd)
            with contextlib.suppress(OSError):
                opening.unlink()
            raise
        segment = _Segment(path, fd, time.monotonic())
        self._current = segment
        self._segments.append(segment)
        self._new_files = True
        return segment

    def _retire(self, segment: _Segment) -> None:
        segment.retired = True
        if self._current is segment:
            self._current = None
        if segment.outstanding == 0:
            self._start_syncer()
            self._to_sync.set()  # the syncer deletes it, between syncs

    def _drop_entry(self, segment: _Segment) -> None:
        segment.outstanding -= 1
        if segment.outstanding == 0:
            if segment is self._current and time.monotonic() - segment.opened >= self._segment_age_s:
                self._retire(segment)  # nothing left in an old segment: start afresh rather than grow it
            elif segment.retired:
                self._start_syncer()
                self._to_sync.set()

    # -- syncing and deleting, in the background -----------------------------------------------------

    def _start_syncer(self) -> None:
        if self._syncer is None and not self._closed:
            self._syncer = asyncio.get_running_loop().create_task(self._sync_loop(), name="tokenmux-journal")

    async def _sync_loop(self) -> None:
        while True:
            await self._to_sync.wait()
            self._to_sync.clear()
            self._syncing = True
            try:
                await self._sync_and_reap()
            finally:
                self._syncing = False
            if self._closed:
                return
            # At most one sync per interval: under load, one fdatasync covers many batches.
            await asyncio.sleep(self.sync_interval_s)

    async def _sync_and_reap(self) -> None:
        unsynced = [segment for segment in self._segments if not segment.synced]
        for segment in unsynced:
            segment.synced = True  # appends from now on mark it again
        new_files, self._new_files = self._new_files, False
        if unsynced or new_files:
            try:
                await asyncio.to_thread(
                    _sync, [segment.fd for segment in unsynced], self.directory if new_files else None
                )
            except OSError as exc:
                self.failures += 1
                self._warn("request log: could not sync the journal in %s: %s", self.directory, exc)
        # Deleted here, never while a sync in the thread may use the file descriptor.
        for segment in [s for s in self._segments if s.retired and s.outstanding == 0]:
            self._segments.remove(segment)
            with contextlib.suppress(OSError):
                os.unlink(segment.path)  # before closing: the lock holds until the file is gone
            os.close(segment.fd)

    async def close(self) -> None:
        """Write and sync what is queued, delete segments whose records are all in the database, and keep
        the others (unlocked) for the next start."""
        if self._closed:
            return
        self._flush()
        self._closed = True
        if self._syncer is not None:
            # A sync under way ends first: a descriptor closed while a thread syncs it would stay open
            # (and locked) until that sync returns.
            if not self._syncing:
                self._syncer.cancel()
            await asyncio.gather(self._syncer, return_exceptions=True)
        if self._current is not None:
            self._retire(self._current)
        await self._sync_and_reap()
        kept = 0
        for segment in self._segments:
            os.close(segment.fd)
            kept += segment.outstanding
        if kept:
            log.warning("request log: %d journal entries kept in %s for the next start", kept, self.directory)
        self._segments.clear()
        self._record_in.clear()
        self._start_in.clear()

    def _warn(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last_warning >= _WARN_PERIOD_S:
            self._last_warning = now
            log.warning(message, *args)


def _new_name() -> str:
    # Time first, fixed width: names sort by age; pid, counter and a random part keep replicas apart.
    return f"{PREFIX}{time.time_ns():020d}-{os.getpid()}-{next(_numbers):06d}-{os.urandom(3).hex()}{SUFFIX}"


def _sync(fds: list[int], directory: Path | None) -> None:
    for fd in fds:
        os.fdatasync(fd)
    if directory is not None:  # the new segments' names, so a crash of the machine cannot lose a file
        with contextlib.suppress(OSError):
            dir_fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
