"""What a dead process left in the journal (``journal.py``), taken over at the next start.

A segment whose ``flock`` can be taken belongs to no living process: its writer crashed, or shut down
while the database was still down. Its records, and a record for every stream it began that no record
ended (``crashed``: the stream was cut by the crash, and is billed from what it had sent), are written to
one spool file, and the segments are deleted; the recorder then replays that file like any other, through
the same idempotent ``write_batch``. A generation already written (its segment outlived its record) is
not stored twice: the database ignores an id it has.

Blocking file I/O: call from a thread.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from tokenmux.store.journal import OPENING, PREFIX, SUFFIX, JournalLine, StreamDraft
from tokenmux.store.records import AttemptRecord, GenerationRecord
from tokenmux.store.spool import Spool

log = logging.getLogger(__name__)

CRASH_REASON = "ended by crash"


@dataclass(slots=True)
class Adopted:
    """What was taken over from dead processes' segments."""

    segments: int = 0
    records: list[GenerationRecord] = field(default_factory=list)  # finished ones, then cut streams
    crashed: int = 0  # of which streams cut by the crash
    damaged_lines: int = 0


def adopt_orphans(directory: Path, spool: Spool) -> Adopted:
    """Move the records of every segment no living process holds into one spool file, then delete the
    segments. Segments that cannot be read are left where they are."""
    adopted = Adopted()
    try:
        files = [p for p in directory.iterdir() if p.name.startswith(PREFIX)]
    except FileNotFoundError:
        return adopted
    names = sorted(p for p in files if p.name.endswith(SUFFIX))
    _remove_unopened([p for p in files if p.name.endswith(SUFFIX + OPENING)])
    held: list[tuple[Path, int]] = []
    try:
        finished: dict[str, GenerationRecord] = {}
        started: dict[str, StreamDraft] = {}
        decoder = msgspec.json.Decoder(JournalLine)
        for path in names:
            fd = _take(path)
            if fd is None:
                continue
            held.append((path, fd))
            data = _read_all(fd)
            for line in data.split(b"\n"):
                if not line:
                    continue
                try:
                    entry = decoder.decode(line)
                except msgspec.DecodeError:
                    adopted.damaged_lines += 1  # a write cut short by the crash, or a damaged disk
                    continue
                if entry.r is not None:
                    finished[entry.r.id] = entry.r
                elif entry.s is not None:
                    started[entry.s.id] = entry.s
        adopted.segments = len(held)
        adopted.records = list(finished.values())
        for gid, draft in started.items():
            if gid not in finished:
                adopted.records.append(crashed(draft))
                adopted.crashed += 1
        if adopted.records:
            spool.write(adopted.records)  # synced before the segments go
        for path, _ in held:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    finally:
        for _, fd in held:
            os.close(fd)
    if adopted.damaged_lines:
        log.warning(
            "request log: %d damaged lines in the journal of a dead process skipped", adopted.damaged_lines
        )
    return adopted


def crashed(draft: StreamDraft) -> GenerationRecord:
    """The record of a stream the process died in, billed for what its draft says it had delivered. It
    holds the serving attempt only: attempts that failed before it cost nothing and are not journaled."""
    attempt = AttemptRecord(
        generation_id=draft.id,
        attempt=draft.attempt,
        model=draft.model,
        provider=draft.provider,
        endpoint=draft.endpoint,
        outcome="error",
        error_class="stream_interrupted",
        error_message=CRASH_REASON,
        prompt_tokens=draft.prompt_tokens,
        completion_tokens=draft.completion_tokens,
        cost_usd=draft.cost_usd,
        latency_ms=draft.latency_ms,
        streamed=True,
        finish_reason="error",
        started_at=draft.started_at,
        counts_for_uptime=False,  # the gateway's end, not the provider's
    )
    return GenerationRecord(
        id=draft.id,
        key_id=draft.key_id,
        requested_model=draft.requested_model,
        model=draft.model,
        provider=draft.provider,
        created_at=draft.created_at,
        streamed=True,
        finish_reason="error",
        status="error",
        http_status=200,
        error_message=CRASH_REASON,
        prompt_tokens=draft.prompt_tokens,
        completion_tokens=draft.completion_tokens,
        cost_usd=draft.cost_usd,
        latency_ms=draft.latency_ms,
        dropped_params=list(draft.dropped_params),
        attempts=[attempt],
    )


# A segment still under its creation name after this long was left by a writer that died creating it.
_UNOPENED_AGE_S = 60.0


def _remove_unopened(paths: list[Path]) -> None:
    """Delete the segments a dead writer was creating: no record is written to one before it has its
    final name, so they are empty. A writer renames its new segment microseconds after creating it, before
    or after locking it, so only one left for a minute is known to be a dead writer's."""
    for path in paths:
        try:
            if time.time() - path.stat().st_mtime < _UNOPENED_AGE_S:
                continue
        except FileNotFoundError:
            continue
        fd = _take(path)
        if fd is not None:
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            finally:
                os.close(fd)


def _take(path: Path) -> int | None:
    """An open descriptor holding the segment's lock, or None while its writer lives (or it is gone)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # Its writer may have deleted it between our open and our lock: then it is not an orphan.
        if os.stat(path).st_ino != os.fstat(fd).st_ino:
            raise FileNotFoundError(path)
    except OSError:
        os.close(fd)
        return None
    return fd


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)
