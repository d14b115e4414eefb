from __future__ import annotations

import os
from pathlib import Path

import pytest

from tokenmux.store import SQLiteStore, open_store
from tokenmux.store.postgres import PostgresStore


def sqlite_path(url: str) -> str:
    store = open_store(url)
    assert isinstance(store, SQLiteStore)
    return store.path


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///tokenmux.db", os.path.join(os.getcwd(), "tokenmux.db")),
        ("sqlite:///data/log.db", os.path.join(os.getcwd(), "data", "log.db")),
        ("sqlite:////var/lib/tokenmux/log.db", "/var/lib/tokenmux/log.db"),
        ("SQLite:////var/lib/tokenmux/log.db", "/var/lib/tokenmux/log.db"),
        ("./tokenmux.db", os.path.join(os.getcwd(), "tokenmux.db")),
        ("tokenmux.db", os.path.join(os.getcwd(), "tokenmux.db")),
        ("/srv/tm.db", "/srv/tm.db"),
        ("  /srv/tm.db\n", "/srv/tm.db"),
        ("~/tm.db", os.path.join(os.path.expanduser("~"), "tm.db")),
    ],
)
def test_file_urls_and_paths(url: str, expected: str) -> None:
    assert sqlite_path(url) == expected


@pytest.mark.parametrize("url", ["sqlite:///:memory:", "sqlite://", ":memory:"])
def test_memory_urls(url: str) -> None:
    store = open_store(url)
    assert isinstance(store, SQLiteStore) and store.memory


@pytest.mark.parametrize(
    ("url", "where"),
    [
        ("postgresql://tm:s3cr3t-pw@db.internal:5432/tokenmux", "tm@db.internal:5432/tokenmux"),
        ("postgres://tm:s3cr3t-pw@db.internal/tokenmux", "tm@db.internal/tokenmux"),
        ("postgresql+asyncpg://tm:s3cr3t-pw@db.internal/tokenmux", "tm@db.internal/tokenmux"),
        ("PostgreSQL://tm@db.internal/tokenmux?password=s3cr3t-pw&search_path=tm", "tm@db.internal/tokenmux"),
    ],
)
def test_postgresql_urls_make_a_postgres_store_that_never_shows_the_password(url: str, where: str) -> None:
    store = open_store(url)
    assert isinstance(store, PostgresStore)
    assert store.where == where
    assert repr(store) == f"PostgresStore({where!r})"
    assert "s3cr3t" not in repr(store)


def test_unknown_scheme_is_named_without_the_rest_of_the_url() -> None:
    with pytest.raises(ValueError, match="'mysql'") as caught:
        open_store("mysql://root:hunter2@localhost/tm")
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize("url", ["sqlite://relative.db", "sqlite:///", "sqlite:/x.db"])
def test_malformed_sqlite_urls_explain_the_form(url: str) -> None:
    with pytest.raises(ValueError, match="sqlite:///"):
        open_store(url)


def test_empty_url_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        open_store("   ")


async def test_an_opened_url_store_works(tmp_path: Path) -> None:
    async with open_store(f"sqlite:///{tmp_path}/via-url.db") as store:
        assert await store.ping()
    assert (tmp_path / "via-url.db").is_file()
