from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from stats_support import Clock

from tokenmux.store import Recorder, SQLiteStore


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "stats.db")
    await s.open()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
async def recorder(store: SQLiteStore) -> AsyncIterator[Recorder]:
    r = Recorder(store, flush_interval_s=0.01)
    r.start()
    try:
        yield r
    finally:
        await r.close()
