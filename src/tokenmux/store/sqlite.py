"""The embedded store: one SQLite file in WAL mode, written by one thread, read by a few.

Column lists are derived from the record dataclasses, so the SQL cannot drift from the records; the
statements are constant strings, so sqlite3's statement cache prepares each once per connection.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from operator import attrgetter
from pathlib import Path
from typing import Any, TypeVar

from tokenmux.errors import KeyNameTaken, StoreError, StoreUnavailable
from tokenmux.store.base import Store, updatable_columns
from tokenmux.store.buckets import (
    ENDPOINT_BUCKET_COLUMNS,
    ENDPOINT_BUCKET_KEY,
    KEY_DAY_COLUMNS,
    KEY_DAY_KEY,
    MINUTE_S,
    MODEL_DAY_COLUMNS,
    MODEL_DAY_KEY,
    BatchDeltas,
    BucketCounts,
    EndpointBucket,
    KeyDay,
    ModelDay,
    aggregate,
)
from tokenmux.store.migrations import apply_migrations
from tokenmux.store.records import (
    ATTEMPT_FIELDS,
    GENERATION_FIELDS,
    KEY_FIELDS,
    AttemptRecord,
    ContentRecord,
    GenerationRecord,
    KeyRecord,
)
from tokenmux.store.sqlite_binding import bind_plainly
from tokenmux.store.sqlite_bulk import BulkInsert
from tokenmux.store.sqlite_threads import Job, ReaderPool, WriterThread, write_transaction

log = logging.getLogger(__name__)

T = TypeVar("T")

MEMORY = ":memory:"
MIN_SQLITE = (3, 24, 0)  # ON CONFLICT ... DO NOTHING


def _insert_sql(table: str, columns: Sequence[str], conflict: str) -> str:
    marks = ", ".join("?" * len(columns))
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) ON CONFLICT ({conflict}) DO NOTHING"


# generations: every scalar field, then dropped_params as JSON text.
_GEN_SCALARS = tuple(n for n in GENERATION_FIELDS if n not in ("dropped_params", "attempts"))
_GEN_COLUMNS = (*_GEN_SCALARS, "dropped_params")
_gen_scalars = attrgetter(*_GEN_SCALARS)
_INSERT_GENERATION = _insert_sql("generations", _GEN_COLUMNS, "id")
_BULK_GENERATIONS = BulkInsert("generations", _GEN_COLUMNS, "ON CONFLICT (id) DO NOTHING")
_SELECT_GENERATION = f"SELECT {', '.join(_GEN_COLUMNS)} FROM generations WHERE id = ?"

# attempts: generation_id comes from the generation, so an attempt can never point at another one.
_ATT_REST = tuple(n for n in ATTEMPT_FIELDS if n != "generation_id")
_ATT_COLUMNS = ("generation_id", *_ATT_REST)
_att_rest = attrgetter(*_ATT_REST)
_INSERT_ATTEMPT = _insert_sql("attempts", _ATT_COLUMNS, "generation_id, attempt")
_BULK_ATTEMPTS = BulkInsert("attempts", _ATT_COLUMNS, "ON CONFLICT (generation_id, attempt) DO NOTHING")
_SELECT_ATTEMPTS = f"SELECT {', '.join(_ATT_COLUMNS)} FROM attempts WHERE generation_id = ? ORDER BY attempt"
_SELECT_ATTEMPTS_SINCE = f"SELECT {', '.join(_ATT_COLUMNS)} FROM attempts WHERE started_at >= ?"

# Aggregates (tokenmux.store.buckets): a batch's deltas are added to the stored rows by upsert.
_IN_CHUNK = 500  # ids per "IN (...)": under every SQLite build's limit on bound parameters


def _combined(column: str, stored: str, new: str) -> str:
    """How two values of an aggregate column combine: ``*_min``/``*_max`` keep the extreme (NULL meaning
    "no sample yet"), every other column (counts, sums, histogram bins) adds."""
    if column.endswith("_min"):
        return f"CASE WHEN {new} < {stored} OR {stored} IS NULL THEN {new} ELSE {stored} END"
    if column.endswith("_max"):
        return f"CASE WHEN {new} > {stored} OR {stored} IS NULL THEN {new} ELSE {stored} END"
    return f"{stored} + {new}"


def _aggregated(column: str) -> str:
    """The same rule over many rows, for summing a window's buckets."""
    if column.endswith("_min"):
        return f"min({column})"
    return f"max({column})" if column.endswith("_max") else f"sum({column})"


