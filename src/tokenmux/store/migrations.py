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


Migration = Callable[[SQLExecutor], None]

MIGRATIONS: tuple[Migration, ...] = (m001_initial, m002_stats, m003_key_limits)


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
