"""A refresh reads bucket rows only: the same work with ten times the requests in the log.

Work is counted in SQLite virtual-machine steps on the store's read connection (a progress handler),
which depends on what the queries touch, not on how busy the machine is.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from clock_support import Clock
from records_support import NOW, success
from tokenmux.stats import Stats
from tokenmux.store import SQLiteStore

STEP_EVERY = 10  # VM instructions per progress-handler call


class CountingStore(SQLiteStore):
    """A real SQLite store whose read connection counts the work and the statements it runs."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, read_connections=1)
        self.steps = 0
        self.statements: list[str] = []

    def _connect_reader(self) -> sqlite3.Connection:
        conn = super()._connect_reader()
        conn.set_progress_handler(self._step, STEP_EVERY)
        conn.set_trace_callback(self.statements.append)
        return conn

    def _step(self) -> int:
        self.steps += 1
        return 0  # carry on


async def refresh_work(path: Path, records: int, endpoints: int) -> tuple[int, list[str], int]:
    """Log ``records`` requests spread over ``endpoints`` endpoints and the last 20 minutes, then count
    the VM steps and statements of one refresh. Returns (steps, statements, rows in the log)."""
    store = CountingStore(path)
    await store.open()
    try:
        generations = [
            success(
                f"vendor/model-{i % endpoints}@provider-{i % 3}",
                NOW - (i % 20) * 60,
                ttft_ms=100 + i % 900,
                tps=20 + i % 200,
                prompt_tokens=10,
                completion_tokens=5,
            )
            for i in range(records)
        ]
        for offset in range(0, records, 1000):
            await store.write_batch(generations[offset : offset + 1000])
        stats = Stats(store, clock=Clock(NOW))
        store.steps, store.statements = 0, []
        await stats.refresh()
        assert stats.endpoint_figures("vendor/model-0@provider-0")["requests_last_30m"] > 0
        return store.steps, store.statements, records
    finally:
        await store.close()


async def test_a_refresh_costs_the_same_with_ten_times_the_records(tmp_path: Path) -> None:
    steps_1k, statements, _ = await refresh_work(tmp_path / "1k.db", 1_000, endpoints=12)
    steps_10k, _, _ = await refresh_work(tmp_path / "10k.db", 10_000, endpoints=12)
    assert steps_1k == steps_10k
    # The measure does see more buckets: twice the endpoints, more work.
    steps_more_endpoints, _, _ = await refresh_work(tmp_path / "24.db", 1_000, endpoints=24)
    assert steps_more_endpoints > steps_1k * 1.5

    tables = {table for sql in statements for table in re.findall(r"\bFROM\s+(\w+)", sql, re.IGNORECASE)}
    assert tables == {"stats_endpoint_buckets", "stats_model_days"}
