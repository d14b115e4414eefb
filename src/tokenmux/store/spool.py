"""Request records kept on disk while the database cannot take them: a directory of JSON-lines files.

The recorder writes here what it cannot keep in memory (its queue overflowed) or could not write before
shutdown, and reads the files back when it starts. Each file is written under a temporary name, synced,
then renamed, so a file with the final name is whole. Names start with the time written, so sorting
them sorts by age. ``write_batch`` ignores a generation id it already stored, so a file replayed twice
(a crash between writing its records and removing it) duplicates nothing.

A file that cannot be read back is never taken for records: it is renamed ``*.bad`` and left for a
person, as is a temporary file a crashed process left behind.

Every method does blocking file I/O; call them from a thread when the event loop must not wait.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

import msgspec

from tokenmux.store.records import GenerationRecord

log = logging.getLogger(__name__)

_PREFIX = "records-"
_SUFFIX = ".jsonl"
_TEMPORARY_PREFIX = "." + _PREFIX  # hidden, and never matches a finished file's name
_TEMPORARY_SUFFIX = ".tmp"
_BAD_SUFFIX = ".bad"
# A write takes seconds at most; a temporary file this old belongs to a process that died mid-write.
_ABANDONED_AFTER_S = 600.0

_file_numbers = itertools.count()  # next() on it is atomic, so threads writing at once get distinct names


class Spool:
    """One directory of spooled request records."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._encoder = msgspec.json.Encoder()
        self._decoder = msgspec.json.Decoder(GenerationRecord)

    def write(self, records: Sequence[GenerationRecord]) -> Path:
        """Store ``records`` in a new file and return its path; once this returns they survive a crash."""
        # Encoded before any file exists: a record that cannot be encoded raises and leaves nothing behind.
        data = self._encoder.encode_lines(records)
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        final = self.directory / _new_file_name()
        temporary = self.directory / f".{final.name}{_TEMPORARY_SUFFIX}"
        try:
            # 0o600: the records name API keys and carry upstream error messages.
            with open(temporary, "xb", opener=lambda path, flags: os.open(path, flags, 0o600)) as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.rename(temporary, final)
        except BaseException:
            if temporary.exists():
                self._set_aside(temporary, "the write did not finish")
            raise
        _sync_directory(self.directory)
        return final

    def pending(self) -> list[Path]:
        """Finished files, oldest first. Temporary files abandoned by a crashed writer are set aside."""
        try:
            entries = list(self.directory.iterdir())
        except FileNotFoundError:
            return []
        finished = []
        for path in entries:
            name = path.name
            if name.startswith(_PREFIX) and name.endswith(_SUFFIX):
                finished.append(path)
            elif name.startswith(_TEMPORARY_PREFIX) and name.endswith(_TEMPORARY_SUFFIX):
                self._set_aside_if_abandoned(path)
        return sorted(finished, key=lambda path: path.name)

    def read(self, path: Path) -> list[GenerationRecord]:
        """The records of one file; none when it is gone or cannot be read (then it is set aside)."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return []  # another process replayed and removed it meanwhile
        except OSError as exc:
            self._set_aside(path, str(exc))
            return []
        if data and not data.endswith(b"\n"):
            # Every record ends with a newline, so the file was cut short, perhaps after a whole record.
            self._set_aside(path, "it ends in the middle of a line")
            return []
        try:
            return self._decoder.decode_lines(data)
        except msgspec.DecodeError as exc:  # includes ValidationError: valid JSON, not a record
            self._set_aside(path, str(exc))
            return []

    def remove(self, path: Path) -> None:
        """Delete a file whose records are all written."""
        path.unlink(missing_ok=True)

    def _set_aside_if_abandoned(self, temporary: Path) -> None:
        try:
            age_s = time.time() - temporary.stat().st_mtime
        except FileNotFoundError:
            return  # its writer just finished or set it aside
        if age_s > _ABANDONED_AFTER_S:
            self._set_aside(temporary, "its writer stopped before finishing it")

    def _set_aside(self, path: Path, reason: str) -> None:
        """Rename to ``*.bad`` (visible, never read as records) for a person to look at."""
        name = path.name
        if name.startswith(_TEMPORARY_PREFIX):
            name = name[1:].removesuffix(_TEMPORARY_SUFFIX)
        bad = path.with_name(name + _BAD_SUFFIX)
        try:
            path.rename(bad)
        except OSError as exc:
            log.warning("spooled request records %s cannot be used (%s) nor renamed: %s", path, reason, exc)
            return
        log.warning("spooled request records %s cannot be used (%s); left as %s", path, reason, bad)


def _new_file_name() -> str:
    # Time first, fixed width: names sort by age. The pid and counter make names unique within a host;
    # the random part keeps replicas sharing a volume apart when their pids coincide (containers).
    return (
        f"{_PREFIX}{time.time_ns():020d}-{os.getpid()}-{next(_file_numbers):06d}-{os.urandom(3).hex()}"
        f"{_SUFFIX}"
    )


def _sync_directory(directory: Path) -> None:
    """Make the rename itself durable. Best effort: some file systems cannot sync a directory."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
