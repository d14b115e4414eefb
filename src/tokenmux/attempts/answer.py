"""What the attempt loop needs of an answer, whole or streamed, and the whole one.

An attempt has two phases. Until its answer *commits* (a whole response arrived; a stream's first
content arrived) it can fail over to the next endpoint: ``open`` raises an ``UpstreamError`` and the loop
``abandon``s it. Once committed, ``deliver`` runs it to its end and reports what it used, including a
stream that broke or a client that left; ``succeed`` or ``fail`` then tell the client.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from tokenmux.attempts.generation import Generation, Served
from tokenmux.catalog.pricing import cost_usd
from tokenmux.errors import TokenmuxError, UpstreamError
from tokenmux.providers.base import CallContext, Provider
from tokenmux.routing.router import Candidate
from tokenmux.types import ChatResponse, Usage


@dataclass(slots=True)
class Delivered:
    """What a committed attempt used and how it ended."""

    usage: Usage
    cost: float
    finish_reason: str | None
    t_first: float  # perf_counter: the first content (a whole answer: its arrival)
    t_end: float
    streamed: bool
    failure: UpstreamError | None = None  # the stream broke after its first content
    cancelled: bool = False  # the client went away


class Answer(Protocol):
    async def open(self, provider: Provider, cand: Candidate, ctx: CallContext, left_s: float) -> None:
        """Send the attempt and wait until its answer commits; raises ``UpstreamError``."""
        ...

    async def abandon(self) -> None:
        """Release an attempt that failed before committing (close its stream)."""
        ...

    async def deliver(self, cand: Candidate) -> Delivered: ...

    async def succeed(self, delivered: Delivered) -> None: ...

    async def fail(self, failure: TokenmuxError, cand: Candidate) -> None:
        """Tell the client the request failed (raising ``failure`` where a status can still say it)."""
        ...


class WholeAnswer:
    """A non-streamed request's answer: one ``complete`` call per attempt; ``served`` once it succeeded."""

    __slots__ = ("_arrived", "_gen", "_response", "served")

    def __init__(self, gen: Generation) -> None:
        self._gen = gen
        self._response: ChatResponse | None = None
        self._arrived = 0.0
        self.served: Served | None = None

    async def open(self, provider: Provider, cand: Candidate, ctx: CallContext, left_s: float) -> None:
        self._response = await provider.complete(self._gen.request, ctx)
        self._arrived = time.perf_counter()

    async def abandon(self) -> None:
        self._response = None

    async def deliver(self, cand: Candidate) -> Delivered:
        response = self._response
        assert response is not None
        t_end = self._arrived
        usage = response.usage or Usage()
        cost = cost_usd(usage, cand.endpoint.price)
        self.served = Served(response=response, candidate=cand, usage=usage, cost=cost)
        if self._gen.keep_content:
            self._gen.answer = {"choices": response.choices}
        finish = response.choices[0].get("finish_reason") if response.choices else None
        return Delivered(usage, cost, finish, t_first=t_end, t_end=t_end, streamed=False)

    async def succeed(self, delivered: Delivered) -> None:
        return None

    async def fail(self, failure: TokenmuxError, cand: Candidate) -> None:
        raise failure
