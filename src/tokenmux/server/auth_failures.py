"""Refused API keys: counted for ``/metrics``, logged at a bounded rate, and a client address that keeps
sending wrong keys refused for a while.

Every request runs in its own task, and ``AuthGuard`` (the middleware in front of the routes) notes the
client address in a context variable, so the key ring, which refuses keys wherever a route asks it, can
say where a failure came from without every route passing the address along. An address with more than
``limit`` failures in a minute gets 429 with ``Retry-After`` on every request for ``block_s`` seconds
(``/health``, ``/ready`` and ``/metrics`` excepted): guessing keys stops paying, and the refusal costs one
dict lookup, done only while some address is blocked.

Behind a load balancer every client has the balancer's address (forwarded headers are not trusted), so
there ``gateway.auth_failure_limit: 0`` turns the blocking off; counting and logging stay.

Logging: the first failure is logged at once, then at most one line per ``LOG_EVERY_S`` saying how many
failures there were and from how many addresses. Never the key: only the reason and the address.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections import Counter
from collections.abc import Callable

from tokenmux.asgi import AsgiApp, Receive, Scope, Send
from tokenmux.errors import ClientError
from tokenmux.server.header_check import send_refusal

log = logging.getLogger("tokenmux.auth")

LOG_EVERY_S = 10.0
WINDOW_S = 60.0
MAX_TRACKED = 10_000  # addresses tracked at once; the oldest make room
UNGUARDED = frozenset({"/health", "/ready", "/metrics"})

client_address: contextvars.ContextVar[str | None] = contextvars.ContextVar("client_address", default=None)


class TooManyAuthFailures(ClientError):
    status = 429
    type = "rate_limit_error"
    code = "too_many_auth_failures"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [(b"retry-after", str(max(1, round(self.retry_after))).encode())]


class AuthFailures:
    """Counts, logs and throttles refused keys."""

    def __init__(
        self, *, limit: int = 30, block_s: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit  # failures per address per minute before it is blocked; 0: never blocked
        self.block_s = block_s
        self._clock = clock
        self.by_reason: Counter[str] = Counter()
        self._windows: dict[str, list[float]] = {}  # address -> [window start, failures in it]
        self.blocked: dict[str, float] = {}  # address -> blocked until
        self._logged_at = -LOG_EVERY_S
        self._unlogged = 0
        self._unlogged_from: set[str] = set()

    def failed(self, reason: str) -> None:
        """A key was refused for ``reason`` in the current request. A request without any key is counted
        and logged, but does not count towards blocking: it guesses nothing."""
        self.by_reason[reason] += 1
        address = client_address.get()
        now = self._clock()
        self._log(reason, address, now)
        if address is None or not self.limit or reason == "missing":
            return
        window = self._windows.get(address)
        if window is None or now - window[0] >= WINDOW_S:
            self._windows.pop(address, None)
            if len(self._windows) >= MAX_TRACKED:
                del self._windows[next(iter(self._windows))]
            self._windows[address] = window = [now, 0.0]
        window[1] += 1
        if window[1] > self.limit:
            self.blocked[address] = now + self.block_s
            del self._windows[address]
            log.warning(
                "%s sent more than %d wrong API keys within a minute; refusing its requests for %g s",
                address,
                self.limit,
                self.block_s,
            )

    def refusal(self, address: str) -> TooManyAuthFailures | None:
        """The 429 for a blocked address, or None (and the block lifted once it has passed)."""
        until = self.blocked.get(address)
        if until is None:
            return None
        wait = until - self._clock()
        if wait <= 0:
            del self.blocked[address]
            return None
        self.by_reason["throttled"] += 1
        return TooManyAuthFailures(
            f"too many requests with a wrong API key came from this address; retry in {max(1, round(wait))} s"
            " with a valid key",
            retry_after=wait,
        )

    def _log(self, reason: str, address: str | None, now: float) -> None:
        self._unlogged += 1
        if address is not None and len(self._unlogged_from) < 1000:
            self._unlogged_from.add(address)
        if now - self._logged_at < LOG_EVERY_S:
            return
        if self._unlogged == 1:
            log.warning(
                "authentication failed (%s) for a request from %s", reason, address or "an unknown address"
            )
        else:
            log.warning(
                "%d authentication failures from %d addresses in the last %g s (latest: %s from %s)",
                self._unlogged,
                len(self._unlogged_from),
                LOG_EVERY_S,
                reason,
                address or "an unknown address",
            )
        self._logged_at = now
        self._unlogged = 0
        self._unlogged_from.clear()


class AuthGuard:
    """An ASGI middleware noting each request's client address for ``AuthFailures`` and refusing requests
    from addresses it blocked."""

    def __init__(self, app: AsgiApp, failures: AuthFailures) -> None:
        self.app = app
        self.failures = failures

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            client = scope.get("client")
            address = client[0] if client else None
            client_address.set(address)
            blocked = self.failures.blocked
            if blocked and address in blocked and scope["path"] not in UNGUARDED:
                refusal = self.failures.refusal(address)
                if refusal is not None:
                    await send_refusal(scope, send, refusal)
                    return
        await self.app(scope, receive, send)
