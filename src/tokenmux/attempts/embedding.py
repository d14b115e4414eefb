"""An embeddings request's answer, for the attempt loop (``Answer`` in ``answer.py``): one ``embed`` call
per attempt, committed when the vectors arrive.

Vectors of another size than the request asked for, or a provider with no ``embed``, fail the attempt as
a malformed answer, so the loop moves on to the next endpoint. A key that keeps prompts keeps the
request's inputs and, of the answer, the number and size of the vectors, not the vectors themselves.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from tokenmux.attempts.answer import Delivered
from tokenmux.attempts.generation import Generation
from tokenmux.catalog.pricing import cost_usd
from tokenmux.errors import ProviderMalformed, TokenmuxError
from tokenmux.providers.base import CallContext, Provider
from tokenmux.routing.router import Candidate
from tokenmux.types import EmbeddingRequest, EmbeddingResult, Usage


@dataclass(slots=True)
class EmbeddingServed:
    """A finished embeddings request, ready to encode."""

    result: EmbeddingResult
    candidate: Candidate
    usage: Usage
    cost: float


class EmbeddingAnswer:
    __slots__ = ("_arrived", "_gen", "_result", "served")

    def __init__(self, gen: Generation[EmbeddingRequest]) -> None:
        self._gen = gen
        self._result: EmbeddingResult | None = None
        self._arrived = 0.0
        self.served: EmbeddingServed | None = None

    async def open(self, provider: Provider, cand: Candidate, ctx: CallContext, left_s: float) -> None:
        embed = getattr(provider, "embed", None)
        if embed is None:
            raise ProviderMalformed(f"{cand.endpoint.provider} has no embeddings API in this gateway")
        request = self._gen.request
        result: EmbeddingResult = await embed(request, ctx)
        wanted = request.dimensions
        if wanted is not None and any(len(v) != wanted for v in result.vectors):
            sizes = sorted({len(v) for v in result.vectors})
            raise ProviderMalformed(
                f"{cand.endpoint.provider} answered vectors of {sizes} numbers, not {wanted}"
            )
        self._result = result
        self._arrived = time.perf_counter()

    async def abandon(self) -> None:
        self._result = None

    async def deliver(self, cand: Candidate) -> Delivered:
        result = self._result
        assert result is not None
        usage = result.usage
        cost = cost_usd(usage, cand.endpoint.price)
        self.served = EmbeddingServed(result, cand, usage, cost)
        if self._gen.keep_content:
            dimensions = len(result.vectors[0]) if result.vectors else 0
            self._gen.answer = {"embeddings": len(result.vectors), "dimensions": dimensions}
        t_end = self._arrived
        return Delivered(usage, cost, None, t_first=t_end, t_end=t_end, streamed=False)

    async def succeed(self, delivered: Delivered) -> None:
        return None

    async def fail(self, failure: TokenmuxError, cand: Candidate) -> None:
        raise failure
