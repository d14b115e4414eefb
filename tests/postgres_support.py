"""The machine's PostgreSQL for tests: found once, a fresh schema per test, dropped afterwards.

Tests that need it call ``require_server()`` (or use a fixture built on ``fresh_schema``), which skips with
``NOT_REACHABLE`` when no server answers, so the suite passes on a machine without PostgreSQL while saying
what was not tested.

``StoreDatabase`` is one test's database on either backend: the URL the store opens, and a way to read what
was stored with plain SQL, for the tests that check the tables themselves.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import itertools
import re
import secrets
import sqlite3
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest

from tokenmux.store import Store, open_store

T = TypeVar("T")

HOST, PORT, DATABASE = "127.0.0.1", 5432, "test"
NOT_REACHABLE = (
    f"PostgreSQL not reachable at {HOST}:{PORT}; start it with "
    "'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start'"
)
BACKENDS = ("sqlite", "postgresql")


def run_apart(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine on a loop of its own in a thread of its own: callable from plain code and from
    inside a running event loop alike."""
    with concurrent.futures.ThreadPoolExecutor(1) as thread:
        return thread.submit(lambda: asyncio.run(make())).result()


async def _answers(url: str) -> bool:
    try:
        conn = await asyncpg.connect(url, timeout=2)
    except (OSError, TimeoutError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


@functools.cache
def server_url() -> str | None:
    """The URL of the test database as the first of the usual users that may log in, or None."""
    for user in ("postgres", "root"):
        url = f"postgresql://{user}@{HOST}:{PORT}/{DATABASE}"
        if run_apart(lambda url=url: _answers(url)):  # type: ignore[misc]
            return url
    return None


def require_server() -> str:
    url = server_url()
    if url is None:
        pytest.skip(NOT_REACHABLE)
    return url


async def execute(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def schema_url(base: str, schema: str, **settings: str) -> str:
    query = "&".join(f"{name}={value}" for name, value in {"search_path": schema, **settings}.items())
    return f"{base}?{query}"


@contextlib.contextmanager
def fresh_schema(**settings: str) -> Iterator[str]:
    """A URL whose search_path is a new, empty schema (and any other session ``settings``); the schema
    and everything in it are dropped on exit. Skips the test when PostgreSQL is not reachable."""
    base = require_server()
    schema = f"tm_test_{secrets.token_hex(6)}"
    run_apart(lambda: execute(base, f"CREATE SCHEMA {schema}"))
    try:
        yield schema_url(base, schema, **settings)
    finally:
        run_apart(lambda: execute(base, f"DROP SCHEMA {schema} CASCADE"))


def _numbered(sql: str) -> str:
    """``?`` placeholders as PostgreSQL's ``$1, $2, ...``."""
    numbers = itertools.count(1)
    return re.sub(r"\?", lambda _: f"${next(numbers)}", sql)


@dataclass
class StoreDatabase:
    """One test's database: ``url`` for ``open_store``, and plain SQL with ``?`` placeholders."""

    backend: str  # "sqlite" | "postgresql"
    url: str

    def store(self) -> Store:
        """A new store on this database, not yet opened."""
        return open_store(self.url)

    async def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        if self.backend == "sqlite":
            conn = sqlite3.connect(self.url.removeprefix("sqlite:///"))
            try:
                return [tuple(row) for row in conn.execute(sql, params)]
            finally:
                conn.close()
        conn = await asyncpg.connect(self.url, timeout=5)
        try:
            return [tuple(row) for row in await conn.fetch(_numbered(sql), *params)]
        finally:
            await conn.close()

    async def execute(self, sql: str, *params: Any) -> None:
        """One statement, committed."""
        if self.backend == "sqlite":
            conn = sqlite3.connect(self.url.removeprefix("sqlite:///"))
            try:
                with conn:
                    conn.execute(sql, params)
            finally:
                conn.close()
            return
        conn = await asyncpg.connect(self.url, timeout=5)
        try:
            await conn.execute(_numbered(sql), *params)
        finally:
            await conn.close()

    async def columns(self, table: str) -> tuple[str, ...]:
        """The table's column names in their order."""
        if self.backend == "sqlite":
            return tuple(row[1] for row in await self.rows(f"PRAGMA table_info({table})"))
        rows = await self.rows(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position",
            table,
        )
        return tuple(row[0] for row in rows)


@contextlib.contextmanager
def store_database(backend: str, directory: Path) -> Iterator[StoreDatabase]:
    """A fresh database on ``backend``: a file in ``directory``, or a schema of its own."""
    if backend == "sqlite":
        yield StoreDatabase(backend, f"sqlite:///{directory}/tokenmux.db")
        return
    with fresh_schema() as url:
        yield StoreDatabase(backend, url)
