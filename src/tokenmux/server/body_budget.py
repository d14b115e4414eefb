"""One bound on the request bodies this process holds at once, whoever sends them.

A body is claimed before it is read (its ``Content-Length``, or as a chunked body grows), and the claim is
held until the request ends: the raw body, the decoded request and the body sent upstream all live that
long. A request that does not fit waits in line for a moment (``wait_s``), then gets 503 with
``Retry-After``: never more memory. A claim that fits is taken at once, even while larger ones wait, so
small requests are served throughout a flood of large ones; those waiting are granted in arrival order as
room is made. The largest body allowed fits an empty budget (it is at least ``max_body_bytes``).
"""

from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass

from tokenmux.errors import GatewayBusy


@dataclass(slots=True)
class _Waiter:
    size: int
    ready: asyncio.Future[None]


class BodyBudget:
    """Bytes of request bodies in flight, at most ``max_bytes``; claimed and released by ``BodyClaim``."""

    def __init__(self, max_bytes: int, *, wait_s: float) -> None:
        self.max_bytes = max_bytes
        self.wait_s = wait_s
        self.in_use = 0
        self.refused = 0  # requests answered 503 for want of room, for /metrics
        self._queue: collections.deque[_Waiter] = collections.deque()

    def claim(self) -> BodyClaim:
        return BodyClaim(self)

    def figures(self) -> dict[str, int]:
        """What /metrics shows of the budget: bytes held and allowed, requests waiting and refused."""
        return {
            "in_use_bytes": self.in_use,
            "limit_bytes": self.max_bytes,
            "waiting": len(self._queue),
            "refused": self.refused,
        }

    async def _take(self, size: int) -> None:
        if self.in_use + size <= self.max_bytes:
            self.in_use += size
            return
        if size > self.max_bytes:
            self.refused += 1
            raise GatewayBusy(f"a request body of {size} bytes is larger than this gateway holds at once")
        waiter = _Waiter(size, asyncio.get_running_loop().create_future())
        self._queue.append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter.ready), self.wait_s)
        except TimeoutError:
            if waiter.ready.done():  # granted just as the wait ran out: it is ours
                return
            self._queue.remove(waiter)
            self.refused += 1
            self._grant()  # those behind it may fit now
            raise GatewayBusy(
                "the gateway holds as many request bodies as it may right now; retry in a second"
            ) from None
        except asyncio.CancelledError:
            if waiter.ready.done():
                self._give(size)
            else:
                self._queue.remove(waiter)
                self._grant()
            raise

    def _give(self, size: int) -> None:
        self.in_use -= size
        self._grant()

    def _grant(self) -> None:
        while self._queue and self.in_use + self._queue[0].size <= self.max_bytes:
            waiter = self._queue.popleft()
            self.in_use += waiter.size
            waiter.ready.set_result(None)


class BodyClaim:
    """One request's share of the budget: grown as its body is known to be larger, released once."""

    __slots__ = ("_budget", "held")

    def __init__(self, budget: BodyBudget) -> None:
        self._budget = budget
        self.held = 0

    async def grow_to(self, size: int) -> None:
        """Hold at least ``size`` bytes (waiting for room, or raising ``GatewayBusy``)."""
        more = size - self.held
        if more > 0:
            await self._budget._take(more)
            self.held += more

    def release(self) -> None:
        if self.held:
            held, self.held = self.held, 0
            self._budget._give(held)
