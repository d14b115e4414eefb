from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from tokenmux.store import (
    GenerationRecord,
    KeyNameTaken,
    SQLiteStore,
    StoreError,
    StoreUnavailable,
    key_digest,
    new_generation_id,
    new_key,
)
from tokenmux.store.migrations import MIGRATIONS
from tokenmux.store.records import ATTEMPT_FIELDS, GENERATION_FIELDS, KEY_FIELDS

GenerationFactory = Callable[..., GenerationRecord]  # the make_generation fixture (conftest.py)


def table_columns(db_path: Path, table: str) -> list[str]:
    conn = sqlite3.connect(db_path)
    try:
        return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
    finally:
        conn.close()


# -- request log --------------------------------------------------------------------------------------


async def test_batch_round_trips_every_field(store: SQLiteStore, make_generation: GenerationFactory) -> None:
    failed_over = make_generation("gen-1-a", attempts=3)
    all_failed = make_generation(
        "gen-1-b",
        model=None,
        provider=None,
        status="error",
        http_status=502,
        error_message="every attempt failed",
        finish_reason=None,
        ttft_ms=None,
        generation_ms=None,
        throughput_tps=None,
        dropped_params=[],
        key_id=None,
        streamed=False,
    )
    await store.write_batch([failed_over, all_failed])

    got = await store.get_generation("gen-1-a")
    assert got == failed_over
    assert got is not None
    assert [a.attempt for a in got.attempts] == [1, 2, 3]
    assert [a.provider for a in got.attempts] == ["fallback1", "fallback2", "openai"]
    assert got.dropped_params == ["logit_bias", "top_logprobs"]
    assert isinstance(got.streamed, bool) and isinstance(got.attempts[0].counts_for_uptime, bool)
    assert [a.counts_for_uptime for a in got.attempts] == [True, False, True]

    assert await store.get_generation("gen-1-b") == all_failed
    assert await store.get_generation("gen-unknown") is None


async def test_rewriting_a_stored_generation_is_a_no_op(
    store: SQLiteStore, make_generation: GenerationFactory, db_path: Path
) -> None:
    first = make_generation("gen-2-a", attempts=2)
    await store.write_batch([first])
    # A retried batch, with the same generation changed: the stored one stays as it was.
    changed = make_generation("gen-2-a", attempts=2, cost_usd=99.0)
    await store.write_batch([changed, make_generation("gen-2-b")])

    assert await store.get_generation("gen-2-a") == first
    assert await store.get_generation("gen-2-b") is not None
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT count(*) FROM attempts").fetchone() == (3,)
    conn.close()


async def test_attempts_take_the_generation_id_of_their_generation(
    store: SQLiteStore, make_generation: GenerationFactory
) -> None:
    gen = make_generation("gen-3-a", attempts=2)
    gen.attempts[0].generation_id = "gen-someone-else"
    await store.write_batch([gen])
    got = await store.get_generation("gen-3-a")
    assert got is not None
    assert [a.generation_id for a in got.attempts] == ["gen-3-a", "gen-3-a"]


async def test_attempts_since_filters_by_time_and_endpoint(
    store: SQLiteStore, make_generation: GenerationFactory
) -> None:
    await store.write_batch(
        [
            make_generation("gen-old", attempts=2, created_at=1000.0),
            make_generation("gen-new", attempts=2, created_at=2000.0),
        ]
    )
    recent = await store.attempts_since(1500.0)
    assert [(a.generation_id, a.attempt) for a in recent] == [("gen-new", 1), ("gen-new", 2)]

    served = await store.attempts_since(0.0, endpoint="openai/gpt-4.1-nano@openai")
    assert [(a.generation_id, a.outcome) for a in served] == [("gen-old", "success"), ("gen-new", "success")]


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
        "dropped_params",
        "attempts",
    ]
    assert body["created_at"] == "2024-11-26T15:20:00.250Z"
    assert body["usage"] == pytest.approx(0.000_174_4)
    assert body["tokens_cached"] == 256 and body["first_token_latency_ms"] == 640.0
    first = body["attempts"][0]
    assert set(first) == set(ATTEMPT_FIELDS)
    assert first["started_at"] == "2024-11-26T15:20:00.260Z"
    assert first["error_class"] == "server_error" and first["upstream_status"] == 503


def test_generation_ids_sort_by_time_and_do_not_repeat() -> None:
    earlier, later = new_generation_id(1_700_000_000.0), new_generation_id(1_700_000_001.0)
    assert earlier.startswith("gen-1700000000-") and earlier < later
    assert len({new_generation_id() for _ in range(1000)}) == 1000


