from __future__ import annotations

import os
from pathlib import Path

import pytest

from tokenmux.store import SQLiteStore, open_store


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
    "url",
    [
        "postgresql://tm:s3cr3t-pw@db.internal:5432/tokenmux",
        "postgres://tm:s3cr3t-pw@db.internal/tokenmux",
        "postgresql+asyncpg://tm:s3cr3t-pw@db.internal/tokenmux",
    ],
)
def test_postgresql_is_not_in_this_version_and_the_password_stays_out(url: str) -> None:
    with pytest.raises(ValueError, match="PostgreSQL support is not in this version") as caught:
        open_store(url)
    message = str(caught.value)
    assert "s3cr3t" not in message and "db.internal" not in message
    assert "sqlite:///" in message  # says what to use instead


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
