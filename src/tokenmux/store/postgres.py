"""The shared store: PostgreSQL through an asyncpg connection pool, for several gateway replicas.

``PostgresStore("postgresql://user:password@host:5432/tokenmux")``. Query parameters that are not
connection options become session settings, so ``?search_path=tokenmux`` keeps the tables in a schema of
their own (it must exist). Messages and ``repr`` name the user, host and database, never the password.

Every wait is bounded: connecting and borrowing a connection by ``connect_timeout_s``, each statement by
``statement_timeout_s`` (enforced by the server, and by the client too in case the server is frozen), and
``ping`` by ``PING_TIMEOUT_S``. A failure that retrying may cure (server down, restarting, out of
connections, a deadlock, a timeout) is raised as ``StoreUnavailable``, so the recorder keeps its records.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from operator import itemgetter
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import asyncpg
from asyncpg import exceptions as pg

from tokenmux.errors import KeyNameTaken, StoreError, StoreUnavailable
from tokenmux.store import postgres_sql as sql
from tokenmux.store.base import Store, updatable_columns
from tokenmux.store.buckets import (
    ENDPOINT_BUCKET_KEY,
    KEY_DAY_KEY,
    MODEL_DAY_KEY,
    BucketCounts,
    EndpointBucket,
    KeyDay,
    ModelDay,
    aggregate,
)
from tokenmux.store.postgres_schema import apply_migrations
from tokenmux.store.records import AttemptRecord, ContentRecord, GenerationRecord, KeyRecord

log = logging.getLogger(__name__)

# Each aggregate row starts with its table's primary key.
_BUCKET_KEY = itemgetter(*range(len(ENDPOINT_BUCKET_KEY)))
_MODEL_DAY_KEY = itemgetter(*range(len(MODEL_DAY_KEY)))
_KEY_DAY_KEY = itemgetter(*range(len(KEY_DAY_KEY)))

PING_TIMEOUT_S = 2.0
CLOSE_TIMEOUT_S = 5.0

# Failures that say nothing about the data: the same call may succeed later.
_TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, unreachable
    TimeoutError,  # connecting, borrowing a connection, or a statement took too long
    pg.PostgresConnectionError,  # the connection broke (08xxx)
    pg.OperatorInterventionError,  # server shutting down or starting, statement cancelled (57xxx)
    pg.InsufficientResourcesError,  # disk full, out of memory, too many connections (53xxx)
    pg.TransactionRollbackError,  # deadlock or serialization failure: a retry succeeds (40xxx)
    pg.ReadOnlySQLTransactionError,  # a standby after a failover, until the new primary is in place
    pg.InvalidCachedStatementError,  # another replica migrated the schema under a prepared statement
)


def _driver_dsn(url: str) -> str:
    """The URL as asyncpg takes it: SQLAlchemy's ``postgresql+driver://`` spelling is accepted too."""
    scheme, sep, rest = url.partition("://")
    return f"postgresql://{rest}" if sep and scheme.lower().startswith("postgres") else url


def _described(dsn: str) -> str:
    """``user@host:port/database``: enough to find the server, nothing to log in with."""
    parts = urlsplit(dsn)
    userinfo, at, hosts = parts.netloc.rpartition("@")
    user = unquote(userinfo.partition(":")[0]) if at else ""
    return f"{user + '@' if user else ''}{hosts or 'localhost'}/{unquote(parts.path.lstrip('/'))}"


def _secrets_in(dsn: str) -> list[str]:
    """Every spelling of a password the URL carries, to keep out of messages."""
    parts = urlsplit(dsn)
    userinfo = parts.netloc.rpartition("@")[0]
    found = [userinfo.partition(":")[2], *parse_qs(parts.query).get("password", [])]
    return [s for secret in found if secret for s in {secret, unquote(secret)}]