# -- schema and migrations ------------------------------------------------------------------------------


async def test_tables_have_a_column_for_every_record_field(store: SQLiteStore, db_path: Path) -> None:
    assert set(table_columns(db_path, "generations")) == set(GENERATION_FIELDS) - {"attempts"}
    assert set(table_columns(db_path, "attempts")) == set(ATTEMPT_FIELDS)
    assert set(table_columns(db_path, "api_keys")) == set(KEY_FIELDS)


async def test_opening_twice_applies_migrations_once_and_keeps_data(
    db_path: Path, make_generation: GenerationFactory
) -> None:
    async with SQLiteStore(db_path) as first:
        await first.write_batch([make_generation("gen-5-a")])
    async with SQLiteStore(db_path) as second:
        assert await second.get_generation("gen-5-a") is not None

    conn = sqlite3.connect(db_path)
    names = [row[0] for row in conn.execute("SELECT name FROM _migrations ORDER BY name")]
    conn.close()
    assert names == sorted(m.__name__ for m in MIGRATIONS)


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


async def test_using_a_store_that_is_not_open_says_so(
    db_path: Path, make_generation: GenerationFactory
) -> None:
    store = SQLiteStore(db_path)
    with pytest.raises(StoreError, match="not open"):
        await store.write_batch([make_generation("gen-6-a")])


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


async def test_writes_submitted_together_are_applied_in_order(
    store: SQLiteStore, make_generation: GenerationFactory
) -> None:
    # The second batch repeats the first's id: whichever is written first wins, and it must be the first.
    first = make_generation("gen-8-a", cost_usd=1.0)
    second = make_generation("gen-8-a", cost_usd=2.0)
    await asyncio.gather(store.write_batch([first]), store.write_batch([second]))
    got = await store.get_generation("gen-8-a")
    assert got is not None and got.cost_usd == 1.0


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


async def test_ping_answers_only_while_open(db_path: Path) -> None:
    store = SQLiteStore(db_path)
    assert not await store.ping()
    await store.open()
    assert await store.ping()
    await store.close()
    assert not await store.ping()
    await store.close()  # twice is fine


# -- keys -----------------------------------------------------------------------------------------------


async def test_keys_create_find_list_revoke(store: SQLiteStore) -> None:
    secret, record = new_key("ci", now=100.0)
    record.rpm = 60
    record.allowed_models = '["openai/*"]'
    admin_secret, admin = new_key("admin", is_admin=True, now=200.0)
    await store.create_key(record)
    await store.create_key(admin)

    assert await store.find_key(key_digest(secret)) == record
    found_admin = await store.find_key(key_digest(admin_secret))
    assert found_admin is not None and found_admin.is_admin is True
    assert await store.find_key(key_digest("sk-tm-not-a-key")) is None
    assert [k.name for k in await store.list_keys()] == ["ci", "admin"]

    assert await store.revoke_key("ci") is True
    assert await store.find_key(key_digest(secret)) is None
    assert await store.revoke_key("ci") is False  # nothing active by that name any more
    assert await store.revoke_key(admin.id) is True
    assert await store.revoke_key("nobody") is False
    listed = await store.list_keys()
    assert [k.revoked for k in listed] == [True, True]
    assert all(k.revoked_at is not None for k in listed)


async def test_an_active_key_name_cannot_be_taken_twice(store: SQLiteStore) -> None:
    await store.create_key(new_key("deploy")[1])
    with pytest.raises(KeyNameTaken, match="'deploy' already exists"):
        await store.create_key(new_key("deploy")[1])

    assert await store.revoke_key("deploy")
    secret, again = new_key("deploy")
    await store.create_key(again)
    assert await store.find_key(key_digest(secret)) == again
    assert len(await store.list_keys()) == 2


async def test_revoking_by_id_does_not_touch_a_key_named_like_that_id(store: SQLiteStore) -> None:
    _, target = new_key("target")
    _, lookalike = new_key(target.id)
    await store.create_key(target)
    await store.create_key(lookalike)
    assert await store.revoke_key(target.id)
    by_name = {k.name: k for k in await store.list_keys()}
    assert by_name["target"].revoked and not by_name[target.id].revoked


def test_new_key_stores_only_a_digest_and_a_useless_prefix() -> None:
    secret, record = new_key("x")
    assert secret.startswith("sk-tm-") and len(secret) == 6 + 48
    assert record.digest == key_digest(secret) and len(record.digest) == 64
    assert record.display == secret[:12] + "…"
    assert record.id.startswith("key_") and len(record.id) == 4 + 16
    assert secret not in repr(record)
    assert new_key("x")[0] != secret
