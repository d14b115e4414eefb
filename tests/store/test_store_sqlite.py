"""What is particular to the SQLite store: the file, its threads, the in-memory database; and the records.

What every store must do is in test_store_contract.py, run on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from tokenmux.store import (
    GenerationRecord,
    SQLiteStore,
    StoreError,
    StoreUnavailable,
    key_digest,
    new_generation_id,
    new_key,
)
from tokenmux.store.records import ATTEMPT_FIELDS

GenerationFactory = Callable[..., GenerationRecord]  # the make_generation fixture (conftest.py)


# -- records -------------------------------------------------------------------------------------------


def test_to_api_has_the_documented_shape(make_generation: GenerationFactory) -> None:
    body = make_generation("gen-4-a", attempts=2, created_at=1_732_634_400.25).to_api()
    assert list(body) == [
        "id",
        "model",
        "requested_model",
        "provider",
        "created_at",
        "streamed",
        "status",
        "http_status",
        "error",
        "finish_reason",
        "tokens_prompt",
        "tokens_completion",
        "tokens_cached",
        "tokens_cache_write",
        "tokens_reasoning",
        "usage",
        "latency_ms",
        "first_token_latency_ms",
        "generation_time_ms",
        "throughput_tps",
        "observed",
        "dropped_params",
        "attempts",
    ]
    assert body["created_at"] == "2024-11-26T15:20:00.250Z"
    assert (body["status"], body["http_status"], body["error"]) == ("success", 200, None)
    assert body["usage"] == pytest.approx(0.000_174_4)
    assert body["tokens_cached"] == 256 and body["first_token_latency_ms"] == 640.0
    assert body["observed"] == {"first_token_latency": True, "throughput": True, "generation_time": True}
    first = body["attempts"][0]
    assert set(first) == {*ATTEMPT_FIELDS, "observed"}
    assert first["started_at"] == "2024-11-26T15:20:00.260Z"
    assert first["error_class"] == "server_error" and first["upstream_status"] == 503
    # A failure before any content measured nothing but its latency.
    assert first["observed"] == {"first_token_latency": False, "throughput": False, "generation_time": False}


def test_a_non_streamed_answer_observed_no_first_token(make_generation: GenerationFactory) -> None:
    record = make_generation(
        "gen-4-b", streamed=False, ttft_ms=None, throughput_tps=None, generation_ms=2100.25
    )
    served = record.attempts[0]
    served.streamed, served.ttft_ms, served.throughput_tps = False, None, None
    served.generation_ms = served.latency_ms
    body = record.to_api()
    assert body["first_token_latency_ms"] is None and body["throughput_tps"] is None
    assert body["generation_time_ms"] == 2100.25
    assert body["observed"] == {"first_token_latency": False, "throughput": False, "generation_time": True}
    assert body["attempts"][0]["observed"] == body["observed"]


def test_generation_ids_sort_by_time_and_do_not_repeat() -> None:
    earlier, later = new_generation_id(1_700_000_000.0), new_generation_id(1_700_000_001.0)
    assert earlier.startswith("gen-1700000000-") and earlier < later
    assert len({new_generation_id() for _ in range(1000)}) == 1000


# -- the file ------------------------------------------------------------------------------------------


async def test_database_file_is_in_wal_mode(store: SQLiteStore, db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    conn.close()


async def test_missing_parent_directory_is_created(tmp_path: Path) -> None:
    path = tmp_path / "data" / "nested" / "log.db"
    async with SQLiteStore(path) as store:
        assert await store.ping()
    assert path.is_file()


async def test_a_path_that_cannot_be_a_database_fails_naming_it(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path)  # a directory
    with pytest.raises(StoreError, match=str(tmp_path)):
        await store.open()


# -- concurrency ----------------------------------------------------------------------------------------


async def test_reads_do_not_wait_for_the_writer(
    store: SQLiteStore, make_generation: GenerationFactory
) -> None:
    await store.write_batch([make_generation("gen-7-a")])
    writer = store._writer
    assert writer is not None
    release = threading.Event()
    stalled = writer.submit(lambda conn: release.wait(10))
    try:
        pending_write = asyncio.ensure_future(store.write_batch([make_generation("gen-7-b")]))
        got = await asyncio.wait_for(store.get_generation("gen-7-a"), 5)
        assert got is not None and got.id == "gen-7-a"
        assert await asyncio.wait_for(store.ping(), 5)
        assert not pending_write.done()
    finally:
        release.set()
    await pending_write
    assert stalled.result() is True
    assert await store.get_generation("gen-7-b") is not None


async def test_a_failing_write_is_reported_as_unavailable(
    store: SQLiteStore, make_generation: GenerationFactory
) -> None:
    writer = store._writer
    assert writer is not None
    await writer.run(lambda conn: conn.execute("PRAGMA query_only=ON"))
    with pytest.raises(StoreUnavailable, match="could not write"):
        await store.write_batch([make_generation("gen-9-a")])
    await writer.run(lambda conn: conn.execute("PRAGMA query_only=OFF"))
    await store.write_batch([make_generation("gen-9-a")])
    assert await store.get_generation("gen-9-a") is not None


async def test_in_memory_store_reads_its_own_writes(make_generation: GenerationFactory) -> None:
    async with SQLiteStore(":memory:") as store:
        gen = make_generation("gen-10-a", attempts=2)
        await store.write_batch([gen])
        assert await store.get_generation("gen-10-a") == gen
        assert await store.ping()


# -- keys -----------------------------------------------------------------------------------------------


def test_new_key_stores_only_a_digest_and_a_useless_prefix() -> None:
    secret, record = new_key("x")
    assert secret.startswith("sk-tm-") and len(secret) == 6 + 48
    assert record.digest == key_digest(secret) and len(record.digest) == 64
    assert record.display == secret[:12] + "…"
    assert record.id.startswith("key_") and len(record.id) == 4 + 16
    assert secret not in repr(record)
    assert new_key("x")[0] != secret
