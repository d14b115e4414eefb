"""Refuse HTTP requests with headers no route should see, before any route sees them.

- Too many headers (``max_headers``) or too many header bytes (``max_header_bytes``): 431, the answer a
  client can read (bounding what the HTTP server's parser buffers first is the server's part).
- A name or value holding CR, LF or NUL: 400. uvicorn's parsers refuse such bytes, but not every ASGI
  server or proxy in front of the gateway does, and a header value with a line break must never reach a log
  line or an upstream request.
- A credential header (``Authorization``, ``x-api-key``, ``x-goog-api-key``) sent twice: 400. Which of the
  two counts would depend on who reads them (a proxy may take the last, the gateway takes the first).

Answers are in the client's protocol (``replies.py``) and name a header by name only, since its value is
exactly what must not be echoed anywhere.

The check runs on every request, so it makes one pass over the joined header bytes and looks at the
headers one by one only once a request is suspect.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain

from tokenmux.asgi import AsgiApp, Receive, Scope, Send
from tokenmux.errors import ClientError, HeadersTooLarge, InvalidRequest
from tokenmux.server.replies import error_encoder_for, send_error

_SHOWN_NAME_CHARS = 64
_FORBIDDEN = (b"\r", b"\n", b"\0")
# The same bytes as numbers: ``13 in data`` is one memchr, while ``b"\r" in data`` first tries the needle
# as an integer and builds (and drops) a TypeError on CPython 3.11 before searching.
_CR, _LF, _NUL = 13, 10, 0
_CREDENTIALS = (b"authorization", b"x-api-key", b"x-goog-api-key")
# Browsers with many cookies send a few kB; nginx's default bound is 4 buffers of 8 kB.
MAX_HEADER_BYTES = 32 * 1024
MAX_HEADERS = 100


def first_broken_header(headers: Sequence[tuple[bytes, bytes]]) -> bytes | None:
    """The name of the first header whose name or value holds CR, LF or NUL, or None when all are clean."""
    # One join and three memchr scans over all the bytes at once: several times cheaper than testing each
    # of a typical request's dozen headers in turn. Only a request already known to be bad is walked.
    joined = b"".join(chain.from_iterable(headers))
    if _CR not in joined and _LF not in joined and _NUL not in joined:
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


def repeated_credential(headers: Sequence[tuple[bytes, bytes]], joined: bytes) -> bytes | None:
    """The name of a credential header sent more than once, or None. ``joined`` is all header bytes: a
    request naming each credential at most once anywhere (nearly all) is passed by two substring counts.
    ASGI servers give header names in lower case."""
    for credential in _CREDENTIALS:
        if joined.count(credential) > 1 and sum(1 for name, _ in headers if name == credential) > 1:
            return credential
    return None


def problem_of(
    headers: Sequence[tuple[bytes, bytes]], max_bytes: int = MAX_HEADER_BYTES, max_count: int = MAX_HEADERS
) -> ClientError | None:
    """Why a request's headers are refused, or None when they are fine."""
    if len(headers) > max_count:
        return HeadersTooLarge(
            f"the request has {len(headers)} headers; this gateway accepts at most {max_count}"
        )
    joined = b"".join(chain.from_iterable(headers))
    if len(joined) > max_bytes:
        return HeadersTooLarge(
            f"the request headers hold {len(joined)} bytes; this gateway accepts at most {max_bytes}"
            " (a very long cookie or key?)"
        )
    if _CR in joined or _LF in joined or _NUL in joined:
        broken = first_broken_header(headers)
        assert broken is not None
        return header_error(broken)
    repeated = repeated_credential(headers, joined)
    if repeated is not None:
        shown = repeated.decode("latin-1")
        return InvalidRequest(
            f"the request has more than one {shown!r} header; send the key once", param=shown
        )
    return None


class HeaderCheck:
    """An ASGI middleware refusing requests with too many, too long, broken or repeated credential headers,
    without calling the app."""

    def __init__(
        self, app: AsgiApp, *, max_bytes: int = MAX_HEADER_BYTES, max_count: int = MAX_HEADERS
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_count = max_count

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            problem = problem_of(scope["headers"], self.max_bytes, self.max_count)
            if problem is not None:
                await send_refusal(scope, send, problem)
                return
        await self.app(scope, receive, send)


async def send_refusal(scope: Scope, send: Send, err: ClientError) -> None:
    """Answer ``err`` before any route has seen the request, in the protocol its path belongs to."""
    await send_error(send, err, error_encoder_for(str(scope.get("path", ""))), None)
