"""Money as the ledger counts it: whole nano-dollars, budget periods, and a request's worst-case cost.

The ledger adds and compares integers (1 unit = 1e-9 USD) so that sums never drift, in Python and in
Redis alike (Redis's INCRBY is exact on 64-bit integers; a Lua number is exact up to 2**53 units, about
nine million dollars). A charge is rounded to the nearest unit; a reservation is rounded up, so it is never
less than what it covers.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

from tokenmux.catalog.pricing import max_cost_usd
from tokenmux.routing import embedding_inputs
from tokenmux.routing.fit import PromptSize
from tokenmux.routing.router import Candidate
from tokenmux.types import ChatRequest, EmbeddingRequest

NANO_PER_USD = 1_000_000_000
PERIODS = ("day", "week", "month")


def to_nano(usd: float) -> int:
    """A charge in ledger units."""
    return round(usd * NANO_PER_USD)


def ceil_nano(usd: float) -> int:
    """A reservation in ledger units: never below ``usd``."""
    return math.ceil(usd * NANO_PER_USD - 1e-6)  # the tolerance absorbs float noise below a unit


def to_usd(nano: int) -> float:
    return nano / NANO_PER_USD


def period_start(period: str, now: float) -> date:
    """The first UTC day of the budget period that ``now`` (unix seconds) falls in; weeks start on Monday."""
    today = datetime.fromtimestamp(now, tz=UTC).date()
    if period == "day":
        return today
    if period == "week":
        return today - timedelta(days=today.weekday())
    if period == "month":
        return today.replace(day=1)
    raise ValueError(f"unknown budget period {period!r}; one of {', '.join(PERIODS)}")


def period_end(period: str, now: float) -> datetime:
    """When the budget period that ``now`` falls in ends (UTC midnight)."""
    start = period_start(period, now)
    if period == "day":
        end = start + timedelta(days=1)
    elif period == "week":
        end = start + timedelta(days=7)
    else:
        end = (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return datetime(end.year, end.month, end.day, tzinfo=UTC)


def period_id(period: str, now: float) -> str:
    """A name for the period ``now`` falls in, unique across periods of every length: ``day:2026-11-26``."""
    return f"{period}:{period_start(period, now).isoformat()}"


def worst_case_usd(request: ChatRequest, plan: list[Candidate]) -> float:
    """The most this request can cost at any endpoint of its plan: the prompt's token bound (found
    without tokenizing) at the dearest way of taking tokens in, plus every output token it may ask for.

    Reserving this before sending means a key's limit holds whichever fallback ends up serving."""
    size = PromptSize(request)
    asked = request.max_output_tokens
    worst = 0.0
    bounds: dict[str, int] = {}
    for cand in plan:
        family = cand.model.tokenizer
        bound = bounds.get(family)
        if bound is None:
            bound = bounds[family] = size.upper_bound(family)
        endpoint = cand.endpoint
        # Without max_tokens the answer may run to the endpoint's output limit.
        output = endpoint.max_output if asked is None else min(asked, endpoint.max_output)
        worst = max(worst, max_cost_usd(bound, output, endpoint.price))
    return worst


def worst_case_embedding_usd(request: EmbeddingRequest, plan: list[Candidate]) -> float:
    """The most an embeddings request can cost at any endpoint of its plan: its inputs' token bound at
    the dearest input price (an embedding has no output to pay for)."""
    bounds: dict[str, int] = {}
    worst = 0.0
    for cand in plan:
        family = cand.model.tokenizer
        bound = bounds.get(family)
        if bound is None:
            bound = bounds[family] = embedding_inputs.upper_bound(request, family)
        worst = max(worst, max_cost_usd(bound, 0, cand.endpoint.price))
    return worst
