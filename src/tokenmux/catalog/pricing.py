"""What a call costs, in USD, from its token counts and the serving endpoint's prices.

``Usage`` follows OpenAI's convention (see ``types.py``): ``prompt_tokens`` counts every prompt token,
including those read from the cache (``cached_tokens``) and those written to it
(``cache_write_5m_tokens``, ``cache_write_1h_tokens``); ``completion_tokens`` includes the reasoning
tokens. Adapters for providers that report these apart (Anthropic's ``input_tokens`` excludes cached
ones) convert to this convention before pricing. So a call is charged:

    prompt tokens neither cached nor written    at input
    cached tokens                               at cache_read      (input when the endpoint has none)
    cache writes, 5-minute and 1-hour           at cache_write_5m, cache_write_1h  (input when none)
    completion tokens, reasoning included       at output

When the price has tiers by prompt size, the highest tier whose ``above_tokens`` is below the prompt's
token count replaces the base prices for the whole call; a tier's unset cache prices fall back to the
base price's.

The sum is exact: each price is taken as the decimal figure it was written as, in integer units of
1e-9 USD per million tokens, so the total is an integer count of 1e-15 USD that is divided once. Sums of
figures such as 0.1 and 0.025 do not drift, and a float is made only at the end.
"""

from __future__ import annotations

from tokenmux.catalog.model import Price
from tokenmux.types import Usage

# A price in USD per million tokens becomes an integer count of 1e-9 USD per million tokens; tokens
# times that count is then a count of 1e-15 USD.
_PRICE_SCALE = 1_000_000_000
_COST_SCALE = 1_000_000_000_000_000


def cost_usd(usage: Usage, price: Price) -> float:
    """USD charged for ``usage`` at ``price`` (see the module docstring for the convention)."""
    input_, output, cache_read, write_5m, write_1h = effective_prices(price, usage.prompt_tokens)
    cached = usage.cached_tokens
    written_5m = usage.cache_write_5m_tokens
    written_1h = usage.cache_write_1h_tokens
    # Providers sometimes report cache counts that exceed the prompt; never charge a negative remainder.
    uncached = max(usage.prompt_tokens - cached - written_5m - written_1h, 0)
    total = uncached * _scaled(input_) + usage.completion_tokens * _scaled(output)
    # Most calls neither read nor write a cache: skip what is zero (this runs once per request).
    if cached:
        total += cached * _scaled(cache_read)
    if written_5m:
        total += written_5m * _scaled(write_5m)
    if written_1h:
        total += written_1h * _scaled(write_1h)
    return total / _COST_SCALE


def max_cost_usd(prompt_tokens: int, max_output: int, price: Price) -> float:
    """The most a call with this prompt size and output limit can cost: every prompt token at the
    dearest way of taking it in (writing the cache costs more than plain input at some providers) and
    every output token used."""
    input_, output, _, write_5m, write_1h = effective_prices(price, prompt_tokens)
    dearest_input = max(_scaled(input_), _scaled(write_5m), _scaled(write_1h))
    return (prompt_tokens * dearest_input + max_output * _scaled(output)) / _COST_SCALE


def effective_prices(price: Price, prompt_tokens: int) -> tuple[float, float, float, float, float]:
    """(input, output, cache_read, cache_write_5m, cache_write_1h) in USD per million tokens for a call
    with ``prompt_tokens``: the tier applied, and every unset cache price resolved."""
    input_, output = price.input, price.output
    cache_read, write_5m, write_1h = price.cache_read, price.cache_write_5m, price.cache_write_1h
    for tier in reversed(price.tiers):  # ascending by above_tokens: the first hit is the highest
        if prompt_tokens > tier.above_tokens:
            input_, output = tier.input, tier.output
            if tier.cache_read is not None:
                cache_read = tier.cache_read
            if tier.cache_write_5m is not None:
                write_5m = tier.cache_write_5m
            if tier.cache_write_1h is not None:
                write_1h = tier.cache_write_1h
            break
    return (
        input_,
        output,
        input_ if cache_read is None else cache_read,
        input_ if write_5m is None else write_5m,
        input_ if write_1h is None else write_1h,
    )


def _scaled(usd_per_million: float) -> int:
    # A price figure has at most a few decimals, so float * 1e9 lands far closer than 0.5 to the intended
    # whole number (for any price below a million USD) and rounding recovers it exactly.
    return round(usd_per_million * _PRICE_SCALE)
