"""The in-process ledger: every limit, reservations and settling, seeded from the request log."""

from __future__ import annotations

import asyncio

import pytest

from clock_support import Clock
from tokenmux.errors import InsufficientCredit, RateLimited
from tokenmux.limits.key_limits import KeyLimits
from tokenmux.limits.ledger import LocalLedger
from tokenmux.store.records import KeyRecord

USD = 1_000_000_000


def limits(**fields: object) -> KeyLimits:
    record = KeyRecord(id="key_1", name="k", digest="d", display="x", created_at=0.0)
    for name, value in fields.items():
        setattr(record, name, value)
    return KeyLimits.of(record)


T0 = 1_764_000_000.0  # 2025-11-24 16:00 UTC


def source(total: int = 0, period: int = 0) -> object:
    calls: list[tuple[str, str | None]] = []

    async def spent(key_id: str, since: str | None) -> int:
        calls.append((key_id, since))
        return total if since is None else period

    spent.calls = calls  # type: ignore[attr-defined]
    return spent


async def test_credit_is_reserved_then_charged() -> None:
    books = LocalLedger(source(total=2 * USD))  # type: ignore[arg-type]
    key = limits(credit_usd=5.0)
    first = await books.admit(key, 2 * USD)
    with pytest.raises(InsufficientCredit) as err:
        await books.admit(key, 2 * USD)  # 2 spent + 2 held + 2 asked > 5
    assert err.value.status == 402 and "reserved" in err.value.message
    books.settle(first, "key_1", "gen", USD // 2, 100)
    spend = await books.spend(key)
    assert spend.spent == 2 * USD + USD // 2 and spend.reserved == 0 and spend.in_flight == 0
    second = await books.admit(key, 2 * USD)  # 2.5 + 2 <= 5
    assert second.reserved == 2 * USD


async def test_settling_twice_charges_once() -> None:
    books = LocalLedger(source())  # type: ignore[arg-type]
    key = limits(credit_usd=1.0)
    admission = await books.admit(key, 1000)
    books.settle(admission, "key_1", "gen", 400, 10)
    books.settle(admission, "key_1", "gen", 400, 10)
    assert (await books.spend(key)).spent == 400


async def test_budget_counts_the_period_only() -> None:
    clock = Clock(T0)
    books = LocalLedger(source(total=100 * USD, period=USD), clock=clock)  # type: ignore[arg-type]
    key = limits(budget_usd=2.0, budget_period="day")
    admission = await books.admit(key, USD)  # 1 spent today + 1 asked <= 2
    with pytest.raises(InsufficientCredit) as err:
        await books.admit(key, 1)
    assert err.value.code == "budget_exhausted" and "resets at" in err.value.message
    books.settle(admission, "key_1", "gen", USD, 0)
    spend = await books.spend(key)
    assert spend.period_spent == 2 * USD and spend.spent == 101 * USD


async def test_rpm_slides_and_says_when_to_retry() -> None:
    clock = Clock(T0 - T0 % 60)  # the start of a minute
    books = LocalLedger(source(), clock=clock)  # type: ignore[arg-type]
    key = limits(rpm=2)
    for _ in range(2):
        books.settle(await books.admit(key, 0), "key_1", "gen", 0, 0)
    with pytest.raises(RateLimited) as err:
        await books.admit(key, 0)
    assert 59 <= err.value.retry_after <= 60 + 60
    assert err.value.headers()[0][0] == b"retry-after"
    clock.now += err.value.retry_after + 0.01
    await books.admit(key, 0)


async def test_tpm_counts_tokens_of_settled_requests() -> None:
    clock = Clock(T0)
    books = LocalLedger(source(), clock=clock)  # type: ignore[arg-type]
    key = limits(tpm=1000)
    books.settle(await books.admit(key, 0), "key_1", "gen", 0, 1500)
    with pytest.raises(RateLimited) as err:
        await books.admit(key, 0)
    assert err.value.code == "tpm_limited"
    clock.now += 121
    await books.admit(key, 0)


async def test_concurrency_counts_requests_in_flight() -> None:
    books = LocalLedger(source())  # type: ignore[arg-type]
    key = limits(concurrency=2)
    a = await books.admit(key, 0)
    await books.admit(key, 0)
    with pytest.raises(RateLimited) as err:
        await books.admit(key, 0)
    assert err.value.code == "concurrency_limited"
    books.settle(a, "key_1", "gen", 0, 0)
    await books.admit(key, 0)


async def test_twenty_at_once_against_credit_for_one() -> None:
    books = LocalLedger(source())  # type: ignore[arg-type]
    key = limits(credit_usd=1.5)
    results = await asyncio.gather(*(books.admit(key, USD) for _ in range(20)), return_exceptions=True)
    admitted = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, InsufficientCredit)]
    assert len(admitted) == 1 and len(refused) == 19


async def test_spend_is_read_once_per_key() -> None:
    spent = source(total=7)
    books = LocalLedger(spent)  # type: ignore[arg-type]
    key = limits(credit_usd=1.0)
    await asyncio.gather(*(books.admit(key, 0) for _ in range(5)))
    assert spent.calls == [("key_1", None)]  # type: ignore[attr-defined]
    assert (await books.spend(key)).spent == 7


async def test_a_failed_read_is_not_remembered() -> None:
    calls = 0

    async def flaky(key_id: str, since: str | None) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("database down")
        return 3

    books = LocalLedger(flaky)
    with pytest.raises(OSError):
        await books.admit(limits(credit_usd=1.0), 0)
    await books.admit(limits(credit_usd=1.0), 0)
    assert (await books.spend(limits(credit_usd=1.0))).spent == 3


async def test_unadmitted_keys_are_charged_once_their_spend_is_known() -> None:
    books = LocalLedger(source(total=10))  # type: ignore[arg-type]
    key = limits()
    books.settle(None, "key_1", "gen", 5, 0)  # not known yet: the request log has it
    assert (await books.spend(key)).spent == 10
    books.settle(None, "key_1", "gen", 5, 0)
    assert (await books.spend(key)).spent == 15


async def test_a_request_admitted_before_its_body_reserves_its_cost_after() -> None:
    books = LocalLedger(source(total=2 * USD))  # type: ignore[arg-type]
    key = limits(credit_usd=5.0, concurrency=3)
    first = await books.admit(key, 0)  # before the body: a slot, no money
    second = await books.admit(key, 0)
    await books.reserve(first, key, 2 * USD)
    with pytest.raises(InsufficientCredit) as err:
        await books.reserve(second, key, 2 * USD)  # 2 spent + 2 held + 2 asked > 5
    assert err.value.code == "credit_exhausted" and first.reserved == 2 * USD
    spend = await books.spend(key)
    assert spend.reserved == 2 * USD and spend.in_flight == 2
    books.settle(first, "key_1", "gen-1", USD, 10)
    books.settle(second, "key_1", "release-2", 0, 0)
    spend = await books.spend(key)
    assert spend.spent == 3 * USD and spend.reserved == 0 and spend.in_flight == 0
    await books.reserve(first, key, 10 * USD)  # settled already: nothing is held for it
    assert (await books.spend(key)).reserved == 0
