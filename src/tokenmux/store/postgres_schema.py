"""Bringing a PostgreSQL schema up to date: the same migrations as SQLite, safe for replicas starting together.

The migrations are the same functions SQLite runs (``migrations.MIGRATIONS``): each is called with a
stand-in connection that keeps its statements, which then run here on asyncpg. So a migration must be
statements only, never reading a result (none does); one that needs different SQL per database has to
say so itself.

Replicas may start at once: every migration runs in its own transaction holding an advisory lock on the
schema, so the second replica waits, then finds the migration recorded and applies nothing.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import asyncpg

from tokenmux.store.migrations import MIGRATIONS, Migration

log = logging.getLogger(__name__)

# The first key of the two-key advisory lock: "tmux" in ASCII, so it cannot be mistaken for another
# application's lock; the second key is the schema's, so two schemas of one database migrate in parallel.
_LOCK_CLASS = 0x746D7578
_LOCK = "SELECT pg_advisory_xact_lock($1, hashtext(coalesce(current_schema(), '')))"
_CREATE_LEDGER = "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at DOUBLE PRECISION)"


class _StatementList:
    """What a migration function sees as its connection: it keeps the SQL instead of running it."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def execute(self, sql: str, /) -> Any:
        self.statements.append(sql)


def statements_of(migration: Migration) -> list[str]:
    stand_in = _StatementList()
    migration(stand_in)
    return stand_in.statements


async def apply_migrations(conn: asyncpg.Connection, timeout_s: float) -> list[str]:
    """Apply, in order, the migrations this schema has not had; return their names. A migration may
    take up to ``timeout_s`` (waiting for another replica's included), longer than a usual statement."""
    limit = f"SET LOCAL statement_timeout = {int(timeout_s * 1000)}"
    async with conn.transaction():
        await conn.execute(limit)
        await conn.execute(_LOCK, _LOCK_CLASS, timeout=timeout_s)
        await conn.execute(_CREATE_LEDGER)  # in current_schema(), the first of search_path that exists
    applied: list[str] = []
    for migration in MIGRATIONS:
        name = migration.__name__
        async with conn.transaction():
            await conn.execute(limit)
            await conn.execute(_LOCK, _LOCK_CLASS, timeout=timeout_s)
            if await conn.fetchval("SELECT 1 FROM _migrations WHERE name = $1", name) is None:
                for statement in statements_of(migration):
                    await conn.execute(statement, timeout=timeout_s)
                await conn.execute(
                    "INSERT INTO _migrations (name, applied_at) VALUES ($1, $2)", name, time.time()
                )
                applied.append(name)
    known = {m.__name__ for m in MIGRATIONS}
    unknown = [row[0] for row in await conn.fetch("SELECT name FROM _migrations") if row[0] not in known]
    if unknown:
        # A newer tokenmux migrated this schema; older code names its columns, so it usually still works.
        log.warning("database has migrations this version does not know (%s); upgrade tokenmux", unknown)
    return applied
