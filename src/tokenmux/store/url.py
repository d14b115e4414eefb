"""``--database URL`` to a ``Store``.

Accepted: ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` (SQLAlchemy's convention: the
path is everything after ``sqlite:///``), ``sqlite:///:memory:`` or ``sqlite://``, and a bare file path
(``./tokenmux.db``, ``/var/lib/tokenmux/log.db``); and ``postgresql://user:password@host:5432/database``
(also ``postgres://`` and SQLAlchemy's ``postgresql+asyncpg://``), where ``?search_path=schema`` puts the
tables in a schema of one's choosing. Messages never repeat a URL: it may hold a password.
"""

from __future__ import annotations

import re

from tokenmux.store.base import Store
from tokenmux.store.sqlite import MEMORY, SQLiteStore

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")


def open_store(url: str) -> Store:
    """The store a database URL names, not yet opened: ``await store.open()`` or ``async with store:``."""
    url = url.strip()
    if not url:
        raise ValueError("the database URL is empty; pass e.g. --database sqlite:///tokenmux.db")
    match = _SCHEME.match(url)
    scheme = match.group(1).lower() if match else ""
    if scheme == "sqlite" or (not scheme and url.lower().startswith("sqlite:")):
        rest = url[len("sqlite:") :]
        if rest == "//":
            return SQLiteStore(MEMORY)
        if not rest.startswith("///") or rest == "///":
            raise ValueError(
                "a SQLite URL is sqlite:/// followed by the file's path: sqlite:///tokenmux.db (relative), "
                "sqlite:////var/lib/tokenmux.db (absolute), or sqlite:///:memory:"
            )
        return SQLiteStore(rest[3:])
    if not scheme:
        return SQLiteStore(url)  # a bare path, or ":memory:"
    if scheme in ("postgresql", "postgres") or scheme.startswith("postgresql+"):
        # Imported here: a gateway on SQLite does not load the PostgreSQL driver.
        from tokenmux.store.postgres import PostgresStore

        return PostgresStore(url)
    raise ValueError(
        f"unsupported database URL scheme {scheme!r}; "
        "use sqlite:///path/to/file.db, a file path, or postgresql://user@host/database"
    )
