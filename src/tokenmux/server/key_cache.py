"""What key lookups found, kept a few seconds so a client's every request but the first costs one dict lookup.

Entries are keyed by the 32-byte SHA-256 of the key presented, never by the header bytes as they came: what
a stranger sends costs the cache 32 bytes however long it was. Two tables, because they face different
callers:

- ``found``: keys the database knows (revoked ones too). Only an admin can add keys, so this table grows
  with the real keys, up to ``max_found``. An entry past its few seconds is no longer trusted, but it is kept
  (up to ``keep_stale_s``) as the key's last reading for a database outage, when a key seen before keeps
  working as it was.
- ``refused``: digests the database did not know, remembered a second so a client retrying a wrong key does
  not reach the database each time. Anyone can fill it, so it is small (``max_refused``) and an entry is
  dropped once it expires.

Both tables are dicts in insertion order, and an entry is re-inserted when refreshed, so the oldest entry is
always first: expired entries are evicted from the front on each insertion (amortised O(1)), and when a table
is full its oldest entry makes room. Memory is thus bounded: about 150 bytes per refused digest (1.5 MB for
10,000) and a key record per found key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, TypeVar

from tokenmux.store.records import KeyRecord

FOUND_TTL_S: Final = 5.0
REFUSED_TTL_S: Final = 1.0
MAX_FOUND: Final = 100_000
MAX_REFUSED: Final = 10_000
KEEP_STALE_S: Final = 24 * 3600.0

V = TypeVar("V")


class KeyCache:
    __slots__ = (
        "_found",
        "_refused",
        "found_ttl_s",
        "keep_stale_s",
        "max_found",
        "max_refused",
        "refused_ttl_s",
    )

    def __init__(
        self,
        *,
        found_ttl_s: float = FOUND_TTL_S,
        refused_ttl_s: float = REFUSED_TTL_S,
        max_found: int = MAX_FOUND,
        max_refused: int = MAX_REFUSED,
        keep_stale_s: float = KEEP_STALE_S,
    ) -> None:
        self.found_ttl_s = found_ttl_s
        self.refused_ttl_s = refused_ttl_s
        self.max_found = max_found
        self.max_refused = max_refused
        self.keep_stale_s = keep_stale_s
        self._found: dict[bytes, tuple[float, KeyRecord]] = {}  # digest -> (trusted until, record)
        self._refused: dict[bytes, float] = {}  # digest -> remembered until

    def fresh(self, digest: bytes, now: float) -> tuple[bool, KeyRecord | None]:
        """(True, the record or None for a refused key) when a lookup is still trusted, else (False, None)."""
        hit = self._found.get(digest)
        if hit is not None and hit[0] > now:
            return True, hit[1]
        until = self._refused.get(digest)
        if until is not None and until > now:
            return True, None
        return False, None

    def last_read(self, digest: bytes) -> KeyRecord | None:
        """What the database last said of a key it knows, however old (for a database outage)."""
        hit = self._found.get(digest)
        return hit[1] if hit is not None else None

    def put(self, digest: bytes, record: KeyRecord | None, now: float) -> None:
        if record is None:
            table: dict[bytes, float] = self._refused
            table.pop(digest, None)
            _evict(table, now, self.max_refused, lambda until: until)
            table[digest] = now + self.refused_ttl_s
            return
        self._refused.pop(digest, None)
        found = self._found
        found.pop(digest, None)
        keep = self.keep_stale_s
        _evict(found, now, self.max_found, lambda entry: entry[0] + keep)
        found[digest] = (now + self.found_ttl_s, record)

    def forget(self) -> None:
        self._found.clear()
        self._refused.clear()

    def __len__(self) -> int:
        return len(self._found) + len(self._refused)


def _evict(table: dict[bytes, V], now: float, limit: int, ends: Callable[[V], float]) -> None:
    """Drop expired entries from the front (the oldest), then the oldest while the table is full.
    ``ends`` tells when an entry may be dropped."""
    while table:
        first = next(iter(table))
        if ends(table[first]) > now and len(table) < limit:
            return
        del table[first]
