from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from clock_support import Clock
from postgres_support import BACKENDS, StoreDatabase, store_database
from records_support import NOW
from tokenmux.store import Recorder, Store


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreDatabase]:
    """A fresh database on each backend in turn: every test of the figures runs on SQLite and on
    PostgreSQL (skipped when it is not running)."""
    with store_database(request.param, tmp_path) as db:
        yield db


@pytest.fixture
async def store(database: StoreDatabase) -> AsyncIterator[Store]:
    async with database.store() as opened:
        yield opened


@pytest.fixture
async def recorder(store: Store) -> AsyncIterator[Recorder]:
    r = Recorder(store, flush_interval_s=0.01)
    r.start()
    try:
        yield r
    finally:
        await r.close()
