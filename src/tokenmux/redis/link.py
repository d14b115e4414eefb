"""One Redis connection pool with bounded waits, and a breaker so an outage costs a request nothing.

Every call is bounded by ``timeout_s`` (a frozen server cannot hold a request longer than that). After a
failure the link is *down* for ``retry_s``: calls fail at once with ``RedisUnavailable`` instead of each
waiting out the timeout, and callers use their stated fallback (``limits.redis_ledger``). The first call
after ``retry_s`` tries Redis again; a success brings the link back up.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tokenmux.errors import RedisUnavailable, ReplyError
from tokenmux.redis.resp import RespClient

log = logging.getLogger(__name__)

T = TypeVar("T")


def described(url: str) -> str:
    """The URL without its password, for messages."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rpartition('@')[2]}"


class RedisLink:
    def __init__(self, url: str, *, timeout_s: float = 0.25, retry_s: float = 1.0) -> None:
        self.where = described(url)
        self.timeout_s = timeout_s
        self.retry_s = retry_s
        self.client = RespClient(url)
        self._down_until = 0.0
        self.failures = 0  # calls that failed since start, for /metrics and tests

    @property
    def up(self) -> bool:
        """Whether calls go to Redis now: the breaker's view, which lets calls through again once
        ``retry_s`` has passed since a failure, before anyone knows whether Redis is back."""
        return self._down_until <= time.monotonic()

    @property
    def answering(self) -> bool:
        """Whether Redis answered the last call or ping made to it (True before any): what /ready and
        /metrics report, which a breaker's open window running out does not change."""
        return self._down_until == 0.0

    async def call(self, fn: Callable[[RespClient], Awaitable[T]]) -> T:
        if not self.up:
            raise RedisUnavailable(
                f"Redis at {self.where} is unavailable (retrying every {self.retry_s:g} s)"
            )
        try:
            # asyncio.timeout rather than wait_for: no task per call.
            async with asyncio.timeout(self.timeout_s):
                result = await fn(self.client)
        except (ReplyError, OSError, TimeoutError) as exc:
            self._failed(exc)
            raise RedisUnavailable(f"Redis at {self.where} did not answer: {type(exc).__name__}") from None
        self._answered()
        return result

    async def ping(self) -> bool:
        """True when Redis answers now. Never raises (for /ready); ignores the breaker, and what it finds
        is what the link reports from then on (``answering``)."""
        try:
            async with asyncio.timeout(self.timeout_s):
                await self.client.call("PING")
        except (ReplyError, OSError, TimeoutError) as exc:
            self._failed(exc)
            return False
        self._answered()
        return True

    def _failed(self, exc: BaseException) -> None:
        # Whatever the connection was doing is now unknown: start again on a new one.
        self.client.reset()
        self.failures += 1
        if self._down_until == 0.0 or self.up:
            log.warning("Redis at %s failed (%s); using the local fallback", self.where, type(exc).__name__)
        self._down_until = time.monotonic() + self.retry_s

    def _answered(self) -> None:
        if self._down_until:
            log.info("Redis at %s answers again", self.where)
            self._down_until = 0.0

    async def aclose(self) -> None:
        await self.client.aclose()
