"""The PostgreSQL store when its server stops or hangs: nothing waits without end, failures are
``StoreUnavailable`` (so callers retry), and a recorder loses and repeats no record across the outage.

The machine's real PostgreSQL sits behind a ``FaultProxy``, which cuts (a stopped server) or freezes (a
hung one) the way to it; the server itself is never touched. Skipped when PostgreSQL is not running.

The time limits asserted below are hang guards, not performance figures: each is several times what the
store's own timeouts allow, so that only a wait that never ends (or one the store forgot to bound) fails
them, even on a loaded two-core machine.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TypeVar

import pytest

from fault_proxy import FaultProxy
from postgres_support import HOST, PORT, StoreDatabase, fresh_schema
from tokenmux.store import GenerationRecord, Recorder, Store, StoreUnavailable, new_generation_id, open_store
from tokenmux.store.postgres import PING_TIMEOUT_S, PostgresStore

T = TypeVar("T")
GenerationFactory = Callable[..., GenerationRecord]  # the make_generation fixture (conftest.py)
KEY = "key_0123456789abcdef"  # make_generation's key

HANG_GUARD_S = 15.0

# Short timeouts for the frozen server, whose every failure waits for them: a statement is given up
# after STATEMENT_TIMEOUT_S + 2 s, and asyncpg then spends up to CONNECT_TIMEOUT_S trying to cancel it
# through the same frozen network before the connection is let go.
STATEMENT_TIMEOUT_S = 1.0
CONNECT_TIMEOUT_S = 1.0


@pytest.fixture
def pg() -> Iterator[StoreDatabase]:
    """A fresh schema, read directly (not through the proxy)."""
    with fresh_schema() as url:
        yield StoreDatabase("postgresql", url)


@pytest.fixture
def proxy(pg: StoreDatabase) -> Iterator[FaultProxy]:
    with FaultProxy(HOST, PORT) as started:
        yield started


@pytest.fixture
async def store(pg: StoreDatabase, proxy: FaultProxy) -> AsyncIterator[PostgresStore]:
    """The store through the proxy, with short timeouts."""
    opened = PostgresStore(
        proxy.proxied_url(pg.url),
        min_connections=2,  # one for ping and one for write_batch, both open when the server hangs
        statement_timeout_s=STATEMENT_TIMEOUT_S,
        connect_timeout_s=CONNECT_TIMEOUT_S,
    )
    await opened.open()
    try:
        yield opened
    finally:
        proxy.restore()  # closing through a frozen proxy would wait for the store's close timeout
        await opened.close()


async def timed(action: Awaitable[T]) -> tuple[T | BaseException, float]:
    """What ``action`` returned or raised, and how long it took."""
    started = time.monotonic()
    try:
        outcome: T | BaseException = await action
    except Exception as exc:
        outcome = exc
    return outcome, time.monotonic() - started


def generations(make_generation: GenerationFactory, count: int) -> list[GenerationRecord]:
    now = 1_732_634_400.0
    return [
        make_generation(new_generation_id(now), attempts=1 + n % 2, created_at=now + n) for n in range(count)
    ]


async def test_a_stopped_server_fails_ping_and_writes_at_once_and_the_store_recovers(
    pg: StoreDatabase, proxy: FaultProxy, make_generation: GenerationFactory
) -> None:
    # Opened by URL as the gateway opens it, so with the store's default timeouts.
    store = open_store(proxy.proxied_url(pg.url))
    async with store:
        await store.write_batch([make_generation("gen-before")])
        proxy.cut()

        answered, took = await timed(store.ping())
        assert answered is False and took < HANG_GUARD_S
        for action, doing in (
            (store.write_batch([make_generation("gen-during")]), "could not write the request log"),
            (store.get_generation("gen-before"), "could not read a generation"),
        ):
            failure, took = await timed(action)
            assert isinstance(failure, StoreUnavailable) and doing in str(failure)
            assert took < HANG_GUARD_S

        proxy.restore()
        assert await store.ping()
        await store.write_batch([make_generation("gen-during")])
        assert await store.get_generation("gen-during") == make_generation("gen-during")


async def test_a_hung_server_fails_ping_and_writes_within_the_timeouts_and_the_store_recovers(
    store: PostgresStore, proxy: FaultProxy, make_generation: GenerationFactory
) -> None:
    await store.write_batch([make_generation("gen-before")])
    assert await store.ping()
    proxy.freeze()

    # The pool's two open connections now hang: one under the ping, one under the write.
    answered, took = await timed(store.ping())
    assert answered is False and took < HANG_GUARD_S
    assert took >= PING_TIMEOUT_S * 0.9  # it did wait for an answer: the connection was not refused
    failure, took = await timed(store.write_batch([make_generation("gen-during")]))
    assert isinstance(failure, StoreUnavailable) and "could not write the request log" in str(failure)
    assert took < HANG_GUARD_S
    # And a new connection, which the hung server accepts but never answers.
    failure, took = await timed(store.get_generation("gen-before"))
    assert isinstance(failure, StoreUnavailable) and took < HANG_GUARD_S

    proxy.restore()
    assert await store.ping()
    await store.write_batch([make_generation("gen-during")])
    assert await store.get_generation("gen-during") == make_generation("gen-during")
    assert len(await store.attempts_since(0.0)) == 2  # gen-before and gen-during, once each


@pytest.mark.parametrize("fault", ["cut", "freeze"])
async def test_opening_the_store_during_an_outage_fails_within_bounds(
    pg: StoreDatabase, proxy: FaultProxy, fault: str
) -> None:
    getattr(proxy, fault)()
    store: Store = open_store(proxy.proxied_url(pg.url))  # the default timeouts
    failure, took = await timed(store.open())
    assert isinstance(failure, StoreUnavailable) and "cannot connect to the database" in str(failure)
    assert took < HANG_GUARD_S
    await store.close()


@pytest.mark.parametrize("fault", ["cut", "freeze"])
async def test_a_recorder_keeps_its_records_through_an_outage_and_writes_each_once_after(
    store: PostgresStore, proxy: FaultProxy, pg: StoreDatabase, make_generation: GenerationFactory, fault: str
) -> None:
    recorder = Recorder(store, max_batch=25, flush_interval_s=0.001, min_backoff_s=0.01, max_backoff_s=0.05)
    recorder.start()
    made = generations(make_generation, 100)
    for generation in made[:50]:
        recorder.record(generation)
    await asyncio.wait_for(recorder.flush(), HANG_GUARD_S)

    getattr(proxy, fault)()
    for generation in made[50:]:
        recorder.record(generation)
    async with asyncio.timeout(HANG_GUARD_S * 2):  # a frozen try takes the store's timeouts to fail
        while recorder.failed_writes < 1:
            await asyncio.sleep(0.01)
    assert recorder.pending == 50 and recorder.written == 50
    # Still readable through the recorder while the database is away.
    assert await recorder.get_generation(made[99].id) == made[99]

    proxy.restore()
    await asyncio.wait_for(recorder.flush(), HANG_GUARD_S)
    await recorder.close()
    assert (recorder.written, recorder.dropped, recorder.rejected) == (100, 0, 0)
    for generation in made:
        assert await store.get_generation(generation.id) == generation
    # Once each: in the log, and in the figures aggregated with it.
    assert await pg.rows("SELECT count(*), count(DISTINCT id) FROM generations") == [(100, 100)]
    assert len(await store.attempts_since(0.0)) == sum(len(g.attempts) for g in made)
    assert sum(day.requests for day in await store.key_days(KEY, "2024-01-01")) == 100
