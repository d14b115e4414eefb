"""The one way the gateway answers an error: counted in the metrics, encoded in the route's protocol."""

from __future__ import annotations

from collections.abc import Callable

from tokenmux.asgi import Send, send_bytes
from tokenmux.errors import TokenmuxError
from tokenmux.server.metrics import Metrics

ErrorEncoder = Callable[[TokenmuxError], bytes]


async def send_error(
    send: Send,
    err: TokenmuxError,
    encode: ErrorEncoder,
    metrics: Metrics | None,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Answer ``err`` with its status and headers (``Retry-After``...) plus ``extra``; ``metrics`` None for
    refusals made before any route (they are counted where they are decided)."""
    if metrics is not None:
        metrics.error(err.status)
    headers = err.headers()
    if extra:
        headers = headers + extra
    await send_bytes(send, err.status, encode(err), headers)
