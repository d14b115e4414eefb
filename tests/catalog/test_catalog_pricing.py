"""Cost arithmetic, checked against sums worked out by hand (prices are USD per million tokens)."""

from __future__ import annotations

from tokenmux.catalog import load_catalog
from tokenmux.catalog.model import Price, PriceTier
from tokenmux.catalog.pricing import cost_usd, effective_prices, max_cost_usd
from tokenmux.types import Usage


def _price(model_id: str, provider: str) -> Price:
    (endpoint,) = [e for e in load_catalog().endpoints_of(model_id) if e.provider == provider]
    return endpoint.price


def test_plain_input_and_output() -> None:
    # 1000 x 0.10 + 500 x 0.40 = 100 + 200 = 300 millionths of a dollar.
    assert (
        cost_usd(Usage(prompt_tokens=1000, completion_tokens=500), _price("openai/gpt-4.1-nano", "openai"))
        == 0.0003
    )


def test_cached_tokens_at_each_endpoints_cache_read_price() -> None:
    usage = Usage(prompt_tokens=10_000, completion_tokens=100, cached_tokens=8000)
    # openai: 2000 x 0.10 + 8000 x 0.025 + 100 x 0.40 = 200 + 200 + 40 = 440 millionths.
    assert cost_usd(usage, _price("openai/gpt-4.1-nano", "openai")) == 0.00044
    # azure: 2000 x 0.10 + 8000 x 0.03 + 100 x 0.40 = 200 + 240 + 40 = 480 millionths.
    assert cost_usd(usage, _price("openai/gpt-4.1-nano", "azure")) == 0.00048


def test_cached_tokens_cost_the_input_price_when_the_endpoint_has_no_cache_price() -> None:
    price = _price("deepseek/deepseek-v3", "together")
    assert price.cache_read is None
    # 1000 x 1.25 + 10 x 1.25 = 1262.5 millionths, whether or not half of the prompt was cached.
    cached = cost_usd(Usage(prompt_tokens=1000, completion_tokens=10, cached_tokens=500), price)
    assert cached == cost_usd(Usage(prompt_tokens=1000, completion_tokens=10), price) == 0.0012625


def test_cache_writes_and_reasoning_tokens() -> None:
    price = _price("anthropic/claude-sonnet-4.5", "anthropic")
    usage = Usage(
        prompt_tokens=10_000,
        cached_tokens=3000,
        cache_write_5m_tokens=2000,
        cache_write_1h_tokens=1000,
        completion_tokens=1000,
        reasoning_tokens=400,  # part of completion_tokens, not charged again
    )
    # 4000 x 3 + 3000 x 0.30 + 2000 x 3.75 + 1000 x 6 + 1000 x 15
    # = 12000 + 900 + 7500 + 6000 + 15000 = 41400 millionths.
    assert cost_usd(usage, price) == 0.0414


def test_cache_writes_cost_the_input_price_when_the_endpoint_has_none() -> None:
    price = Price(input=2.0, output=8.0)
    usage = Usage(prompt_tokens=100, cache_write_5m_tokens=30, cache_write_1h_tokens=20, completion_tokens=10)
    # 50 x 2 + 30 x 2 + 20 x 2 + 10 x 8 = 280 millionths.
    assert cost_usd(usage, price) == 0.00028


def test_the_tier_above_200k_replaces_the_base_prices() -> None:
    price = _price("google/gemini-2.5-pro", "google")
    big = Usage(prompt_tokens=250_000, cached_tokens=50_000, completion_tokens=2000)
    # 200000 x 2.50 + 50000 x 0.25 + 2000 x 15 = 500000 + 12500 + 30000 = 542500 millionths.
    assert cost_usd(big, price) == 0.5425
    # Exactly 200K is not above 200K: 200000 x 1.25 + 2000 x 10 = 270000 millionths.
    assert cost_usd(Usage(prompt_tokens=200_000, completion_tokens=2000), price) == 0.27


def test_the_highest_applicable_tier_wins_and_unset_tier_cache_prices_fall_back_to_the_base() -> None:
    price = Price(
        input=1.0,
        output=2.0,
        cache_read=0.1,
        cache_write_5m=1.5,
        tiers=(PriceTier(above_tokens=100, input=3.0, output=4.0, cache_read=0.5), PriceTier(1000, 5.0, 6.0)),
    )
    assert effective_prices(price, 100) == (1.0, 2.0, 0.1, 1.5, 1.0)
    assert effective_prices(price, 101) == (3.0, 4.0, 0.5, 1.5, 3.0)
    assert effective_prices(price, 5000) == (5.0, 6.0, 0.1, 1.5, 5.0)
    # 5000-token prompt, 1000 cached, 10 output: 4000 x 5 + 1000 x 0.1 + 10 x 6 = 20160 millionths.
    assert cost_usd(Usage(prompt_tokens=5000, cached_tokens=1000, completion_tokens=10), price) == 0.02016


def test_sums_of_decimal_prices_do_not_drift() -> None:
    price = Price(input=0.1, output=0.2)
    # In floats 3 * 0.1 / 1e6 is 3.0000000000000004e-07; the exact sum is 3e-07.
    assert 3 * 0.1 / 1e6 != 3e-07
    assert cost_usd(Usage(prompt_tokens=3), price) == 3e-07
    assert cost_usd(Usage(prompt_tokens=7, completion_tokens=7), price) == 2.1e-06
    many = Usage(prompt_tokens=123_456_789, completion_tokens=987_654)
    # 123456789 x 0.1 + 987654 x 0.2 = 12345678.9 + 197530.8 = 12543209.7 millionths.
    assert cost_usd(many, price) == 12.5432097


def test_inconsistent_cache_counts_never_charge_a_negative_remainder() -> None:
    price = Price(input=1.0, output=1.0, cache_read=0.5)
    # A provider said 120 cached of a 100-token prompt: charge the 120 cached, nothing uncached.
    assert cost_usd(Usage(prompt_tokens=100, cached_tokens=120), price) == 0.00006


def test_zero_usage_costs_nothing() -> None:
    assert cost_usd(Usage(), _price("openai/gpt-4o", "openai")) == 0.0


def test_max_cost_takes_the_dearest_input_and_the_whole_output() -> None:
    sonnet = _price("anthropic/claude-sonnet-4.5", "anthropic")
    # 1000 prompt tokens at the 1-hour cache write price 6 + 500 x 15 = 6000 + 7500 = 13500 millionths.
    assert max_cost_usd(1000, 500, sonnet) == 0.0135
    nano = _price("openai/gpt-4.1-nano", "openai")
    # 1000 x 0.10 + 32768 x 0.40 = 100 + 13107.2 = 13207.2 millionths.
    assert max_cost_usd(1000, 32_768, nano) == 0.0132072
    gemini = _price("google/gemini-2.5-pro", "google")
    # Above 200K the tier applies: 300000 x 2.5 + 1000 x 15 = 765000 millionths.
    assert max_cost_usd(300_000, 1000, gemini) == 0.765


def test_max_cost_bounds_every_cost_with_the_same_sizes() -> None:
    price = _price("anthropic/claude-opus-4.5", "anthropic")
    bound = max_cost_usd(10_000, 2000, price)
    for usage in (
        Usage(prompt_tokens=10_000, completion_tokens=2000),
        Usage(prompt_tokens=10_000, completion_tokens=2000, cache_write_1h_tokens=10_000),
        Usage(prompt_tokens=10_000, completion_tokens=2000, cache_write_5m_tokens=5000, cached_tokens=5000),
    ):
        assert cost_usd(usage, price) <= bound
