"""Releasing the resident pages of a file's read-only mappings, and the tokenizer's image released so."""

from __future__ import annotations

import ctypes
import mmap
import sys
from pathlib import Path

import pytest

from fresh_process import run_fresh
from tokenmux.routing.mapped_pages import mappings_of, release_read_only_pages

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/smaps")

PAGES = 64


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "image.bin"
    path.write_bytes(bytes(range(256)) * (PAGES * mmap.PAGESIZE // 256))
    return path


def _touch(view: mmap.mmap) -> int:
    return sum(view[i] for i in range(0, len(view), mmap.PAGESIZE))


def test_a_read_only_mapping_gives_its_pages_back_and_still_reads_the_file(data_file: Path) -> None:
    with (
        data_file.open("rb") as f,
        mmap.mmap(f.fileno(), 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ) as view,
    ):
        first = _touch(view)
        (resident,) = mappings_of(str(data_file))
        assert resident.perms == "r--p"
        assert resident.rss_kib == PAGES * mmap.PAGESIZE // 1024
        assert resident.anonymous_kib == 0

        assert release_read_only_pages(str(data_file)) == resident.rss_kib
        assert [m.rss_kib for m in mappings_of(str(data_file))] == [0]
        assert _touch(view) == first  # read again from the file
        assert view[: 2 * 256] == data_file.read_bytes()[: 2 * 256]


def test_pages_written_in_memory_are_kept_even_once_read_only(data_file: Path) -> None:
    # As the dynamic loader does with relocated data: a private copy written, then made read-only.
    with data_file.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY) as view:
        view[:5] = b"wrote"
        (mapping,) = mappings_of(str(data_file))
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
        assert libc.mprotect(mapping.start, mapping.end - mapping.start, mmap.PROT_READ) == 0
        (read_only,) = mappings_of(str(data_file))
        assert read_only.perms == "r--p"
        assert read_only.anonymous_kib > 0

        assert release_read_only_pages(str(data_file)) == 0
        assert view[:5] == b"wrote"
        libc.mprotect(mapping.start, mapping.end - mapping.start, mmap.PROT_READ | mmap.PROT_WRITE)


def test_a_file_not_mapped_has_nothing_to_release(data_file: Path) -> None:
    assert mappings_of(str(data_file)) == []
    assert release_read_only_pages(str(data_file)) == 0


def test_a_loaded_vocabulary_leaves_the_extensions_image_unresident() -> None:
    # In a process of its own, so that what this one has mapped or read does not count.
    code = (
        "from tokenmux.routing import mapped_pages, tokens\n"
        "n = tokens.count_tokens('hello world', 'o200k') + tokens.count_tokens('hello world', 'claude')\n"
        "path = tokens._load_extension().__file__\n"
        "image = [m for m in mapped_pages.mappings_of(path) if m.perms == 'r--p' and m.anonymous_kib == 0]\n"
        "print(n, sum(m.end - m.start for m in image) // 2**20, sum(m.rss_kib for m in image) // 1024)\n"
    )
    tokens_counted, image_mib, resident_mib = map(int, run_fresh(code).split())
    assert tokens_counted == 2 + 3  # 2 in o200k_base; 2 in cl100k_base, scaled by 1.5 for Claude
    assert image_mib > 40  # the vocabularies are there...
    assert resident_mib < 4  # ...but no longer resident once decoded


def test_freed_memory_in_the_middle_of_the_heap_is_given_back() -> None:
    # In a process of its own: 64 MB of small buffers freed below one still held, so the heap's top cannot
    # shrink and glibc keeps the freed pages resident until asked to trim.
    code = (
        "import gc\n"
        "from tokenmux.routing.mapped_pages import release_freed_heap\n"
        "def rss():\n"
        "    return next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmRSS'))\n"
        "buffers = [bytes(4000) + bytes([i % 256]) for i in range(16_000)]\n"
        "held = bytes(4000) + b'held'\n"
        "del buffers; gc.collect()\n"
        "before = rss()\n"
        "trimmed = release_freed_heap()\n"
        "print(int(trimmed), (before - rss()) // 1024)\n"
    )
    trimmed, released_mib = map(int, run_fresh(code).split())
    if not trimmed:
        pytest.skip("the C library has no malloc_trim (not glibc)")
    assert released_mib > 40