def _upsert_adding_sql(table: str, columns: Sequence[str], key: Sequence[str]) -> str:
    """INSERT a delta row, or add it to the stored one."""
    updates = ", ".join(
        f"{column} = {_combined(column, f'{table}.{column}', f'excluded.{column}')}"
        for column in columns
        if column not in key
    )
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"
    )


_UPSERT_ENDPOINT_BUCKET = _upsert_adding_sql(
    "stats_endpoint_buckets", ENDPOINT_BUCKET_COLUMNS, ENDPOINT_BUCKET_KEY
)
_UPSERT_MODEL_DAY = _upsert_adding_sql("stats_model_days", MODEL_DAY_COLUMNS, MODEL_DAY_KEY)
_UPSERT_KEY_DAY = _upsert_adding_sql("stats_key_days", KEY_DAY_COLUMNS, KEY_DAY_KEY)
_PRUNE_MINUTE_BUCKETS = f"DELETE FROM stats_endpoint_buckets WHERE span_s = {MINUTE_S} AND start_s < ?"
# Summed in SQL: a window comes back as one row per endpoint, however many buckets it spans, and the
# sums run in C rather than in Python over every bucket's ~100 columns.
_ENDPOINT_SUMS = ", ".join(_aggregated(c) for c in ENDPOINT_BUCKET_COLUMNS[len(ENDPOINT_BUCKET_KEY) :])
_SELECT_ENDPOINT_WINDOWS = (
    f"SELECT span_s, min(start_s), endpoint, {_ENDPOINT_SUMS} FROM stats_endpoint_buckets "
    "WHERE span_s = ? AND start_s >= ? GROUP BY span_s, endpoint ORDER BY endpoint"
)
_SELECT_ENDPOINT_COUNTS = (
    "SELECT endpoint, start_s, attempts, successes, failures FROM stats_endpoint_buckets "
    "WHERE span_s = ? AND start_s >= ? ORDER BY span_s, start_s, endpoint"
)
_SELECT_MODEL_DAYS = (
    f"SELECT {', '.join(MODEL_DAY_COLUMNS)} FROM stats_model_days WHERE day >= ? ORDER BY day, model"
)
_SELECT_KEY_DAYS = (
    f"SELECT {', '.join(KEY_DAY_COLUMNS)} FROM stats_key_days "
    "WHERE key_id = ? AND day >= ? ORDER BY key_id, day, model"
)
# One statement, so the ids are read from the same snapshot as the costs.
_SELECT_KEY_SPEND_LOG = (
    "SELECT day, cost_usd, NULL FROM stats_key_days WHERE key_id = ? "
    "UNION ALL SELECT NULL, 0, id FROM generations WHERE key_id = ? AND created_at >= ?"
)
_SELECT_KEY_GENERATIONS = (
    f"SELECT {', '.join(_GEN_COLUMNS)} FROM generations WHERE key_id = ? ORDER BY created_at DESC LIMIT ?"
)

_key_values = attrgetter(*KEY_FIELDS)
_INSERT_KEY = f"INSERT INTO api_keys ({', '.join(KEY_FIELDS)}) VALUES ({', '.join('?' * len(KEY_FIELDS))})"
_SELECT_KEYS = f"SELECT {', '.join(KEY_FIELDS)} FROM api_keys"


def _generation_row(g: GenerationRecord) -> tuple[Any, ...]:
    dropped = json.dumps(g.dropped_params) if g.dropped_params else "[]"
    return (*_gen_scalars(g), dropped)


def _generation_from_row(row: Sequence[Any], attempts: list[AttemptRecord]) -> GenerationRecord:
    values = dict(zip(_GEN_COLUMNS, row, strict=True))
    values["streamed"] = bool(values["streamed"])
    values["dropped_params"] = json.loads(values["dropped_params"])
    return GenerationRecord(**values, attempts=attempts)


def _attempt_from_row(row: Sequence[Any]) -> AttemptRecord:
    values = dict(zip(_ATT_COLUMNS, row, strict=True))
    values["streamed"] = bool(values["streamed"])
    values["counts_for_uptime"] = bool(values["counts_for_uptime"])
    return AttemptRecord(**values)


