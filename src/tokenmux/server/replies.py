"""The one way the gateway answers an error: counted in the metrics, encoded in the protocol of the API the
path belongs to (Anthropic's shape under ``/api/anthropic/``, Gemini's under ``/api/gemini/``, OpenAI's
elsewhere), whoever refuses the request: the header check, the key guard, the route table or a route."""

from __future__ import annotations

from collections.abc import Callable

from tokenmux.asgi import Send, send_bytes
from tokenmux.errors import TokenmuxError
from tokenmux.protocols import anthropic_answer, gemini_answer, openai_chat
from tokenmux.server.metrics import Metrics

ErrorEncoder = Callable[[TokenmuxError], bytes]

# Each API's error shape, by the prefix of its paths; a new inbound protocol adds its line.
ERROR_SHAPES: tuple[tuple[str, ErrorEncoder], ...] = (
    ("/api/anthropic/", anthropic_answer.encode_error),
    ("/api/gemini/", gemini_answer.encode_error),
)


def error_encoder_for(path: str) -> ErrorEncoder:
    """How an error on ``path`` is written: its API's shape, OpenAI's for any other path."""
    for prefix, encode in ERROR_SHAPES:
        if path.startswith(prefix):
            return encode
    return openai_chat.encode_error


async def send_error(
    send: Send,
    err: TokenmuxError,
    encode: ErrorEncoder,
    metrics: Metrics | None,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Answer ``err`` with its status and headers (``Retry-After``...) plus ``extra``; ``metrics`` None for
    refusals made before any route (they are counted where they are decided).

    The error's traceback is dropped: it holds the frames it was raised through, and the frame that raised
    it holds it, a reference cycle that would keep the whole request (its body among it) until the garbage
    collector came round. An error answered here is the client's news, never a log's."""
    err.__traceback__ = None
    if metrics is not None:
        metrics.error(err.status)
    headers = err.headers()
    if extra:
        headers = headers + extra
    await send_bytes(send, err.status, encode(err), headers)
