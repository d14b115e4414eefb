"""The shared ledger against the machine's real Redis: the same limits as the local books, held by two
ledgers (two replicas) at once, seeded from the request log, settled once, and a stated fallback."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

import redis_support
from fault_proxy import FaultProxy
from tokenmux.errors import InsufficientCredit, RateLimited
from tokenmux.limits.key_limits import KeyLimits
from tokenmux.limits.ledger import Admission, Seed
from tokenmux.limits.redis_ledger import RedisLedger, prefix
from tokenmux.limits.redis_settlement import release
from tokenmux.redis.link import RedisLink
from tokenmux.store.records import KeyRecord

USD = 1_000_000_000


def limits(key_id: str = "key_r", **fields: object) -> KeyLimits:
    record = KeyRecord(id=key_id, name="k", digest="d", display="x", created_at=0.0)
    for name, value in fields.items():
        setattr(record, name, value)
    return KeyLimits.of(record)


def logged(total: int = 0, period: int = 0) -> Callable[[str, str | None], object]:
    async def spent(key_id: str, since: str | None) -> int:
        return total if since is None else period

    return spent


@pytest.fixture
async def replicas(redis_url: str) -> AsyncIterator[list[RedisLedger]]:
    """Two ledgers on one Redis, as two replicas have."""
    made = []
    for _ in range(2):
        link = RedisLink(redis_url, timeout_s=1.0)
        books = RedisLedger(link, logged(total=USD), settle_interval_s=0.005)  # type: ignore[arg-type]
        await books.start()
        made.append((link, books))
    yield [books for _, books in made]
    for link, books in made:
        await books.close()
        await link.aclose()


async def drained(*books: RedisLedger) -> None:
    for _ in range(200):
        if all(b.pending_settlements == 0 for b in books):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("settlements did not reach Redis")


async def test_credit_is_shared_and_seeded_from_the_log(replicas: list[RedisLedger]) -> None:
    a, b = replicas
    key = limits(credit_usd=3.0)
    first = await a.admit(key, USD)  # 1 logged + 1 held
    second = await b.admit(key, USD)  # 1 + 2 held
    with pytest.raises(InsufficientCredit) as err:
        await a.admit(key, USD)  # 1 + 2 + 1 > 3
    assert err.value.code == "credit_exhausted"
    a.settle(first, key.key_id, "gen-1", USD // 4, 10)
    b.settle(second, key.key_id, "gen-2", USD // 4, 10)
    await drained(a, b)
    spend = await b.spend(key)
    assert spend.spent == USD + USD // 2 and spend.reserved == 0 and spend.in_flight == 0
    assert spend.tokens_last_minute == pytest.approx(20, abs=1)


async def test_a_settlement_sent_twice_is_charged_once(replicas: list[RedisLedger]) -> None:
    a, b = replicas
    key = limits(credit_usd=10.0)
    admission = await a.admit(key, USD)
    a.settle(admission, key.key_id, "gen-x", 100, 0)
    b.settle(admission, key.key_id, "gen-x", 100, 0)  # a retry after an ambiguous failure
    await drained(a, b)
    assert (await a.spend(key)).spent == USD + 100


async def test_twenty_admissions_across_two_replicas_against_credit_for_one(
    replicas: list[RedisLedger],
) -> None:
    key = limits(credit_usd=2.5)  # 1 spent: room for one reservation of 1
    tries = [replicas[i % 2].admit(key, USD) for i in range(20)]
    results = await asyncio.gather(*tries, return_exceptions=True)
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert sum(isinstance(r, InsufficientCredit) for r in results) == 19


async def test_rpm_and_concurrency_hold_across_replicas(replicas: list[RedisLedger]) -> None:
    a, b = replicas
    key = limits(rpm=3, concurrency=2)
    x = await a.admit(key, 0)
    await b.admit(key, 0)
    with pytest.raises(RateLimited) as err:
        await a.admit(key, 0)
    assert err.value.code == "concurrency_limited"
    a.settle(x, key.key_id, "g1", 0, 0)
    await drained(a)
    await b.admit(key, 0)  # the third request of the minute
    b.settle(None, key.key_id, "g2", 0, 0)
    with pytest.raises(RateLimited) as err:
        await a.admit(key, 0)
    assert err.value.code in ("rpm_limited", "concurrency_limited")


async def test_budget_period_is_shared(replicas: list[RedisLedger]) -> None:
    a, b = replicas
    key = limits(budget_usd=1.0, budget_period="day")
    adm = await a.admit(key, USD // 2)
    a.settle(adm, key.key_id, "g", USD // 2, 0)
    await drained(a)
    await b.admit(key, USD // 2)
    with pytest.raises(InsufficientCredit) as err:
        await a.admit(key, 1)
    assert err.value.code == "budget_exhausted"
    spend = await b.spend(key)
    assert spend.period_spent == USD // 2 and spend.spent == USD + USD // 2


async def test_redis_down_falls_back_to_local_books_then_catches_up() -> None:
    """Nothing listens on port 1: the link fails at once, requests are admitted by this replica's books
    (seeded from the request log) and the charges wait for Redis."""
    link = RedisLink("redis://127.0.0.1:1/0", timeout_s=0.2)
    books = RedisLedger(link, logged(total=USD))  # type: ignore[arg-type]
    await books.start()
    key = limits(credit_usd=2.0)
    started = time.monotonic()
    adm = await books.admit(key, USD // 2)
    assert time.monotonic() - started < 2.0  # bounded: a hang guard, not a performance figure
    assert books.state == "shared-unavailable"
    books.settle(adm, key.key_id, "g", USD // 2, 5)
    spend = await books.spend(key)
    assert spend.spent == USD + USD // 2
    with pytest.raises(InsufficientCredit):
        await books.admit(key, USD)
    # Kept for when Redis answers: the settlement, and the release of the admission it did not answer.
    assert books.pending_settlements == 2
    await books.close()
    await link.aclose()


async def test_a_reservation_of_a_replica_that_died_lapses(redis_url: str) -> None:
    link = RedisLink(redis_url, timeout_s=1.0)
    books = RedisLedger(link, logged())  # type: ignore[arg-type]
    key = limits(credit_usd=1.0)
    await books.admit(key, USD)
    # The replica dies before settling: move its reservation's lapse time into the past.
    held = await link.client.call("ZRANGE", "tm:{key_r}:held", 0, -1)
    assert len(held) == 1
    await link.client.call("ZADD", "tm:{key_r}:held", 1, held[0])
    await books.admit(key, USD)  # the lapsed reservation no longer counts
    await link.aclose()


async def test_an_admission_cancelled_mid_call_releases_what_it_may_have_taken(
    replicas: list[RedisLedger],
) -> None:
    a, _ = replicas
    key = limits(credit_usd=10.0, concurrency=1)
    a.settle(await a.admit(key, USD), key.key_id, "warm", 0, 0)  # seeded and connected
    await drained(a)
    task = asyncio.ensure_future(a.admit(key, USD))
    connection = a.link.client._connection
    assert connection is not None
    while not connection.waiting:  # until the script is on its way to Redis, its answer not yet back
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await drained(a)
    spend = await a.spend(key)
    assert spend.reserved == 0 and spend.in_flight == 0
    await a.admit(key, USD)  # the one concurrency slot is free


async def test_an_admission_that_timed_out_is_released_by_its_id(redis_url: str) -> None:
    """Redis hangs while the admission is on its way: the request goes on with this replica's books, the
    late admission still runs in Redis when it answers, and the queued release by id gives it back."""
    with FaultProxy("127.0.0.1", 6379) as proxy:
        link = RedisLink(proxy.proxied_url(redis_url), timeout_s=0.2, retry_s=0.2)
        books = RedisLedger(link, logged(), settle_interval_s=0.005)  # type: ignore[arg-type]
        await books.start()
        key = limits(credit_usd=10.0, concurrency=1)
        books.settle(await books.admit(key, USD), key.key_id, "warm", 0, 0)  # seeded and connected
        await drained(books)
        proxy.freeze()
        admission = await books.admit(key, USD)
        assert not admission.shared  # admitted by the local books after the timeout
        (release,) = [s for s in books.settlements.queued() if s.admission_id]
        proxy.restore()  # the frozen admission reaches Redis and takes its hold; then the release lands
        books.settle(admission, key.key_id, "g-late", 0, 0)
        await drained(books)
        spend = await books.spend(key)
        assert spend.reserved == 0 and spend.in_flight == 0
        assert release.admission_id.encode() not in await link.client.call("HKEYS", "tm:{key_r}:since")
        taken = await books.admit(key, USD)  # the one slot is free
        assert taken.shared
        await books.close()
        await link.aclose()


async def test_a_slot_given_back_but_still_queued_for_redis_does_not_refuse_its_key(redis_url: str) -> None:
    """A replica sends the releases it still has queued for a key (held back by a hiccup of the link, or
    waiting for the next batch) before refusing that key for concurrency: its client asking again as the
    last answer ended is not refused for a slot the replica has already given back."""
    link = RedisLink(redis_url, timeout_s=1.0)
    books = RedisLedger(link, logged(), settle_interval_s=60.0)  # type: ignore[arg-type]  # batches wait
    await books.start()
    try:
        key = limits("key_push", concurrency=1)
        held = await books.admit(key, 0)
        assert held.shared
        # Its call timed out here after Redis took the slot: released by its id, queued for the next batch.
        books.settlements.add(release(key.key_id, held.id))
        again = await books.admit(key, 0)
        assert again.shared
        # A slot held by a request still running is no such case: that refusal stands.
        with pytest.raises(RateLimited):
            await books.admit(key, 0)
    finally:
        await books.close()
        await link.aclose()


async def test_a_release_that_arrives_before_its_admission_refuses_it(replicas: list[RedisLedger]) -> None:
    a, _ = replicas
    key = limits(credit_usd=10.0, concurrency=1)
    a.settle(await a.admit(key, USD), key.key_id, "warm", 0, 0)
    await drained(a)
    # The release of an admission whose call timed out, sent while the admission is still on its way.
    a.settle(Admission("adm-late", key.key_id, USD, None, shared=True), key.key_id, "release-adm-late", 0, 0)
    await drained(a)
    late = [prefix(key.key_id), "adm-late", USD, -1, -1, "", -1, -1, 1, 20_000]
    reply = await a.link.call(lambda r: r.run(a._admit_script, *late))
    assert reply[0] == b"gone"
    spend = await a.spend(key)
    assert spend.in_flight == 0 and spend.reserved == 0


async def test_the_holds_of_a_replica_that_died_lapse_after_its_lease(redis_url: str) -> None:
    living_link, dead_link = RedisLink(redis_url, timeout_s=1.0), RedisLink(redis_url, timeout_s=1.0)
    living = RedisLedger(living_link, logged(), lease_s=0.4)  # type: ignore[arg-type]
    dead = RedisLedger(dead_link, logged(), lease_s=0.4)  # type: ignore[arg-type]
    await living.start()  # `dead` never starts: nothing renews its leases, as after kill -9
    key = limits("key_lease", credit_usd=10.0, concurrency=2)
    await living.admit(key, USD)
    await dead.admit(key, USD)
    with pytest.raises(RateLimited):
        await living.admit(key, USD)
    await asyncio.sleep(1.2)  # three lease lengths: the living replica renewed its hold meanwhile
    third = await living.admit(key, USD)  # the dead replica's hold lapsed, the living one's did not
    with pytest.raises(RateLimited):
        await living.admit(key, USD)
    spend = await living.spend(key)
    assert spend.in_flight == 2 and spend.reserved == 2 * USD
    living.settle(third, key.key_id, "g3", 0, 0)
    await living.close()
    await living_link.aclose()
    await dead_link.aclose()


async def test_holds_lost_by_a_redis_restart_are_taken_again_by_their_replica(
    replicas: list[RedisLedger], redis_url: str
) -> None:
    a, b = replicas
    key = limits(credit_usd=10.0, concurrency=1)
    await a.admit(key, 2 * USD)
    redis_support.flush()  # Redis restarted empty while the request runs
    assert await a.renew_leases() == 1  # its heartbeat takes the hold again
    with pytest.raises(RateLimited):
        await b.admit(key, USD)
    spend = await b.spend(key)
    assert spend.in_flight == 1 and spend.reserved == 2 * USD


async def test_a_concurrency_refusal_says_when_a_slot_is_expected_back(replicas: list[RedisLedger]) -> None:
    a, b = replicas
    key = limits(concurrency=1)
    for i in range(3):  # requests of about 50 ms
        admission = await a.admit(key, 0)
        await asyncio.sleep(0.05)
        a.settle(admission, key.key_id, f"g{i}", 0, 0)
        await drained(a)
    await a.admit(key, 0)
    with pytest.raises(RateLimited) as err:
        await b.admit(key, 0)
    assert err.value.code == "concurrency_limited"
    assert err.value.retry_after < 0.5  # not the old flat second
    headers = dict(err.value.headers())
    assert headers[b"retry-after"] == b"1" and 1 <= int(headers[b"retry-after-ms"]) < 500


async def test_a_reservation_made_after_admission_is_shared_and_released(replicas: list[RedisLedger]) -> None:
    a, b = replicas
    key = limits(credit_usd=3.0, concurrency=5)  # 1 spent
    first = await a.admit(key, 0)
    second = await b.admit(key, 0)
    await a.reserve(first, key, USD)  # 1 + 1 held
    with pytest.raises(InsufficientCredit) as err:
        await b.reserve(second, key, 2 * USD)  # 1 + 1 + 2 > 3
    assert err.value.code == "credit_exhausted"
    await b.reserve(second, key, USD)  # 1 + 1 + 1 <= 3
    assert (await a.spend(key)).reserved == 2 * USD
    a.settle(first, key.key_id, "gen-1", USD // 2, 0)
    b.settle(second, key.key_id, "gen-2", 0, 0)
    await drained(a, b)
    spend = await b.spend(key)
    assert spend.reserved == 0 and spend.in_flight == 0 and spend.spent == USD + USD // 2
    await a.reserve(first, key, USD)  # settled: nothing is held for it any more
    assert (await b.spend(key)).reserved == 0


class RequestLog:
    """What the request log holds for one key, as the seed reads it: its spend and its generations."""

    def __init__(self, total: int = 0) -> None:
        self.costs: dict[str, int] = {}
        self.before = total

    def write(self, generation_id: str, cost: int) -> None:
        self.costs[generation_id] = cost

    @property
    def total(self) -> int:
        return self.before + sum(self.costs.values())

    async def spent(self, key_id: str, since: str | None) -> int:
        return self.total

    async def seed(self, key_id: str, since_day: str | None, ids_since: float) -> Seed:
        return Seed(self.total, self.total if since_day else 0, list(self.costs))


async def books_on(url: str, log: RequestLog, **kw: Any) -> tuple[RedisLink, RedisLedger]:
    link = RedisLink(url, timeout_s=0.5, retry_s=0.1)
    books = RedisLedger(link, log.spent, seed_source=log.seed, settle_interval_s=0.005, **kw)
    await books.start()
    return link, books


async def test_a_settlement_queued_through_a_redis_restart_is_not_charged_on_top_of_the_seed(
    redis_url: str,
) -> None:
    log = RequestLog(total=USD)
    key = limits("key_exact", credit_usd=10.0)
    with FaultProxy("127.0.0.1", 6379) as proxy:
        link, books = await books_on(proxy.proxied_url(redis_url), log)
        admission = await books.admit(key, USD)
        proxy.cut()  # Redis goes away with the request in flight
        books.settle(admission, key.key_id, "gen-a", 300, 10)
        log.write("gen-a", 300)  # the record reaches the log; the settlement waits for Redis
        redis_support.flush()  # and Redis comes back empty
        proxy.restore()
        await books.admit(key, USD)  # seeds from the log, which has gen-a
        await drained(books)  # the queued settlement of gen-a lands: already counted
        assert (await books.spend(key)).spent == log.total == USD + 300
        await books.close()
        await link.aclose()


async def test_settlements_redis_lost_before_their_records_reached_the_log_are_sent_again(
    redis_url: str,
) -> None:
    log = RequestLog(total=USD)
    key = limits("key_lost", credit_usd=10.0)
    link, books = await books_on(redis_url, log)
    await books.settlements.check_epoch()
    for i, cost in enumerate((100, 200, 400)):
        books.settle(await books.admit(key, USD), key.key_id, f"gen-{i}", cost, 0)
    await drained(books)
    log.write("gen-0", 100)  # one record is in the log, two are still on their way to it
    redis_support.flush()  # Redis restarts empty
    books.settle(await books.admit(key, USD), key.key_id, "gen-3", 800, 0)  # seeded: gen-0 and before
    await drained(books)
    # The epoch is new (the seed's beat may have seen it first): gen-1 and gen-2 are sent again.
    await books.settlements.check_epoch()
    await drained(books)
    log.write("gen-1", 200)
    log.write("gen-2", 400)
    log.write("gen-3", 800)
    assert (await books.spend(key)).spent == log.total == USD + 1500
    await books.close()
    await link.aclose()


async def test_settlements_of_a_key_not_seeded_yet_wait_for_the_seed(redis_url: str) -> None:
    log = RequestLog(total=USD)
    key = limits("key_pending", credit_usd=10.0)
    link, books = await books_on(redis_url, log)
    books.settle(await books.admit(key, USD), key.key_id, "gen-a", 100, 0)
    await drained(books)
    redis_support.flush()
    # Settled into the empty Redis: one record reaches the log before the seed reads it, one after.
    books.settle(Admission("adm-x", key.key_id, USD, None, shared=True), key.key_id, "gen-b", 200, 0)
    books.settle(Admission("adm-y", key.key_id, USD, None, shared=True), key.key_id, "gen-c", 400, 0)
    await drained(books)
    log.write("gen-a", 100)
    log.write("gen-b", 200)
    spend = await books.spend(key)  # seeds: the log has gen-a and gen-b, Redis adds gen-c
    log.write("gen-c", 400)
    assert spend.spent == log.total == USD + 700
    await books.close()
    await link.aclose()


async def test_during_an_outage_n_replicas_spend_at_most_n_times_what_was_neither_spent_nor_held(
    redis_url: str,
) -> None:
    key = limits("key_bound", credit_usd=3.0)  # 1 spent in the log
    with FaultProxy("127.0.0.1", 6379) as proxy:
        made = []
        for _ in range(2):
            link = RedisLink(proxy.proxied_url(redis_url), timeout_s=0.3, retry_s=30)
            made.append((link, RedisLedger(link, logged(total=USD))))  # type: ignore[arg-type]
        (_, a), (_, b) = made
        for books in (a, b):  # one request in flight on each: 1 held
            await books.reserve(await books.admit(key, 0), key, USD // 2)
        for books in (a, b):  # a request each that Redis answers with the figures as they are now
            books.settle(await books.admit(key, 0), key.key_id, f"gen-{id(books)}", 0, 0)
        proxy.cut()  # Redis goes away: 3 - 1 spent - 1 held = 1 left, which each replica may take
        taken = []
        for books in (a, b):
            count = 0
            with contextlib.suppress(InsufficientCredit):
                while count < 10:
                    await books.reserve(await books.admit(key, 0), key, USD // 4)
                    count += 1
            taken.append(count)
            spend = await books.spend(key)
            assert spend.figures == "this_replica"
        assert taken == [4, 4]  # 1 each: 2 replicas spend at most 2 times what was left
        for link, _ in made:
            await link.aclose()
