"""One Redis connection pool with bounded waits, and a breaker so an outage costs a request nothing.

Every call is bounded by ``timeout_s`` (a frozen server cannot hold a request longer than that). After a
failure the link is *down* for ``retry_s``: calls fail at once with ``SharedUnavailable`` instead of each
waiting out the timeout, and callers use their stated fallback (``accounts.RedisAccounts``). The first call
after ``retry_s`` tries Redis again; a success brings the link back up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

T = TypeVar("T")


class SharedUnavailable(Exception):
    """Redis cannot be used now; the message says why (never with a password in it)."""


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
        self.client: aioredis.Redis = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry_on_timeout=False,
            health_check_interval=30,
        )
        self._down_until = 0.0
        self.failures = 0  # calls that failed since start, for /metrics and tests

    @property
    def up(self) -> bool:
        return self._down_until <= time.monotonic()

    async def call(self, fn: Callable[[aioredis.Redis], Awaitable[T]]) -> T:
        if not self.up:
            raise SharedUnavailable(
                f"Redis at {self.where} is unavailable (retrying every {self.retry_s:g} s)"
            )
        try:
            result = await asyncio.wait_for(fn(self.client), self.timeout_s)
        except (RedisError, OSError, TimeoutError) as exc:
            self.failures += 1
            if self._down_until == 0.0 or self.up:
                log.warning(
                    "Redis at %s failed (%s); using the local fallback", self.where, type(exc).__name__
                )
            self._down_until = time.monotonic() + self.retry_s
            raise SharedUnavailable(f"Redis at {self.where} did not answer: {type(exc).__name__}") from None
        if self._down_until:
            log.info("Redis at %s answers again", self.where)
            self._down_until = 0.0
        return result

    async def ping(self) -> bool:
        """True when Redis answers now. Never raises (for /ready); ignores the breaker."""
        try:
            await asyncio.wait_for(self.client.ping(), self.timeout_s)
        except (RedisError, OSError, TimeoutError):
            return False
        return True

    async def aclose(self) -> None:
        with contextlib.suppress(RedisError, OSError):  # a dead server: nothing to close cleanly
            await self.client.aclose()
