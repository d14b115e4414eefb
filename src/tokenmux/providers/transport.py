"""The HTTP seam under every provider adapter: value objects, one ``send`` method, and its implementations.

``Http1Transport`` (``http1.py``): the gateway's own client. ``AiohttpTransport`` (``aiohttp_transport.py``):
one pooled ``aiohttp.ClientSession`` per process, for what the own client does not do; imported only when
configured, as aiohttp costs about 9 MB of memory. ``MockTransport``: answers from a handler function, for
tests.

Every OS error, and every error of the transport's library, is translated in ``map_transport_errors`` into
the ``UpstreamError`` classes of ``errors.py``: nothing above the transports sees a library's exception.
"""

from __future__ import annotations

import asyncio
import email.utils
import inspect
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol

import msgspec

from tokenmux.errors import ProviderTimeout, ProviderUnreachable, UpstreamError
from tokenmux.protocols.sse import DONE, encode_data


@dataclass(slots=True)
class HttpRequest:
    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes
    # Bounds connecting, the wait for the response headers, and every wait for the next body chunk.
    timeout_s: float


class HttpResponse(Protocol):
    status: int

    def header(self, name: str) -> str | None:
        """The value of a response header, looked up case-insensitively."""
        ...

    async def read(self) -> bytes:
        """The whole body."""
        ...

    def aiter_bytes(self) -> AsyncIterator[bytes]:
        """Body chunks as they arrive from the network (not re-split into lines or events)."""
        ...

    async def aclose(self) -> None:
        """Give the connection back: to the pool if the body was read to its end, else close it, which is
        how an abandoned stream cancels the upstream call. Idempotent."""
        ...

    # Optional: ``body_arrived: bool``, True once the rest of the body can be read without waiting. An
    # adapter that drains a finished stream's last bytes then needs no timer to bound the wait.


class Transport(Protocol):
    async def send(self, request: HttpRequest) -> HttpResponse:
        """Send the request and return once the response headers have arrived."""
        ...

    async def aclose(self) -> None: ...


# The one place lower-layer errors become ours


# A transport library's own errors translated (``aiohttp_transport.py``); None for the others.
LibraryErrors = Callable[[Exception, str], UpstreamError | None]


def map_transport_errors(
    timeout_s: float, where: str = "the provider", library: LibraryErrors | None = None
) -> _TransportErrorMap:
    """``with map_transport_errors(timeout_s, "host:port"): ...`` translates OS errors (and, with
    ``library``, that library's errors) raised inside the block into ``UpstreamError`` subclasses.

    Timeouts become ``ProviderTimeout``; refused, reset and DNS failures ``ProviderUnreachable``; a reply
    that is not HTTP ``ProviderMalformed``. Cancellation and our own errors pass through untouched.
    Messages name the failure, never a header (keys travel in headers).
    """
    return _TransportErrorMap(timeout_s, where, library)


class _TransportErrorMap:
    """A class rather than ``@contextmanager``: entered on every body chunk, it must cost next to nothing."""

    __slots__ = ("library", "timeout_s", "where")

    def __init__(self, timeout_s: float, where: str, library: LibraryErrors | None) -> None:
        self.timeout_s = timeout_s
        self.where = where
        self.library = library

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None or isinstance(exc, UpstreamError) or not isinstance(exc, Exception):
            return
        translated = _translate(exc, self.timeout_s, self.where, self.library)
        if translated is not None:
            raise translated from exc


def _translate(
    exc: Exception, timeout_s: float, where: str, library: LibraryErrors | None
) -> UpstreamError | None:
    # Order matters: a library's timeout errors are also connection errors, TimeoutError is an OSError,
    # and a library's connection errors are OSErrors with more to say.
    if isinstance(exc, TimeoutError):
        return ProviderTimeout(f"the provider did not answer within {timeout_s:g} s")
    translated = library(exc, where) if library is not None else None
    if translated is None and isinstance(exc, OSError):  # refused, reset, DNS (gaierror), TLS (SSLError)
        return ProviderUnreachable(f"connection to {where} failed: {exc.strerror or exc}")
    return translated