def _key_from_row(row: Sequence[Any]) -> KeyRecord:
    values = dict(zip(KEY_FIELDS, row, strict=True))
    values["is_admin"] = bool(values["is_admin"])
    return KeyRecord(**values)


def _insert_generations(conn: sqlite3.Connection, generations: Sequence[GenerationRecord]) -> None:
    with write_transaction(conn):
        fresh = _insert_new_generations(conn, generations)
        _BULK_ATTEMPTS.run(conn, _attempt_values(fresh))
        _add_to_aggregates(conn, aggregate(fresh))


def _generation_values(generations: Iterable[GenerationRecord]) -> list[Any]:
    """The generations' rows laid end to end, for ``_BULK_GENERATIONS``."""
    values: list[Any] = []
    extend = values.extend
    append = values.append
    dumps = json.dumps
    for g in generations:
        extend(_gen_scalars(g))
        dropped = g.dropped_params
        append(dumps(dropped) if dropped else "[]")
    return values


def _attempt_values(generations: Iterable[GenerationRecord]) -> list[Any]:
    """Their attempts' rows laid end to end, for ``_BULK_ATTEMPTS``."""
    values: list[Any] = []
    extend = values.extend
    append = values.append
    for g in generations:
        gid = g.id
        for a in g.attempts:
            append(gid)
            extend(_att_rest(a))
    return values


def _insert_new_generations(
    conn: sqlite3.Connection, generations: Sequence[GenerationRecord]
) -> Sequence[GenerationRecord]:
    """Insert the generations not stored yet and return them: only those may count in the aggregates."""
    conn.execute("SAVEPOINT new_generations")
    inserted = _BULK_GENERATIONS.run(conn, _generation_values(generations))
    if inserted == len(generations):  # the usual case: costs nothing more than the insert
        conn.execute("RELEASE new_generations")
        return generations
    # A batch retried after an ambiguous failure, or an id repeated: start over with the ones not stored,
    # the first of each id winning as ON CONFLICT DO NOTHING would have it.
    conn.execute("ROLLBACK TO new_generations")
    conn.execute("RELEASE new_generations")
    stored = _stored_generation_ids(conn, [g.id for g in generations])
    fresh: dict[str, GenerationRecord] = {}
    for generation in generations:
        if generation.id not in stored:
            fresh.setdefault(generation.id, generation)
    _BULK_GENERATIONS.run(conn, _generation_values(fresh.values()))
    return list(fresh.values())


def _chunks(values: Sequence[T]) -> list[Sequence[T]]:
    return [values[i : i + _IN_CHUNK] for i in range(0, len(values), _IN_CHUNK)]


def _stored_generation_ids(conn: sqlite3.Connection, ids: Sequence[str]) -> set[str]:
    stored: set[str] = set()
    for chunk in _chunks(ids):
        sql = f"SELECT id FROM generations WHERE id IN ({', '.join('?' * len(chunk))})"
        stored.update(row[0] for row in conn.execute(sql, chunk))
    return stored


def _add_to_aggregates(conn: sqlite3.Connection, deltas: BatchDeltas) -> None:
    if deltas.prune_minutes_before is not None:
        conn.execute(_PRUNE_MINUTE_BUCKETS, (deltas.prune_minutes_before,))
    conn.executemany(_UPSERT_ENDPOINT_BUCKET, [b.row() for b in deltas.endpoint_buckets])
    conn.executemany(_UPSERT_MODEL_DAY, [d.row() for d in deltas.model_days])
    conn.executemany(_UPSERT_KEY_DAY, [d.row() for d in deltas.key_days])


def _generations_with_attempts(
    conn: sqlite3.Connection, rows: Sequence[Sequence[Any]]
) -> list[GenerationRecord]:
    ids = [row[0] for row in rows]
    attempts: dict[str, list[AttemptRecord]] = {gid: [] for gid in ids}
    for chunk in _chunks(ids):
        sql = (
            f"SELECT {', '.join(_ATT_COLUMNS)} FROM attempts "
            f"WHERE generation_id IN ({', '.join('?' * len(chunk))}) ORDER BY generation_id, attempt"
        )
        for row in conn.execute(sql, chunk):
            attempts[row[0]].append(_attempt_from_row(row))
    return [_generation_from_row(row, attempts[row[0]]) for row in rows]


