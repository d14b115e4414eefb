"""Request records that could not reach the database before shutdown, kept on disk until they can.

At shutdown the gateway writes whatever its recorder still holds to a new file here (JSON lines, written
to a temporary name, synced, then renamed, so a file is either whole or absent). At the next start, once
the database answers, every file is read back into the recorder and removed after it has been written.
Writing a generation id twice is a no-op for the store, so a crash between the two steps loses nothing
and duplicates nothing. A file that cannot be read is renamed ``*.bad`` and left for a person.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

import msgspec

from tokenmux.store.records import GenerationRecord

log = logging.getLogger(__name__)

_SUFFIX = ".jsonl"
_decoder = msgspec.json.Decoder(GenerationRecord)


class Spill:
    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def write(self, records: Sequence[GenerationRecord]) -> Path:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        name = f"records-{time.time_ns()}-{os.getpid()}{_SUFFIX}"
        final = self.directory / name
        temporary = final.with_suffix(".tmp")
        with temporary.open("wb") as f:
            for record in records:
                f.write(msgspec.json.encode(record))
                f.write(b"\n")
            f.flush()
            os.fsync(f.fileno())
        temporary.rename(final)
        return final

    def files(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(self.directory.glob(f"records-*{_SUFFIX}"))

    def read(self, path: Path) -> list[GenerationRecord]:
        try:
            return [_decoder.decode(line) for line in path.read_bytes().splitlines() if line.strip()]
        except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
            bad = path.with_suffix(".bad")
            log.error("cannot read spilled records %s (%s); left as %s", path, exc, bad)
            path.rename(bad)
            return []
