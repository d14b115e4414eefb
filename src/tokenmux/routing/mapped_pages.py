"""Giving back the resident pages of a file's read-only mappings once the process has read what it needed.

A compiled extension can carry large data in its read-only segment (``bpe_openai`` carries its vocabularies
there, about 70 MB) that it decodes once into structures of its own. The pages read while decoding stay
mapped and count in the process's resident set although nothing reads them again. They are clean copies of
the file, so dropping them (``madvise(MADV_DONTNEED)``) loses nothing: a later read faults the page back in
from the file. Only private read-only mappings without anonymous pages are touched: a page the loader wrote
(relocations, later made read-only) exists only in memory and must stay.

Decoding also leaves freed memory behind: the decoder's temporary buffers, freed in the middle of the C
heap, stay resident because the allocator returns to the system only the free space at the heap's top.
``release_freed_heap`` asks glibc for the rest (``malloc_trim``): up to 1.4 MB after both vocabularies.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_MADV_DONTNEED = 4  # Linux's value
_SMAPS = "/proc/self/smaps"


@dataclass(frozen=True, slots=True)
class Mapping:
    start: int
    end: int
    perms: str
    path: str
    rss_kib: int
    anonymous_kib: int


def mappings_of(path: str) -> list[Mapping]:
    """The process's mappings of the file ``path`` (resolved), from ``/proc/self/smaps``; empty where
    that file does not exist (not Linux)."""
    target = os.path.realpath(path)
    try:
        with open(_SMAPS, encoding="utf-8", errors="replace") as smaps:
            lines = smaps.read().splitlines()
    except OSError:
        return []
    found: list[Mapping] = []
    fields: dict[str, int] | None = None  # the current mapping's, when it is one of the file's
    perms = ""
    for line in lines:
        head = line.split(maxsplit=5)
        if not head:
            continue
        if not head[0].endswith(":"):  # a mapping's first line: "start-end perms offset dev inode path"
            if fields is not None:
                found.append(_mapping(fields, perms, target))
            fields = None
            if len(head) == 6 and head[5] == target:
                start, end = head[0].split("-")
                fields, perms = {"start": int(start, 16), "end": int(end, 16)}, head[1]
        elif fields is not None and head[0] in ("Rss:", "Anonymous:"):
            fields[head[0][:-1]] = int(head[1])
    if fields is not None:
        found.append(_mapping(fields, perms, target))
    return found


def _mapping(fields: dict[str, int], perms: str, path: str) -> Mapping:
    # A mapping whose Anonymous line was not read counts as holding anonymous pages: never released.
    return Mapping(
        fields["start"], fields["end"], perms, path, fields.get("Rss", 0), fields.get("Anonymous", 1)
    )


def release_read_only_pages(path: str) -> int:
    """Drop this process's resident pages of the private read-only mappings of ``path`` that hold no
    anonymous page; the KiB that were resident there. 0 where the platform has no ``/proc/self/smaps``."""
    if not sys.platform.startswith("linux"):
        return 0
    madvise = _madvise()
    released = 0
    for m in mappings_of(path):
        if m.perms != "r--p" or m.anonymous_kib != 0 or m.rss_kib == 0:
            continue
        if madvise(m.start, m.end - m.start, _MADV_DONTNEED) == 0:
            released += m.rss_kib
    return released


def release_freed_heap() -> bool:
    """Give the system back the free pages anywhere in the C allocator's heaps, not only at their tops;
    False where the C library has no ``malloc_trim`` (it is glibc's). Costs a walk of the heaps: call it
    after a large one-time load, never per request."""
    if not sys.platform.startswith("linux"):
        return False
    trim = getattr(_libc(), "malloc_trim", None)
    if trim is None:
        return False
    trim(0)
    return True


def _libc() -> Any:
    import ctypes  # here: only the first vocabulary load needs it
    import ctypes.util

    return ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


def _madvise() -> Callable[[int, int, int], int]:
    import ctypes

    madvise = _libc().madvise
    madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    madvise.restype = ctypes.c_int
    return madvise
