"""None and bool are bound by registered adapters, to exactly what sqlite3 binds for them by default."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tokenmux.store import SQLiteStore
from tokenmux.store.sqlite_binding import bind_plainly
from tokenmux.store.sqlite_bulk import BulkInsert


def _adapted(kind: type) -> bool:
    return (kind, sqlite3.PrepareProtocol) in sqlite3.adapters


async def test_a_store_registers_the_adapters_when_it_connects(tmp_path: Path) -> None:
    # Another test module may have registered them already; take them out to see the store put them in.
    for kind in (type(None), bool):
        sqlite3.adapters.pop((kind, sqlite3.PrepareProtocol), None)
    store = SQLiteStore(tmp_path / "binding.db")
    await store.open()
    try:
        assert _adapted(type(None)) and _adapted(bool)
    finally:
        await store.close()


def test_values_bind_as_sqlite3_binds_them_unadapted() -> None:
    rows = [None, True, False, 0, 1, 2.5, "text", b"blob"]
    expected = [(None, "null"), (1, "integer"), (0, "integer"), (0, "integer"), (1, "integer")]
    expected += [(2.5, "real"), ("text", "text"), (b"blob", "blob")]

    def stored(conn: sqlite3.Connection) -> list[tuple[object, str]]:
        conn.execute("CREATE TABLE t (seq INTEGER PRIMARY KEY, v)")
        BulkInsert("t", ("v",), "").run(conn, rows)
        for value in rows:  # and one row per statement, as the single-row statements bind
            conn.execute("INSERT INTO t (v) VALUES (?)", (value,))
        return conn.execute("SELECT v, typeof(v) FROM t ORDER BY seq").fetchall()

    for kind in (type(None), bool):
        sqlite3.adapters.pop((kind, sqlite3.PrepareProtocol), None)
    unadapted = stored(sqlite3.connect(":memory:"))
    bind_plainly()
    bind_plainly()  # twice changes nothing
    adapted = stored(sqlite3.connect(":memory:"))
    assert unadapted == adapted == expected * 2
