"""Refuse HTTP requests whose header names or values hold CR, LF or NUL before any route sees them.

uvicorn's parsers refuse such bytes, but not every ASGI server or proxy in front of the gateway does, and a
header value with a line break must never reach a log line or an upstream request. So the gateway checks
for itself: a 400 in the client's protocol (Anthropic's error shape under ``/api/anthropic/``, OpenAI's
elsewhere) naming the header by name only, since its value is exactly what must not be echoed anywhere.

The check runs on every request, so it makes one pass over the joined header bytes and looks at the
headers one by one only once a request is known to be refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain

from tokenmux.errors import InvalidRequest
from tokenmux.protocols import anthropic_answer, openai_chat
from tokenmux.server.asgi import AsgiApp, Receive, Scope, Send, send_bytes

ANTHROPIC_PREFIX = "/api/anthropic/"
_SHOWN_NAME_CHARS = 64
_FORBIDDEN = (b"\r", b"\n", b"\0")


def first_broken_header(headers: Sequence[tuple[bytes, bytes]]) -> bytes | None:
    """The name of the first header whose name or value holds CR, LF or NUL, or None when all are clean."""
    # One join and three memchr scans over all the bytes at once: several times cheaper than testing each
    # of a typical request's dozen headers in turn. Only a request already known to be bad is walked.
    joined = b"".join(chain.from_iterable(headers))
    if b"\r" not in joined and b"\n" not in joined and b"\0" not in joined:
        return None
    for name, value in headers:
        if any(bad in value or bad in name for bad in _FORBIDDEN):
            return name
    raise AssertionError("a forbidden byte was in the joined headers, so one header holds it")


def header_error(name: bytes) -> InvalidRequest:
    """The 400 for a broken header; a name that is itself broken is shown with its bad bytes as ``?``."""
    shown = name[:_SHOWN_NAME_CHARS].decode("latin-1").translate({13: "?", 10: "?", 0: "?"})
    return InvalidRequest(
        f"the request header {shown!r} holds a line break (CR or LF) or a NUL byte; send each header as one"
        " line of printable text",
        param=shown,
    )


class HeaderCheck:
    """An ASGI middleware answering 400 to requests with CR, LF or NUL in a header, without calling the app."""

    def __init__(self, app: AsgiApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            broken = first_broken_header(scope["headers"])
            if broken is not None:
                await self._refuse(scope, send, broken)
                return
        await self.app(scope, receive, send)

    @staticmethod
    async def _refuse(scope: Scope, send: Send, name: bytes) -> None:
        err = header_error(name)
        if str(scope.get("path", "")).startswith(ANTHROPIC_PREFIX):
            body = anthropic_answer.encode_error(err)
        else:
            body = openai_chat.encode_error(err)
        await send_bytes(send, err.status, body, err.headers())
