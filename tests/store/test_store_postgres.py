"""What is particular to the PostgreSQL store: replicas starting and writing at once, a server that goes
away or freezes, and what its messages may say. Against the machine's PostgreSQL, each test in a schema
of its own; skipped when the server is not running. The common contract is in test_store_contract.py."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from postgres_support import HOST, PORT, StoreDatabase, fresh_schema, require_server
from tokenmux.server.runner import free_port
from tokenmux.store import (
    GenerationRecord,
    Recorder,
    StoreError,
    StoreUnavailable,
    new_generation_id,
    open_store,
)
from tokenmux.store.buckets import HOUR_S, MINUTE_S
from tokenmux.store.migrations import MIGRATIONS
from tokenmux.store.postgres import PostgresStore

GenerationFactory = Callable[..., GenerationRecord]  # the make_generation fixture (conftest.py)
KEY = "key_0123456789abcdef"  # make_generation's key


@pytest.fixture
def pg() -> Iterator[StoreDatabase]:
    with fresh_schema() as url:
        yield StoreDatabase("postgresql", url)


@pytest.fixture
async def store(pg: StoreDatabase) -> AsyncIterator[PostgresStore]:
    opened = PostgresStore(pg.url)
    async with opened:
        yield opened


def batch(
    make_generation: GenerationFactory, count: int, *, now: float = 1_732_634_400.0
) -> list[GenerationRecord]:
    """``count`` generations with one or two attempts each, all within the same two minutes."""
    return [
        make_generation(new_generation_id(now), attempts=1 + n % 2, created_at=now + (n % 120))
        for n in range(count)
    ]


# -- starting ---------------------------------------------------------------------------------------------


async def test_replicas_opening_a_fresh_schema_at_once_all_start_and_each_migration_runs_once(
    pg: StoreDatabase, make_generation: GenerationFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tokenmux.store.postgres")
    replicas = [PostgresStore(pg.url) for _ in range(4)]
    await asyncio.gather(*(r.open() for r in replicas))
    try:
        applied = [
            name
            for record in caplog.records
            if "applied migrations" in record.getMessage()
            for name in record.getMessage().rpartition("applied migrations ")[2].split(", ")
        ]
        assert sorted(applied) == sorted(m.__name__ for m in MIGRATIONS)
        assert len(await pg.rows("SELECT name FROM _migrations")) == len(MIGRATIONS)
        for n, replica in enumerate(replicas):
            await replica.write_batch([make_generation(f"gen-r{n}")])
        for replica in replicas:
            assert [await replica.get_generation(f"gen-r{n}") is not None for n in range(4)] == [True] * 4
    finally:
        await asyncio.gather(*(r.close() for r in replicas))


async def test_an_unreachable_server_is_unavailable_at_once_and_the_password_never_shows() -> None:
    port = free_port()  # nothing listens there
    store = open_store(f"postgresql://tm:s3cr3t-pw@127.0.0.1:{port}/tokenmux?search_path=tm")
    assert "s3cr3t" not in repr(store)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as caught:
        await store.open()
    assert time.monotonic() - started < 3
    message = str(caught.value)
    assert f"tm@127.0.0.1:{port}/tokenmux" in message and "s3cr3t" not in message
    assert not await store.ping()


async def test_a_missing_database_or_schema_is_a_clear_error_without_the_password() -> None:
    base = require_server()
    user = re.match(r"postgresql://([^@]+)@", base)
    assert user is not None
    no_database = f"postgresql://{user[1]}:s3cr3t-pw@{HOST}:{PORT}/tm_no_such_database"
    with pytest.raises(StoreError) as caught:
        await open_store(no_database).open()
    assert not isinstance(caught.value, StoreUnavailable)  # retrying will not help
    assert "tm_no_such_database" in str(caught.value) and "s3cr3t" not in str(caught.value)

    with pytest.raises(StoreError, match="search_path"):
        await open_store(f"{base}?search_path=tm_no_such_schema").open()


async def test_sessions_get_timeouts_and_a_name_unless_the_url_sets_its_own(pg: StoreDatabase) -> None:
    for url, timeout, name in (
        (pg.url, "7500ms", "tokenmux"),
        (pg.url + "&statement_timeout=1234&application_name=tm-test", "1234ms", "tm-test"),
    ):
        async with PostgresStore(url, statement_timeout_s=7.5) as store, store._connection("test") as conn:
            assert await conn.fetchval("SHOW statement_timeout") == timeout
            assert await conn.fetchval("SHOW application_name") == name


# -- writing ----------------------------------------------------------------------------------------------


async def test_a_big_batch_and_its_retry_store_and_count_each_generation_once(
    store: PostgresStore, make_generation: GenerationFactory
) -> None:
    generations = batch(make_generation, 5000)
    await store.write_batch(generations)
    extra = batch(make_generation, 10)
    await store.write_batch([*generations[:2500], *extra])  # retried in part, with new ones

    attempts = sum(len(g.attempts) for g in [*generations, *extra])
    assert len(await store.attempts_since(0.0)) == attempts
    windows = await store.endpoint_windows(HOUR_S, 0)
    assert sum(w.attempts for w in windows) == attempts
    assert sum(d.requests for d in await store.key_days(KEY, "2024-01-01")) == 5010
    assert await store.get_generation(generations[4999].id) == generations[4999]


async def test_replicas_adding_to_the_same_buckets_at_once_lose_nothing(
    pg: StoreDatabase, make_generation: GenerationFactory
) -> None:
    # Every batch of both replicas adds to the same minute, hour and day rows: the upserts must neither
    # deadlock nor lose an addition.
    replicas = [PostgresStore(pg.url), PostgresStore(pg.url)]
    await asyncio.gather(*(r.open() for r in replicas))
    try:
        batches = [batch(make_generation, 50, now=1_732_634_400.0) for _ in range(16)]
        await asyncio.gather(*(replicas[n % 2].write_batch(b) for n, b in enumerate(batches)))
        minutes = await replicas[0].endpoint_windows(MINUTE_S, 0)
        assert sum(w.attempts for w in minutes) == sum(len(g.attempts) for b in batches for g in b)
        successes = sum(w.successes for w in minutes)
        assert successes == 16 * 50
        served = next(w for w in minutes if w.endpoint == "openai/gpt-4.1-nano@openai")
        assert served.ttft.count == served.successes == successes
        days = await replicas[1].key_days(KEY, "2024-01-01")
        assert [(d.requests, d.prompt_tokens) for d in days] == [(800, 800 * 1200)]
    finally:
        await asyncio.gather(*(r.close() for r in replicas))


# -- when the server goes away ----------------------------------------------------------------------------


async def test_connections_cut_by_the_server_lose_no_records(
    make_generation: GenerationFactory,
) -> None:
    with fresh_schema(application_name="tm-cut-test") as url:
        base = require_server()
        cut = (
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'tm-cut-test' AND pid <> pg_backend_pid()"
        )
        async with PostgresStore(url) as store:
            recorder = Recorder(store, max_batch=20, flush_interval_s=0.001, min_backoff_s=0.01)
            recorder.start()
            server = StoreDatabase("postgresql", base)
            cuts = 0
            for n, generation in enumerate(batch(make_generation, 200)):
                recorder.record(generation)
                if n % 40 == 20:
                    cuts += len(await server.rows(cut))  # as a restart or a failover would
                    await asyncio.sleep(0.01)
            await asyncio.wait_for(recorder.flush(), 20)
            assert cuts >= 3
            await recorder.close()
            assert recorder.written == 200 and recorder.dropped == recorder.rejected == 0
            assert len({a.generation_id for a in await store.attempts_since(0.0)}) == 200
