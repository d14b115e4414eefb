"""Properties of the money and rate arithmetic, over many generated cases (hypothesis)."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from tokenmux.catalog.model import Price, PriceTier
from tokenmux.catalog.pricing import cost_usd, max_cost_usd
from tokenmux.errors import InsufficientCredit
from tokenmux.limits.key_limits import KeyLimits
from tokenmux.limits.ledger import LocalLedger
from tokenmux.limits.money import ceil_nano, to_nano
from tokenmux.limits.window import WINDOW_S, wait_s, weighted_count
from tokenmux.store.records import KeyRecord
from tokenmux.types import Usage

prices_per_million = st.decimals(min_value=0, max_value=200, places=3).map(float)


@st.composite
def priced(draw: st.DrawFn) -> Price:
    input_ = draw(prices_per_million)
    output = draw(prices_per_million)
    tiers: tuple[PriceTier, ...] = ()
    if draw(st.booleans()):
        # A dearer tier above a prompt size, as the catalog's are.
        tiers = (
            PriceTier(above_tokens=draw(st.integers(1, 300_000)), input=input_ * 2, output=output * 1.5),
        )
    return Price(
        input=input_,
        output=output,
        cache_read=draw(st.none() | st.just(input_ / 10)),
        cache_write_5m=draw(st.none() | st.just(input_ * 1.25)),
        cache_write_1h=draw(st.none() | st.just(input_ * 2)),
        tiers=tiers,
    )


@given(
    price=priced(),
    prompt_bound=st.integers(0, 2_000_000),
    max_output=st.integers(0, 200_000),
    data=st.data(),
)
def test_the_reservation_covers_every_real_cost(
    price: Price, prompt_bound: int, max_output: int, data: st.DataObject
) -> None:
    """Whatever a provider reports within the request's bounds, cached and written tokens included, the
    charge never exceeds the reservation."""
    prompt = data.draw(st.integers(0, prompt_bound))
    cached = data.draw(st.integers(0, prompt))
    written_5m = data.draw(st.integers(0, prompt - cached))
    written_1h = data.draw(st.integers(0, prompt - cached - written_5m))
    completion = data.draw(st.integers(0, max_output))
    usage = Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        cached_tokens=cached,
        cache_write_5m_tokens=written_5m,
        cache_write_1h_tokens=written_1h,
        reasoning_tokens=data.draw(st.integers(0, completion)),
    )
    assert to_nano(cost_usd(usage, price)) <= ceil_nano(max_cost_usd(prompt_bound, max_output, price))


@given(st.floats(min_value=0, max_value=1e6, allow_nan=False))
def test_a_reservation_rounds_up_within_one_unit(usd: float) -> None:
    units = ceil_nano(usd)
    assert units >= usd * 1e9 - 1e-3
    assert units - usd * 1e9 < 1.0


@given(
    previous=st.integers(0, 10_000),
    current=st.integers(0, 10_000),
    elapsed=st.floats(0, WINDOW_S, exclude_max=True),
    limit=st.integers(1, 5_000),
)
def test_after_the_wait_one_more_fits(previous: int, current: int, elapsed: float, limit: int) -> None:
    wait = wait_s(previous, current, elapsed, limit)
    assert wait >= 0
    later = elapsed + wait + 1e-6
    if later >= WINDOW_S:  # the window rolled: this minute became the previous one
        count = weighted_count(current, 0, later - WINDOW_S) if later < 2 * WINDOW_S else 0.0
    else:
        count = weighted_count(previous, current, later)
    assert count <= limit - 1 + 1e-6
    if wait > 1e-3:  # and not before: the wait is no longer than it must be
        assert weighted_count(previous, current, elapsed) > limit - 1


def _key(credit: float) -> KeyLimits:
    record = KeyRecord(id="key_p", name="p", digest="d", display="x", created_at=0.0, credit_usd=credit)
    return KeyLimits.of(record)


@settings(max_examples=200)
@given(
    credit_units=st.integers(0, 10_000),
    steps=st.lists(st.tuples(st.integers(0, 3_000), st.floats(0, 1)), min_size=1, max_size=60),
    settle_order=st.randoms(use_true_random=False),
)
def test_the_ledger_never_spends_past_the_credit(
    credit_units: int, steps: list[tuple[int, float]], settle_order: object
) -> None:
    """Any interleaving of admissions and settlements (each charging at most what it reserved) keeps
    spend within the credit, and ends with nothing held and every charge counted exactly once."""

    async def run() -> None:
        async def nothing_spent(key_id: str, since: str | None) -> int:
            return 0

        books = LocalLedger(nothing_spent)
        key = _key(credit_units / 1e9)
        open_: list[tuple[object, int]] = []
        charged = 0
        for reserve, share in steps:
            try:
                admission = await books.admit(key, reserve)
            except InsufficientCredit:
                pass
            else:
                open_.append((admission, int(reserve * share)))
            if open_ and settle_order.random() < 0.5:  # type: ignore[attr-defined]
                admission, cost = open_.pop(settle_order.randrange(len(open_)))  # type: ignore[attr-defined]
                books.settle(admission, "key_p", "gen", cost, 0)  # type: ignore[arg-type]
                charged += cost
            spend = await books.spend(key)
            assert spend.spent + spend.reserved <= credit_units
        for admission, cost in open_:
            books.settle(admission, "key_p", "gen", cost, 0)  # type: ignore[arg-type]
            charged += cost
        spend = await books.spend(key)
        assert spend.reserved == 0 and spend.in_flight == 0
        assert spend.spent == charged <= credit_units

    asyncio.run(run())