class PostgresStore(Store):
    """``PostgresStore(url)``: a pool of ``min_connections`` to ``max_connections`` connections."""

    def __init__(
        self,
        url: str,
        *,
        min_connections: int = 1,
        max_connections: int = 10,
        connect_timeout_s: float = 5.0,
        statement_timeout_s: float = 10.0,
        migration_timeout_s: float = 300.0,
    ) -> None:
        self._dsn = _driver_dsn(url.strip())
        self.where = _described(self._dsn)
        self._secrets = _secrets_in(self._dsn)
        self._min_connections = min_connections
        self._max_connections = max(min_connections, max_connections)
        self._connect_timeout_s = connect_timeout_s
        self._statement_timeout_s = statement_timeout_s
        self._migration_timeout_s = migration_timeout_s
        self._pool: asyncpg.Pool | None = None
        # Batches are written one at a time, in the order submitted, as SQLite's single writer does: a
        # repeated generation id keeps the first batch's version, and this process's own transactions
        # never wait on each other's bucket rows.
        self._write_lock = asyncio.Lock()
        self._probes: set[asyncio.Future[bool]] = set()  # pings still finishing after their deadline

    def __repr__(self) -> str:
        return f"PostgresStore({self.where!r})"

    # -- connections --------------------------------------------------------------------------------

    def _say(self, what: str, exc: BaseException | None = None) -> str:
        message = f"{what} (PostgreSQL at {self.where})"
        if exc is not None:
            message += f": {type(exc).__name__}: {exc}" if str(exc) else f": {type(exc).__name__}"
        for secret in self._secrets:
            message = message.replace(secret, "***")
        return message

    def _server_settings(self) -> dict[str, str]:
        # Defaults only: a setting named in the URL (?statement_timeout=...) wins, as the user meant it to.
        defaults = {
            "application_name": "tokenmux",
            "statement_timeout": str(int(self._statement_timeout_s * 1000)),
            "idle_in_transaction_session_timeout": str(int(self._statement_timeout_s * 3000)),
        }
        in_url = parse_qs(urlsplit(self._dsn).query)
        return {name: value for name, value in defaults.items() if name not in in_url}

    async def open(self) -> None:
        if self._pool is not None:
            return
        try:
            pool = await asyncpg.create_pool(
                self._dsn,
                min_size=self._min_connections,
                max_size=self._max_connections,
                timeout=self._connect_timeout_s,
                # The client's own limit, a little over the server's: it ends a wait on a frozen server.
                command_timeout=self._statement_timeout_s + 2.0,
                server_settings=self._server_settings(),
                max_inactive_connection_lifetime=60.0,
            )
        except _TRANSIENT as exc:
            raise StoreUnavailable(self._say("cannot connect to the database", exc)) from exc
        except (asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as exc:
            raise StoreError(
                self._say("cannot open the database (check the URL, user and database name)", exc)
            ) from exc
        try:
            async with pool.acquire() as conn:
                applied = await apply_migrations(conn, self._migration_timeout_s)
        except BaseException as exc:
            await self._shut(pool)
            if isinstance(exc, _TRANSIENT):
                raise StoreUnavailable(self._say("cannot migrate the database", exc)) from exc
            if isinstance(exc, asyncpg.PostgresError | asyncpg.InterfaceError):
                raise StoreError(
                    self._say("cannot migrate the database (does the schema in search_path exist?)", exc)
                ) from exc
            raise
        if applied:
            log.info("database %s: applied migrations %s", self.where, ", ".join(applied))
        self._pool = pool

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await self._shut(pool)

    @staticmethod
    async def _shut(pool: asyncpg.Pool) -> None:
        try:
            # Waits for borrowed connections; one stuck on a frozen server must not hold shutdown.
            await asyncio.wait_for(pool.close(), CLOSE_TIMEOUT_S)
        except Exception:
            pool.terminate()

    @contextlib.asynccontextmanager
    async def _connection(self, doing: str) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection; database errors raised in the block come out as ``StoreError``s."""
        pool = self._pool
        if pool is None:
            raise StoreError("the store is not open (await store.open() first) or has been closed")
        try:
            async with pool.acquire(timeout=self._connect_timeout_s) as conn:
                try:
                    yield conn
                except (TimeoutError, asyncio.CancelledError):
                    # A hung server, or a caller that stopped waiting (its own timeout, a client gone):
                    # drop the connection rather than wait out a cancel request sent to it.
                    conn.terminate()
                    raise
        except StoreError:
            raise
        except _TRANSIENT as exc:
            raise StoreUnavailable(self._say(f"could not {doing}", exc)) from exc
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            if self._pool is None:
                raise StoreError("the store was closed while in use") from exc
            raise StoreError(self._say(f"could not {doing}", exc)) from exc

    async def ping(self) -> bool:
        pool = self._pool
        if pool is None:
            return False
        # The probe is not awaited past the deadline, nor cancelled: after a query times out asyncpg hands
        # the connection back to the pool (shielded from cancellation), which on a frozen server takes as
        # long again; the probe ends by itself once that is done.
        probe = asyncio.ensure_future(self._probe(pool))
        self._probes.add(probe)
        probe.add_done_callback(self._probes.discard)
        try:
            return await asyncio.wait_for(asyncio.shield(probe), PING_TIMEOUT_S)
        except TimeoutError:
            return False

    async def _probe(self, pool: asyncpg.Pool) -> bool:
        try:
            async with pool.acquire(timeout=PING_TIMEOUT_S) as conn:
                return bool(await conn.fetchval("SELECT 1", timeout=PING_TIMEOUT_S) == 1)
        except Exception:
            return False

    # -- request log --------------------------------------------------------------------------------

    async def write_batch(self, generations: Sequence[GenerationRecord]) -> None:
        if not generations:
            return
        unique = _first_of_each_id(generations)
        async with self._write_lock, self._connection("write the request log") as conn, conn.transaction():
            # Only generations not stored yet are written and aggregated: a retried batch adds nothing.
            stored = await conn.fetch(sql.SELECT_STORED_IDS, [g.id for g in unique])
            fresh = _without(unique, {row[0] for row in stored}) if stored else unique
            if not fresh:
                return
            try:
                await conn.copy_records_to_table(
                    "generations", records=map(sql.generation_row, fresh), columns=sql.GEN_COLUMNS
                )
            except pg.UniqueViolationError as exc:
                # Another process stored one of these ids since the check (the write lock rules out this
                # one); the check finds it on the retry.
                raise StoreUnavailable(self._say("a generation was stored concurrently; retry", exc)) from exc
            attempts = sql.attempt_rows(fresh)
            if attempts:
                await conn.copy_records_to_table("attempts", records=attempts, columns=sql.ATT_COLUMNS)
            deltas = aggregate(fresh)
            if deltas.prune_minutes_before is not None:
                await conn.execute(sql.PRUNE_MINUTE_BUCKETS, deltas.prune_minutes_before)
            # Rows in primary-key order, so that replicas adding to the same rows lock them in the same
            # order and cannot deadlock.
            for statement, rows, key in (
                (sql.UPSERT_ENDPOINT_BUCKET, [b.row() for b in deltas.endpoint_buckets], _BUCKET_KEY),
                (sql.UPSERT_MODEL_DAY, [d.row() for d in deltas.model_days], _MODEL_DAY_KEY),
                (sql.UPSERT_KEY_DAY, [d.row() for d in deltas.key_days], _KEY_DAY_KEY),
            ):
                if rows:
                    await conn.executemany(statement, sorted(rows, key=key))

    async def get_generation(self, generation_id: str) -> GenerationRecord | None:
        async with self._connection("read a generation") as conn:
            row = await conn.fetchrow(sql.SELECT_GENERATION, generation_id)
            if row is None:
                return None
            attempts = await conn.fetch(sql.SELECT_ATTEMPTS_OF, [generation_id])
        return sql.generation_from_row(row, [sql.attempt_from_row(a) for a in attempts])

    async def attempts_since(self, since: float, *, endpoint: str | None = None) -> list[AttemptRecord]:
        # With an endpoint the (endpoint, started_at) index answers; without one this scans the table.
        query: str = sql.SELECT_ATTEMPTS_SINCE
        params: tuple[object, ...] = (since,)
        if endpoint is not None:
            query, params = query + " AND endpoint = $2", (since, endpoint)
        async with self._connection("read attempts") as conn:
            rows = await conn.fetch(query + sql.ATTEMPTS_SINCE_ORDER, *params)
        return [sql.attempt_from_row(r) for r in rows]

    # -- aggregates ---------------------------------------------------------------------------------

    async def endpoint_windows(self, span_s: int, since_s: int) -> list[EndpointBucket]:
        async with self._connection("read endpoint figures") as conn:
            rows = await conn.fetch(sql.SELECT_ENDPOINT_WINDOWS, span_s, since_s)
        return [EndpointBucket.from_row(tuple(row)) for row in rows]

    async def endpoint_counts(self, span_s: int, since_s: int) -> list[BucketCounts]:
        async with self._connection("read endpoint counts") as conn:
            rows = await conn.fetch(sql.SELECT_ENDPOINT_COUNTS, span_s, since_s)
        return [BucketCounts._make(row) for row in rows]

    async def model_days(self, since_day: str) -> list[ModelDay]:
        async with self._connection("read model figures") as conn:
            rows = await conn.fetch(sql.SELECT_MODEL_DAYS, since_day)
        return [ModelDay(*row) for row in rows]

    async def key_days(self, key_id: str, since_day: str) -> list[KeyDay]:
        async with self._connection("read key activity") as conn:
            rows = await conn.fetch(sql.SELECT_KEY_DAYS, key_id, since_day)
        return [KeyDay(*row) for row in rows]

    async def key_spend_log(self, key_id: str, ids_since: float) -> tuple[list[tuple[str, float]], list[str]]:
        async with self._connection("read a key's spend") as conn:
            rows = await conn.fetch(sql.SELECT_KEY_SPEND_LOG, key_id, ids_since)
        return _spend_log(rows)

    async def recent_generations(self, key_id: str, limit: int = 20) -> list[GenerationRecord]:
        async with self._connection("read a key's generations") as conn:
            rows = await conn.fetch(sql.SELECT_KEY_GENERATIONS, key_id, limit)
            attempt_rows = await conn.fetch(sql.SELECT_ATTEMPTS_OF, [row["id"] for row in rows])
        attempts: dict[str, list[AttemptRecord]] = {row["id"]: [] for row in rows}
        for attempt_row in attempt_rows:
            attempts[attempt_row["generation_id"]].append(sql.attempt_from_row(attempt_row))
        return [sql.generation_from_row(row, attempts[row["id"]]) for row in rows]

    # -- keys ---------------------------------------------------------------------------------------

    async def create_key(self, record: KeyRecord) -> None:
        async with self._connection("store a key") as conn:
            try:
                await conn.execute(sql.INSERT_KEY, *sql.key_values(record))
            except pg.UniqueViolationError as exc:
                if exc.constraint_name == sql.ACTIVE_KEY_NAME_INDEX:
                    raise KeyNameTaken(
                        f"an active key named {record.name!r} already exists; "
                        "revoke it first or choose another name"
                    ) from exc
                raise StoreError(
                    f"a key with this id or secret already exists ({exc.constraint_name})"
                ) from exc

    async def find_key(self, digest: str) -> KeyRecord | None:
        async with self._connection("look up a key") as conn:
            row = await conn.fetchrow(sql.SELECT_ACTIVE_KEY, digest)
        return None if row is None else sql.key_from_row(row)

    async def list_keys(self) -> list[KeyRecord]:
        async with self._connection("list keys") as conn:
            rows = await conn.fetch(sql.SELECT_ALL_KEYS)
        return [sql.key_from_row(row) for row in rows]

    async def revoke_key(self, id_or_name: str) -> bool:
        now = time.time()
        async with self._connection("revoke a key") as conn, conn.transaction():
            # By id first, so a key whose name looks like another key's id cannot take both down.
            for column in ("id", "name"):
                status = await conn.execute(
                    f"UPDATE api_keys SET revoked_at = $1 WHERE {column} = $2 AND revoked_at IS NULL",
                    now,
                    id_or_name,
                )
                if status != "UPDATE 0":
                    return True
        return False

    async def get_key(self, id_or_name: str) -> KeyRecord | None:
        async with self._connection("look up a key") as conn:
            return await _active_key(conn, id_or_name)

    async def update_key(self, id_or_name: str, changes: Mapping[str, Any]) -> KeyRecord | None:
        columns = updatable_columns(changes)
        async with self._connection("update a key") as conn, conn.transaction():
            key = await _active_key(conn, id_or_name)
            if key is None:
                return None
            if columns:
                assignments = ", ".join(f"{c} = ${i}" for i, c in enumerate(columns, start=2))
                try:
                    await conn.execute(
                        f"UPDATE api_keys SET {assignments} WHERE id = $1",
                        key.id,
                        *(changes[c] for c in columns),
                    )
                except pg.UniqueViolationError as exc:
                    raise KeyNameTaken(f"an active key named {changes.get('name')!r} already exists") from exc
            return await _active_key(conn, key.id)

    async def all_key_days(self, since_day: str) -> list[KeyDay]:
        async with self._connection("read key usage") as conn:
            rows = await conn.fetch(sql.SELECT_ALL_KEY_DAYS, since_day)
        return [KeyDay(*row) for row in rows]

    # -- prompts and answers of keys that opted in ----------------------------------------------------

    async def write_contents(self, contents: Sequence[ContentRecord]) -> None:
        rows = [(c.id, c.key_id, c.created_at, c.request, c.response) for c in contents]
        async with self._connection("store prompts") as conn:
            await conn.executemany(sql.INSERT_CONTENT, rows)

    async def get_contents(self, generation_id: str) -> ContentRecord | None:
        async with self._connection("read stored prompts") as conn:
            row = await conn.fetchrow(sql.SELECT_CONTENT, generation_id)
        return None if row is None else ContentRecord(**row)

    async def purge_contents(self, key_id: str, before: float) -> int:
        async with self._connection("delete stored prompts") as conn:
            status = await conn.execute(
                "DELETE FROM generation_contents WHERE key_id = $1 AND created_at < $2", key_id, before
            )
        return int(status.rsplit(" ", 1)[-1])

    async def content_key_ids(self) -> list[str]:
        async with self._connection("read stored prompts") as conn:
            rows = await conn.fetch("SELECT DISTINCT key_id FROM generation_contents")
        return [row[0] for row in rows]


async def _active_key(conn: asyncpg.Connection, id_or_name: str) -> KeyRecord | None:
    # By id first, so a key whose name looks like another key's id cannot be taken for it.
    for column in ("id", "name"):
        row = await conn.fetchrow(
            sql.SELECT_KEYS + f" WHERE {column} = $1 AND revoked_at IS NULL", id_or_name
        )
        if row is not None:
            return sql.key_from_row(row)
    return None


def _first_of_each_id(generations: Sequence[GenerationRecord]) -> Sequence[GenerationRecord]:
    """The batch without repeated ids, the first of each kept (as SQLite's ON CONFLICT DO NOTHING keeps
    it; COPY would refuse the whole batch)."""
    if len({g.id for g in generations}) == len(generations):
        return generations
    first: dict[str, GenerationRecord] = {}
    for generation in generations:
        first.setdefault(generation.id, generation)
    return list(first.values())


def _without(generations: Sequence[GenerationRecord], ids: set[str]) -> list[GenerationRecord]:
    return [g for g in generations if g.id not in ids]


def _spend_log(rows: Sequence[Sequence[Any]]) -> tuple[list[tuple[str, float]], list[str]]:
    days = sorted((row[0], row[1]) for row in rows if row[2] is None)
    return days, [row[2] for row in rows if row[2] is not None]
