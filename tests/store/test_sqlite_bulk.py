"""Many rows per INSERT statement: every row lands, in order, within the connection's parameter limit."""

from __future__ import annotations

import sqlite3

import pytest

from tokenmux.store.sqlite_bulk import BulkInsert

BULK = BulkInsert("t", ("id", "name", "score"), "ON CONFLICT (id) DO NOTHING")


@pytest.fixture
def conn() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (seq INTEGER PRIMARY KEY, id INTEGER UNIQUE, name TEXT, score REAL)")
    return conn


def values(ids: range) -> list[object]:
    return [v for i in ids for v in (i, f"row {i}", i / 3)]


@pytest.mark.parametrize("rows", [0, 1, 2, 3, 7, 64, 513, 1100])
def test_every_row_lands_in_order(conn: sqlite3.Connection, rows: int) -> None:
    assert BULK.run(conn, values(range(rows))) == rows
    stored = conn.execute("SELECT id, name, score FROM t ORDER BY seq").fetchall()
    assert stored == [(i, f"row {i}", i / 3) for i in range(rows)]


def test_counts_only_the_rows_inserted(conn: sqlite3.Connection) -> None:
    BULK.run(conn, values(range(0, 10, 2)))
    assert BULK.run(conn, values(range(10))) == 5
    assert BULK.run(conn, values(range(3)) + values(range(3))) == 0
    assert [row[0] for row in conn.execute("SELECT id FROM t ORDER BY id")] == list(range(10))


def test_the_first_of_a_repeated_key_wins_within_a_statement(conn: sqlite3.Connection) -> None:
    assert BULK.run(conn, [1, "first", 1.0, 1, "second", 2.0]) == 1
    assert conn.execute("SELECT name FROM t").fetchall() == [("first",)]


def test_chunks_stay_within_the_parameter_limit(conn: sqlite3.Connection) -> None:
    conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 20)  # 6 rows of 3 fit: chunks of 4
    assert BULK.most_rows(conn) == 4
    assert BULK.run(conn, values(range(11))) == 11
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (11,)


def test_a_large_batch_takes_few_statements_of_bounded_size(conn: sqlite3.Connection) -> None:
    # Statements stay in the connection's cache, and their size grows with their rows: a batch of 1,000
    # goes in statements of at most 64 rows (15 x 64, then 32 and 8), each step handing the GIL over once.
    steps: list[int] = []
    # The trace shows each statement with its values bound: one "), (" between consecutive rows.
    conn.set_trace_callback(
        lambda sql: steps.append(sql.count("), (") + 1) if sql.startswith("INSERT") else None
    )
    assert BULK.run(conn, values(range(1000))) == 1000
    assert steps == [64] * 15 + [32, 8]


def test_values_must_make_whole_rows(conn: sqlite3.Connection) -> None:
    with pytest.raises(ValueError, match="rows of 3"):
        BULK.run(conn, [1, "one"])
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (0,)