class SQLiteStore(Store):
    """``SQLiteStore("tokenmux.db")`` or ``SQLiteStore(":memory:")`` (one connection, for tests and demos)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        read_connections: int = 3,
        busy_timeout_s: float = 5.0,
    ) -> None:
        raw = os.fspath(path)
        self.memory = raw == MEMORY
        self.path = MEMORY if self.memory else str(Path(raw).expanduser().absolute())
        self._read_connections = read_connections
        self._busy_timeout_s = busy_timeout_s
        self._writer: WriterThread | None = None
        self._readers: ReaderPool | None = None

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    # -- connections --------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        bind_plainly()  # None and bool bound without the failed lookups (sqlite_binding.py)
        # Autocommit: transactions are only the explicit ones in write_transaction.
        return sqlite3.connect(
            self.path, timeout=self._busy_timeout_s, isolation_level=None, check_same_thread=False
        )

    def _connect_writer(self) -> sqlite3.Connection:
        conn = self._connect()
        try:
            if not self.memory:
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if mode != "wal":
                    log.warning(
                        "SQLite at %s cannot use WAL (journal mode %s); reads will wait", self.path, mode
                    )
            # NORMAL in WAL mode: a power cut may lose the last commits, never corrupt the file. The request
            # log trades those milliseconds for not waiting on fsync at every batch.
            conn.execute("PRAGMA synchronous=NORMAL")
            # Index pages stay cached between batches. The indexes grow at their ends, so the pages a batch
            # touches are few, and the pages it misses come from the operating system's cache. The cache
            # fills to its size, so its size is resident memory: 1 MiB wrote 20,300-20,700 records/s
            # against 21,500-22,200 with 4 MiB (bench_recorder.py, 200,000 records, two runs each), for
            # 3 MB less resident; 512 KiB wrote 25,400-31,900 against 27,100-36,300 with 1 MiB (six runs
            # each, alternating; medians 29,400 and 30,400), for 0.5 MB less. A gateway on this machine
            # serves at most about 2,500 requests/s, so the writer still keeps up more than tenfold.
            conn.execute("PRAGMA cache_size=-512")
            conn.execute("PRAGMA foreign_keys=ON")
            # A statement inserting many rows (sqlite_bulk.py) keeps a statement journal to undo itself; in
            # memory, not spilled to a temporary file with a write per page.
            conn.execute("PRAGMA temp_store=MEMORY")
        except BaseException:
            conn.close()
            raise
        return conn

    def _connect_reader(self) -> sqlite3.Connection:
        conn = self._connect()
        conn.execute("PRAGMA query_only=ON")
        # Readers answer small indexed queries (a key, a generation, the stats buckets of a window); pages
        # they miss come from the operating system's cache. 256 KiB each instead of the default 2 MiB.
        conn.execute("PRAGMA cache_size=-256")
        return conn

    async def open(self) -> None:
        if self._writer is not None:
            return
        if sqlite3.sqlite_version_info < MIN_SQLITE:
            raise StoreError(
                f"SQLite {sqlite3.sqlite_version} is too old; tokenmux needs 3.24 or newer "
                "(use a newer Python build, or PostgreSQL)"
            )
        if not self.memory:
            try:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the directory for the database {self.path}: {exc}") from exc
        writer = WriterThread(self._connect_writer, name="tokenmux-sqlite-writer")
        try:
            await writer.start()
            applied = await writer.run(apply_migrations)
        except sqlite3.Error as exc:
            await writer.stop()
            raise StoreError(
                f"cannot open the SQLite database {self.path}: {exc} "
                "(check the path is a writable file, or pass another with --database)"
            ) from exc
        if applied:
            log.info("database %s: applied migrations %s", self.path, ", ".join(applied))
        self._writer = writer
        if not self.memory:
            self._readers = ReaderPool(
                self._connect_reader, size=self._read_connections, name="tokenmux-sqlite-read"
            )

    async def close(self) -> None:
        writer, readers = self._writer, self._readers
        self._writer = self._readers = None
        if readers is not None:
            await readers.close()
        if writer is not None:
            await writer.stop()

    async def _write(self, job: Job[T]) -> T:
        if self._writer is None:
            raise StoreError("the store is not open (await store.open() first) or has been closed")
        try:
            return await self._writer.run(job)
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(f"could not write to the SQLite database {self.path}: {exc}") from exc

    async def _read(self, job: Job[T]) -> T:
        # An in-memory database exists only inside its one connection, so its reads queue with the writes.
        if self._readers is None:
            return await self._write(job)
        try:
            return await self._readers.run(job)
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(f"could not read the SQLite database {self.path}: {exc}") from exc

    async def ping(self) -> bool:
        if self._writer is None or not self._writer.alive:
            return False
        try:
            return await self._read(lambda conn: conn.execute("SELECT 1").fetchall() == [(1,)])
        except Exception:
            return False

    # -- request log --------------------------------------------------------------------------------

    async def write_batch(self, generations: Sequence[GenerationRecord]) -> None:
        if generations:
            await self._write(lambda conn: _insert_generations(conn, generations))

    async def get_generation(self, generation_id: str) -> GenerationRecord | None:
        def select(conn: sqlite3.Connection) -> GenerationRecord | None:
            rows = conn.execute(_SELECT_GENERATION, (generation_id,)).fetchall()
            if not rows:
                return None
            attempts = [_attempt_from_row(r) for r in conn.execute(_SELECT_ATTEMPTS, (generation_id,))]
            return _generation_from_row(rows[0], attempts)

        return await self._read(select)

    async def attempts_since(self, since: float, *, endpoint: str | None = None) -> list[AttemptRecord]:
        # With an endpoint the (endpoint, started_at) index answers; without one this scans the table.
        sql: str = _SELECT_ATTEMPTS_SINCE
        params: tuple[object, ...] = (since,)
        if endpoint is not None:
            sql, params = sql + " AND endpoint = ?", (since, endpoint)
        sql += " ORDER BY started_at, generation_id, attempt"
        return await self._read(lambda conn: [_attempt_from_row(r) for r in conn.execute(sql, params)])

    # -- aggregates ---------------------------------------------------------------------------------

    async def endpoint_windows(self, span_s: int, since_s: int) -> list[EndpointBucket]:
        def select(conn: sqlite3.Connection) -> list[EndpointBucket]:
            rows = conn.execute(_SELECT_ENDPOINT_WINDOWS, (span_s, since_s)).fetchall()
            return [EndpointBucket.from_row(row) for row in rows]

        return await self._read(select)

    async def endpoint_counts(self, span_s: int, since_s: int) -> list[BucketCounts]:
        def select(conn: sqlite3.Connection) -> list[BucketCounts]:
            return list(map(BucketCounts._make, conn.execute(_SELECT_ENDPOINT_COUNTS, (span_s, since_s))))

        return await self._read(select)

    async def model_days(self, since_day: str) -> list[ModelDay]:
        def select(conn: sqlite3.Connection) -> list[ModelDay]:
            return [ModelDay(*row) for row in conn.execute(_SELECT_MODEL_DAYS, (since_day,))]

        return await self._read(select)

    async def key_days(self, key_id: str, since_day: str) -> list[KeyDay]:
        def select(conn: sqlite3.Connection) -> list[KeyDay]:
            return [KeyDay(*row) for row in conn.execute(_SELECT_KEY_DAYS, (key_id, since_day))]

        return await self._read(select)

    async def key_spend_log(self, key_id: str, ids_since: float) -> tuple[list[tuple[str, float]], list[str]]:
        def select(conn: sqlite3.Connection) -> tuple[list[tuple[str, float]], list[str]]:
            rows = conn.execute(_SELECT_KEY_SPEND_LOG, (key_id, key_id, ids_since)).fetchall()
            days = sorted((row[0], row[1]) for row in rows if row[2] is None)
            return days, [row[2] for row in rows if row[2] is not None]

        return await self._read(select)

    async def recent_generations(self, key_id: str, limit: int = 20) -> list[GenerationRecord]:
        def select(conn: sqlite3.Connection) -> list[GenerationRecord]:
            rows = conn.execute(_SELECT_KEY_GENERATIONS, (key_id, limit)).fetchall()
            return _generations_with_attempts(conn, rows)

        return await self._read(select)

    # -- keys ---------------------------------------------------------------------------------------

    async def create_key(self, record: KeyRecord) -> None:
        def insert(conn: sqlite3.Connection) -> None:
            with write_transaction(conn):
                conn.execute(_INSERT_KEY, _key_values(record))

        try:
            await self._write(insert)
        except sqlite3.IntegrityError as exc:
            if "api_keys.name" in str(exc):
                raise KeyNameTaken(
                    f"an active key named {record.name!r} already exists; "
                    "revoke it first or choose another name"
                ) from exc
            raise StoreError(f"a key with this id or secret already exists ({exc})") from exc

    async def find_key(self, digest: str) -> KeyRecord | None:
        sql = _SELECT_KEYS + " WHERE digest = ? AND revoked_at IS NULL"
        rows = await self._read(lambda conn: conn.execute(sql, (digest,)).fetchall())
        return _key_from_row(rows[0]) if rows else None

    async def list_keys(self) -> list[KeyRecord]:
        sql = _SELECT_KEYS + " ORDER BY created_at, id"
        return await self._read(lambda conn: [_key_from_row(r) for r in conn.execute(sql)])

    async def revoke_key(self, id_or_name: str) -> bool:
        def revoke(conn: sqlite3.Connection) -> bool:
            # By id first, so a key whose name looks like another key's id cannot take both down.
            now = time.time()
            with write_transaction(conn):
                for column in ("id", "name"):
                    cur = conn.execute(
                        f"UPDATE api_keys SET revoked_at = ? WHERE {column} = ? AND revoked_at IS NULL",
                        (now, id_or_name),
                    )
                    if cur.rowcount:
                        return True
            return False

        return await self._write(revoke)

    async def get_key(self, id_or_name: str) -> KeyRecord | None:
        def select(conn: sqlite3.Connection) -> KeyRecord | None:
            return _active_key(conn, id_or_name)

        return await self._read(select)

    async def update_key(self, id_or_name: str, changes: Mapping[str, Any]) -> KeyRecord | None:
        columns = updatable_columns(changes)

        def update(conn: sqlite3.Connection) -> KeyRecord | None:
            with write_transaction(conn):
                key = _active_key(conn, id_or_name)
                if key is None:
                    return None
                if columns:
                    assignments = ", ".join(f"{c} = ?" for c in columns)
                    conn.execute(
                        f"UPDATE api_keys SET {assignments} WHERE id = ?",
                        (*(changes[c] for c in columns), key.id),
                    )
                return _active_key(conn, key.id)

        try:
            return await self._write(update)
        except sqlite3.IntegrityError as exc:
            raise KeyNameTaken(f"an active key named {changes.get('name')!r} already exists") from exc

    async def all_key_days(self, since_day: str) -> list[KeyDay]:
        sql = f"SELECT {', '.join(KEY_DAY_COLUMNS)} FROM stats_key_days WHERE day >= ? ORDER BY day, key_id, model"

        def select(conn: sqlite3.Connection) -> list[KeyDay]:
            return [KeyDay(*row) for row in conn.execute(sql, (since_day,))]

        return await self._read(select)

    async def write_contents(self, contents: Sequence[ContentRecord]) -> None:
        rows = [(c.id, c.key_id, c.created_at, c.request, c.response) for c in contents]

        def insert(conn: sqlite3.Connection) -> None:
            with write_transaction(conn):
                conn.executemany(
                    "INSERT INTO generation_contents (id, key_id, created_at, request, response) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                    rows,
                )

        await self._write(insert)

    async def get_contents(self, generation_id: str) -> ContentRecord | None:
        sql = "SELECT id, key_id, created_at, request, response FROM generation_contents WHERE id = ?"
        rows = await self._read(lambda conn: conn.execute(sql, (generation_id,)).fetchall())
        if not rows:
            return None
        id_, key_id, created_at, request, response = rows[0]
        return ContentRecord(id=id_, key_id=key_id, created_at=created_at, request=request, response=response)

    async def purge_contents(self, key_id: str, before: float) -> int:
        def delete(conn: sqlite3.Connection) -> int:
            with write_transaction(conn):
                cur = conn.execute(
                    "DELETE FROM generation_contents WHERE key_id = ? AND created_at < ?", (key_id, before)
                )
                return cur.rowcount

        return await self._write(delete)

    async def content_key_ids(self) -> list[str]:
        sql = "SELECT DISTINCT key_id FROM generation_contents"
        return await self._read(lambda conn: [row[0] for row in conn.execute(sql)])


def _active_key(conn: sqlite3.Connection, id_or_name: str) -> KeyRecord | None:
    # By id first, so a key whose name looks like another key's id cannot be taken for it.
    for column in ("id", "name"):
        row = conn.execute(
            _SELECT_KEYS + f" WHERE {column} = ? AND revoked_at IS NULL", (id_or_name,)
        ).fetchone()
        if row is not None:
            return _key_from_row(row)
    return None
