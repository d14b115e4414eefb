"""Schema migrations: an append-only list of ``mNNN_name(db)`` functions, applied in order.

Never edit or reorder a migration that has shipped; add a new one. Each runs in its own transaction and is
recorded by name in ``_migrations``, so opening a database twice (or from two processes at once) applies
nothing the second time.

The SQL is written to run unchanged on PostgreSQL: ``DOUBLE PRECISION`` rather than ``REAL`` (PostgreSQL's
REAL is 4 bytes, too coarse for unix timestamps), ``BOOLEAN``, ``TEXT``, plain and partial indexes.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from typing import Any, Protocol

from tokenmux.store.sqlite_threads import write_transaction

log = logging.getLogger(__name__)


class SQLExecutor(Protocol):
    """What a migration needs of a connection (sqlite3 and psycopg connections both fit)."""

    def execute(self, sql: str, /) -> Any: ...


def m001_initial(db: SQLExecutor) -> None:
    db.execute(
        """
        CREATE TABLE generations (
            id                  TEXT PRIMARY KEY,
            key_id              TEXT,
            requested_model     TEXT NOT NULL,
            model               TEXT,
            provider            TEXT,
            created_at          DOUBLE PRECISION NOT NULL,
            streamed            BOOLEAN NOT NULL,
            finish_reason       TEXT,
            status              TEXT NOT NULL,
            http_status         INTEGER NOT NULL,
            error_message       TEXT,
            prompt_tokens       INTEGER NOT NULL DEFAULT 0,
            completion_tokens   INTEGER NOT NULL DEFAULT 0,
            cached_tokens       INTEGER NOT NULL DEFAULT 0,
            cache_write_tokens  INTEGER NOT NULL DEFAULT 0,
            reasoning_tokens    INTEGER NOT NULL DEFAULT 0,
            cost_usd            DOUBLE PRECISION NOT NULL DEFAULT 0,
            ttft_ms             DOUBLE PRECISION,
            latency_ms          DOUBLE PRECISION NOT NULL,
            generation_ms       DOUBLE PRECISION,
            throughput_tps      DOUBLE PRECISION,
            dropped_params      TEXT NOT NULL DEFAULT '[]'
        )
        """
    )
    # A key's activity page reads its generations by time.
    db.execute("CREATE INDEX generations_key_created ON generations (key_id, created_at)")
    db.execute(
        """
        CREATE TABLE attempts (
            generation_id       TEXT NOT NULL REFERENCES generations (id) ON DELETE CASCADE,
            attempt             INTEGER NOT NULL,
            model               TEXT NOT NULL,
            provider            TEXT NOT NULL,
            endpoint            TEXT NOT NULL,
            outcome             TEXT NOT NULL,
            error_class         TEXT,
            error_message       TEXT,
            upstream_status     INTEGER,
            prompt_tokens       INTEGER NOT NULL DEFAULT 0,
            completion_tokens   INTEGER NOT NULL DEFAULT 0,
            cached_tokens       INTEGER NOT NULL DEFAULT 0,
            cache_write_tokens  INTEGER NOT NULL DEFAULT 0,
            reasoning_tokens    INTEGER NOT NULL DEFAULT 0,
            cost_usd            DOUBLE PRECISION NOT NULL DEFAULT 0,
            ttft_ms             DOUBLE PRECISION,
            latency_ms          DOUBLE PRECISION NOT NULL,
            generation_ms       DOUBLE PRECISION,
            throughput_tps      DOUBLE PRECISION,
            streamed            BOOLEAN NOT NULL,
            finish_reason       TEXT,
            started_at          DOUBLE PRECISION NOT NULL,
            counts_for_uptime   BOOLEAN NOT NULL,
            PRIMARY KEY (generation_id, attempt)
        )
        """
    )
    # Live figures (latency, throughput, uptime) are per endpoint over a recent window.
    db.execute("CREATE INDEX attempts_endpoint_started ON attempts (endpoint, started_at)")
    db.execute(
        """
        CREATE TABLE api_keys (
            id              TEXT PRIMARY KEY,
            name            TEXT NOT NULL,
            digest          TEXT NOT NULL UNIQUE,
            display         TEXT NOT NULL,
            created_at      DOUBLE PRECISION NOT NULL,
            revoked_at      DOUBLE PRECISION,
            is_admin        BOOLEAN NOT NULL DEFAULT FALSE,
            credit_usd      DOUBLE PRECISION,
            rpm             INTEGER,
            tpm             INTEGER,
            allowed_models  TEXT,
            expires_at      DOUBLE PRECISION
        )
        """
    )
    # A revoked key's name may be reused; two live keys may not share one.
    db.execute("CREATE UNIQUE INDEX api_keys_active_name ON api_keys (name) WHERE revoked_at IS NULL")


def m002_stats(db: SQLExecutor) -> None:
    """The aggregate tables behind live figures (``tokenmux.store.buckets`` says what each row means).

    The bins of a latency or throughput histogram are one integer column each, so that merging a batch
    into a stored bucket is plain addition in one upsert: atomic when several replicas write the same
    minute, and the same SQL on PostgreSQL. A zero costs no bytes in an SQLite row.
    """

    def distribution(prefix: str) -> str:
        bins = ",\n".join(f"            {prefix}_h{i:02d} BIGINT NOT NULL DEFAULT 0" for i in range(48))
        return f"""
            {prefix}_count BIGINT NOT NULL DEFAULT 0,
            {prefix}_sum   DOUBLE PRECISION NOT NULL DEFAULT 0,
            {prefix}_min   DOUBLE PRECISION,
            {prefix}_max   DOUBLE PRECISION,
{bins}"""

    # Windows are read by (span_s, start_s) range across all endpoints: the primary key's order.
    db.execute(
        f"""
        CREATE TABLE stats_endpoint_buckets (
            span_s      INTEGER NOT NULL,
            start_s     BIGINT NOT NULL,
            endpoint    TEXT NOT NULL,
            attempts    BIGINT NOT NULL DEFAULT 0,
            successes   BIGINT NOT NULL DEFAULT 0,
            failures    BIGINT NOT NULL DEFAULT 0,{distribution("ttft")},{distribution("tps")},
            PRIMARY KEY (span_s, start_s, endpoint)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE stats_model_days (
            day                 TEXT NOT NULL,
            model               TEXT NOT NULL,
            prompt_tokens       BIGINT NOT NULL DEFAULT 0,
            completion_tokens   BIGINT NOT NULL DEFAULT 0,
            PRIMARY KEY (day, model)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE stats_key_days (
            key_id              TEXT NOT NULL,
            day                 TEXT NOT NULL,
            model               TEXT NOT NULL,
            requests            BIGINT NOT NULL DEFAULT 0,
            prompt_tokens       BIGINT NOT NULL DEFAULT 0,
            completion_tokens   BIGINT NOT NULL DEFAULT 0,
            cost_usd            DOUBLE PRECISION NOT NULL DEFAULT 0,
            PRIMARY KEY (key_id, day, model)
        )
        """
    )


def m003_key_limits(db: SQLExecutor) -> None:
    """What a key may spend and reach (``tokenmux.limits``), and prompts kept for keys that opt in."""
    for column in (
        "budget_usd DOUBLE PRECISION",
        "budget_period TEXT",
        "concurrency INTEGER",
        "allowed_providers TEXT",
        "data_policy TEXT",
        "prompt_retention_days INTEGER",
    ):
        db.execute(f"ALTER TABLE api_keys ADD COLUMN {column}")
    # Only for keys whose owner asked for it; the retention cleanup deletes by age, key by key.
    db.execute(
        """
        CREATE TABLE generation_contents (
            id          TEXT PRIMARY KEY,
            key_id      TEXT NOT NULL,
            created_at  DOUBLE PRECISION NOT NULL,
            request     TEXT NOT NULL,
            response    TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX generation_contents_key_created ON generation_contents (key_id, created_at)")


def m004_observed_timing(db: SQLExecutor) -> None:
    """First-token latency and throughput only where they were seen: in streamed calls.

    Until now a non-streamed call, whose answer arrives whole, was recorded with its total latency as its
    first-token latency (and its tokens over that time as its throughput). In the request log such calls
    now have neither, and their whole call as their generation time. The endpoint buckets' first-token
    distributions are rebuilt from the log, which holds every attempt each bucket counted (they are
    written in one transaction), so the figures read as if the rule had always held. Throughput
    distributions always left those calls out and stay as they are.

    Plain statements, the same on SQLite and PostgreSQL: each bucket's distribution is summed by a
    subquery over its endpoint's attempts in its time span (the ``attempts_endpoint_started`` index), the
    histogram bins as one ``count(CASE ...)`` each, at the edges ``store.distribution`` had when this
    migration was written (10 ms to 10 minutes, 48 log-scale bins).
    """
    for table, whole_call in (("generations", "ttft_ms"), ("attempts", "latency_ms")):
        # generations.ttft_ms of such a call was its serving attempt's whole latency.
        db.execute(
            f"UPDATE {table} SET generation_ms = {whole_call}, ttft_ms = NULL, throughput_tps = NULL "
            "WHERE NOT streamed AND ttft_ms IS NOT NULL"
        )
    bins = 48
    low, high = 10.0, 600_000.0
    ratio = (high / low) ** (1.0 / (bins - 2))
    edges = [low * ratio**i for i in range(bins - 2)] + [high]
    # Bin i holds edges[i-1] <= ttft < edges[i]; the first is open below, the last above.
    conditions = [f"ttft_ms < {edges[0]!r}"]
    conditions += [f"ttft_ms >= {edges[i - 1]!r} AND ttft_ms < {edges[i]!r}" for i in range(1, bins - 1)]
    conditions.append(f"ttft_ms >= {edges[-1]!r}")
    columns = ["ttft_count", "ttft_sum", "ttft_min", "ttft_max"] + [f"ttft_h{i:02d}" for i in range(bins)]
    sums = ["count(*)", "coalesce(sum(ttft_ms), 0)", "min(ttft_ms)", "max(ttft_ms)"]
    sums += [f"count(CASE WHEN {condition} THEN 1 END)" for condition in conditions]
    bucket = "stats_endpoint_buckets"
    db.execute(
        f"UPDATE {bucket} SET ({', '.join(columns)}) = (SELECT {', '.join(sums)} FROM attempts "
        f"WHERE attempts.endpoint = {bucket}.endpoint AND attempts.started_at >= {bucket}.start_s "
        f"AND attempts.started_at < {bucket}.start_s + {bucket}.span_s "
        "AND attempts.outcome = 'success' AND attempts.streamed AND attempts.ttft_ms IS NOT NULL)"
    )


def m005_cache_hits(db: SQLExecutor) -> None:
    """Prompt and cached prompt tokens of each endpoint bucket's successes: its cache-hit rate, which
    routing's default score and the model page use.

    Filled from the request log, which holds every attempt each bucket counted, so the rate of the last
    day is known at once after the upgrade. One correlated subquery per bucket over the
    ``attempts_endpoint_started`` index, as in ``m004_observed_timing``; the same SQL on both databases.
    """
    for column in ("prompt_tokens", "cached_tokens"):
        db.execute(f"ALTER TABLE stats_endpoint_buckets ADD COLUMN {column} BIGINT NOT NULL DEFAULT 0")
    bucket = "stats_endpoint_buckets"
    db.execute(
        f"UPDATE {bucket} SET (prompt_tokens, cached_tokens) = (SELECT coalesce(sum(prompt_tokens), 0), "
        f"coalesce(sum(cached_tokens), 0) FROM attempts WHERE attempts.endpoint = {bucket}.endpoint "
        f"AND attempts.started_at >= {bucket}.start_s AND attempts.started_at < {bucket}.start_s + "
        f"{bucket}.span_s AND attempts.outcome = 'success') WHERE successes > 0"
    )


Migration = Callable[[SQLExecutor], None]

MIGRATIONS: tuple[Migration, ...] = (
    m001_initial,
    m002_stats,
    m003_key_limits,
    m004_observed_timing,
    m005_cache_hits,
)


def apply_migrations(conn: sqlite3.Connection) -> list[str]:
    """Apply, in order, the migrations this database has not had; return their names.

    ``conn`` must be in autocommit mode (``isolation_level=None``) so that the transactions here are the
    only ones. ``BEGIN IMMEDIATE`` takes the write lock before checking, so two processes opening a new
    database at once cannot both apply the same migration.
    """
    conn.execute(
        "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at DOUBLE PRECISION)"
    )
    applied: list[str] = []
    for migration in MIGRATIONS:
        name = migration.__name__
        with write_transaction(conn):
            if conn.execute("SELECT 1 FROM _migrations WHERE name = ?", (name,)).fetchone() is None:
                migration(conn)
                conn.execute("INSERT INTO _migrations (name, applied_at) VALUES (?, ?)", (name, time.time()))
                applied.append(name)
    known = {m.__name__ for m in MIGRATIONS}
    unknown = [row[0] for row in conn.execute("SELECT name FROM _migrations") if row[0] not in known]
    if unknown:
        # A newer tokenmux migrated this file. Older code usually still works (it names its columns), so
        # say so rather than refuse to start.
        log.warning("database has migrations this version does not know (%s); upgrade tokenmux", unknown)
    return applied
