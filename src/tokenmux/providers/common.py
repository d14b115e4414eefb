"""Small pieces every adapter needs the same way: error texts without our key, and stream failures."""

from __future__ import annotations

from typing import NoReturn

from tokenmux.errors import StreamInterrupted, UpstreamError


def scrub_key(message: str, api_key: str | None) -> str:
    """Providers echo (partly masked) keys in authentication errors; never pass ours on verbatim."""
    return message.replace(api_key, "***") if api_key else message


def fail_stream(error: UpstreamError, started: bool) -> NoReturn:
    """Raise ``error``, or, once output has begun, ``StreamInterrupted`` caused by it: after the first
    byte nothing may be retried, so the error must no longer look retryable."""
    if started:
        raise StreamInterrupted(f"the stream broke after output had begun: {error.message}") from error
    raise error


def snippet(body: bytes, limit: int = 300) -> str:
    """The start of an unreadable answer, for the error message."""
    text = body[:limit].decode("utf-8", "replace").strip()
    return text + "…" if len(body) > limit else text
