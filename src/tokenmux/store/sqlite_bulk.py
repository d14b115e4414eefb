"""Many rows per SQLite ``INSERT``: one statement step for a whole chunk of a batch instead of one per row.

Python's sqlite3 lets go of the GIL around every statement step, and ``executemany`` steps once per row.
The writer thread then hands the GIL to the event loop's thread and waits to get it back (a switch interval,
or until the loop next blocks) once per row: about 12 µs of futex on each side, several times what SQLite
spends on the row. A statement of ``VALUES (...), (...), ...`` steps once for all its rows, so the GIL
changes hands once per chunk.

Chunks have power-of-two sizes, so a batch of any length needs a handful of distinct statements, and
sqlite3's statement cache prepares each once per connection. The largest chunk stays within the
connection's limit on bound parameters (999 on old builds, 32,766 since SQLite 3.32).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

# Rows per statement at most. sqlite3 keeps every prepared statement in its per-connection cache, and a
# statement's program grows with its rows: for the request log's 22- and 23-column tables, the statements
# of 128, 256 and 512 rows held 0.4, 1.2 and 2.9 MB more of the writer thread's memory for the life of the
# process, while writing as fast as 64 rows (bench_recorder.py, 100,000 records: 31,600-32,600 records/s
# with 64, 29,800-31,800 with 512). The GIL still changes hands once per 64 rows, not per row.
_MOST_ROWS = 64


class BulkInsert:
    """``INSERT INTO table (columns) VALUES ... <tail>`` for any number of rows, in a few statements."""

    __slots__ = ("_head", "_row_marks", "_statements", "_tail", "width")

    def __init__(self, table: str, columns: Sequence[str], tail: str) -> None:
        self.width = len(columns)
        self._head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
        self._row_marks = f"({', '.join('?' * self.width)})"
        self._tail = tail
        self._statements: dict[int, str] = {}

    def statement(self, rows: int) -> str:
        """The statement for ``rows`` rows (made once per size)."""
        sql = self._statements.get(rows)
        if sql is None:
            sql = self._statements[rows] = f"{self._head}{', '.join([self._row_marks] * rows)} {self._tail}"
        return sql

    def most_rows(self, conn: sqlite3.Connection) -> int:
        """The largest power-of-two chunk whose parameters this connection can bind."""
        limit = min(_MOST_ROWS, conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // self.width)
        rows = 1
        while rows * 2 <= limit:
            rows *= 2
        return rows

    def run(self, conn: sqlite3.Connection, values: Sequence[Any]) -> int:
        """Insert the rows whose values are laid end to end in ``values`` (``width`` per row), in order;
        return how many rows were inserted (``ON CONFLICT ... DO NOTHING`` skips some)."""
        width = self.width
        rows = len(values) // width
        if rows * width != len(values):
            raise ValueError(f"{len(values)} values do not make rows of {width}")
        chunk = self.most_rows(conn)
        inserted = 0
        start = 0
        while rows:
            while chunk > rows:
                chunk //= 2
            end = start + chunk * width
            inserted += conn.execute(self.statement(chunk), values[start:end]).rowcount
            start = end
            rows -= chunk
        return inserted