# Retry-After


def retry_after_seconds(response: HttpResponse) -> float | None:
    """Seconds the provider asked us to wait: ``retry-after-ms`` (OpenAI) if sent, else ``Retry-After`` as
    delta-seconds or an HTTP date. None when absent or unreadable."""
    millis = response.header("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000.0)
        except ValueError:
            pass
    value = response.header("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


# The test transport

MockBody = bytes | Sequence[bytes] | AsyncIterable[bytes]


@dataclass(slots=True)
class MockResponse:
    """What a ``MockTransport`` handler returns. A list body arrives as that many chunks; an async iterator
    body arrives as it yields (it may sleep, or raise ``ProviderUnreachable`` to simulate a reset)."""

    status: int = 200
    headers: Mapping[str, str] | Iterable[tuple[str, str]] = field(default_factory=dict)
    body: MockBody = b""

    @classmethod
    def json(cls, payload: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> MockResponse:
        return cls(
            status, {"content-type": "application/json", **(headers or {})}, msgspec.json.encode(payload)
        )

    @classmethod
    def sse(cls, payloads: Iterable[Any], *, done: bool = True) -> MockResponse:
        """A Chat Completions stream: one chunk per payload (JSON-encoded unless already bytes)."""
        chunks = [p if isinstance(p, bytes) else encode_data(msgspec.json.encode(p)) for p in payloads]
        if done:
            chunks.append(DONE)
        return cls(200, {"content-type": "text/event-stream"}, chunks)


MockHandler = Callable[[HttpRequest], MockResponse | Awaitable[MockResponse]]


class MockTransport:
    """Answers every request by calling ``handler(request)`` (a plain or async function).

    Like the real transport it bounds the handler and each body chunk by ``request.timeout_s`` and maps OS
    errors a handler raises (``ConnectionRefusedError``, ...) through ``map_transport_errors``.
    """

    def __init__(self, handler: MockHandler) -> None:
        self.handler = handler

    async def send(self, request: HttpRequest) -> HttpResponse:
        with map_transport_errors(request.timeout_s):
            result = self.handler(request)
            if inspect.isawaitable(result):
                async with asyncio.timeout(request.timeout_s):
                    result = await result
        return _MockHttpResponse(result, request.timeout_s)

    async def aclose(self) -> None:
        return None


class _MockHttpResponse:
    def __init__(self, response: MockResponse, timeout_s: float) -> None:
        self.status = response.status
        pairs = response.headers.items() if isinstance(response.headers, Mapping) else response.headers
        self._headers = {name.lower(): value for name, value in pairs}
        self._body = response.body
        self._timeout_s = timeout_s
        self.closed = False

    def header(self, name: str) -> str | None:
        return self._headers.get(name.lower())

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.aiter_bytes()])

    def aiter_bytes(self) -> AsyncIterator[bytes]:
        return _MockChunks(self)

    async def aclose(self) -> None:
        if self.closed:
            return
        self.closed = True
        aclose = getattr(self._body, "aclose", None)
        if aclose is not None:  # lets a test's body generator observe the disconnect in its ``finally``
            await aclose()


class _MockChunks:
    def __init__(self, response: _MockHttpResponse) -> None:
        self._response = response
        body = response._body
        self._pending: list[bytes] = [body] if isinstance(body, bytes) else []
        if not isinstance(body, bytes | AsyncIterable):
            self._pending = list(body)
        self._source = aiter(body) if isinstance(body, AsyncIterable) else None

    def __aiter__(self) -> _MockChunks:
        return self

    async def __anext__(self) -> bytes:
        if self._response.closed:
            raise ProviderUnreachable("the response was closed")
        while self._pending:
            chunk = self._pending.pop(0)
            if chunk:
                return chunk
        if self._source is None:
            raise StopAsyncIteration
        timeout_s = self._response._timeout_s
        with map_transport_errors(timeout_s):
            async with asyncio.timeout(timeout_s):
                return await anext(self._source)
