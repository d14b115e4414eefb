"""A key's limits, worked out once per key record read from the database."""

from __future__ import annotations

from tokenmux.limits.key_limits import KeyLimits
from tokenmux.store.records import KeyRecord

# Beyond this many keys the cache starts over (a gateway rarely sees so many; the bound keeps memory fixed).
_MAX_KEYS = 100_000


class KeyLimitsCache:
    __slots__ = ("_limits",)

    def __init__(self) -> None:
        self._limits: dict[str, tuple[KeyRecord, KeyLimits]] = {}

    def of(self, key: KeyRecord) -> KeyLimits:
        cached = self._limits.get(key.id)
        if cached is not None and cached[0] is key:
            return cached[1]
        limits = KeyLimits.of(key)
        if len(self._limits) > _MAX_KEYS:
            self._limits.clear()
        self._limits[key.id] = (key, limits)
        return limits

    def forget(self, key_id: str) -> None:
        self._limits.pop(key_id, None)
