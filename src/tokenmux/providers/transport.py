"""The HTTP seam under every provider adapter: value objects, one ``send`` method, and its implementations.

``AiohttpTransport``: one pooled ``aiohttp.ClientSession`` per process, keep-alive connections reused
across requests. ``Http1Transport`` (``http1.py``): the same contract at about a third of the CPU per
request. ``MockTransport``: answers from a handler function, for tests.

Every aiohttp and OS error is translated in exactly one place, ``map_transport_errors``, into the
``UpstreamError`` classes of ``errors.py``: nothing above this module sees an aiohttp exception.
"""

from __future__ import annotations

import asyncio
import email.utils
import inspect
import ssl
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol

import aiohttp
import msgspec
from yarl import URL

from tokenmux import __version__
from tokenmux.errors import ProviderMalformed, ProviderTimeout, ProviderUnreachable, UpstreamError
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


def map_transport_errors(timeout_s: float, where: str = "the provider") -> _TransportErrorMap:
    """``with map_transport_errors(timeout_s, "host:port"): ...`` translates aiohttp and OS errors raised
    inside the block into ``UpstreamError`` subclasses.

    Timeouts become ``ProviderTimeout``; refused, reset and DNS failures ``ProviderUnreachable``; a reply
    that is not HTTP ``ProviderMalformed``. Cancellation and our own errors pass through untouched.
    Messages name the failure, never a header (keys travel in headers).
    """
    return _TransportErrorMap(timeout_s, where)


class _TransportErrorMap:
    """A class rather than ``@contextmanager``: entered on every body chunk, it must cost next to nothing."""

    __slots__ = ("timeout_s", "where")

    def __init__(self, timeout_s: float, where: str) -> None:
        self.timeout_s = timeout_s
        self.where = where

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None or isinstance(exc, UpstreamError) or not isinstance(exc, Exception):
            return
        translated = _translate(exc, self.timeout_s, self.where)
        if translated is not None:
            raise translated from exc


def _translate(exc: Exception, timeout_s: float, where: str) -> UpstreamError | None:
    # Order matters: aiohttp's timeout errors are also connection errors, and TimeoutError is an OSError.
    if isinstance(exc, TimeoutError):
        return ProviderTimeout(f"the provider did not answer within {timeout_s:g} s")
    if isinstance(exc, aiohttp.InvalidURL):
        return ProviderUnreachable(f"invalid provider URL {exc.url}; check the provider's base_url")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return ProviderUnreachable(
            f"could not connect to {exc.host}:{exc.port}: {exc.os_error.strerror or exc.os_error}"
        )
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return ProviderUnreachable("the provider closed the connection before its answer was complete")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return ProviderUnreachable(f"the provider's answer was cut off: {exc}")
    if isinstance(exc, aiohttp.ClientResponseError):
        return ProviderMalformed(f"the provider's answer is not valid HTTP: {exc.message}")
    if isinstance(exc, OSError):  # refused, reset, DNS (gaierror), TLS (SSLError)
        return ProviderUnreachable(f"connection to {where} failed: {exc.strerror or exc}")
    if isinstance(exc, aiohttp.ClientError):
        return ProviderUnreachable(f"connection to {where} failed: {exc!r}")
    return None


# The real transport


class AiohttpTransport:
    """One pooled aiohttp session shared by every adapter of the process.

    The session is created on first use, inside the running event loop (aiohttp binds it to that loop).
    """

    def __init__(
        self,
        *,
        limit_per_host: int = 256,
        keepalive_timeout_s: float = 30.0,
        dns_cache_ttl_s: int = 300,
        user_agent: str = f"tokenmux/{__version__}",
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._limit_per_host = limit_per_host
        self._ssl_context = ssl_context
        self._keepalive_timeout_s = keepalive_timeout_s
        self._dns_cache_ttl_s = dns_cache_ttl_s
        self._user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None
        # Adapters send to a handful of fixed URLs; parsing each once saves a yarl parse per request.
        self._urls: dict[str, URL] = {}

    def _open_session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=0,  # no global cap: one slow upstream must not starve the others
            limit_per_host=self._limit_per_host,
            keepalive_timeout=self._keepalive_timeout_s,
            ttl_dns_cache=self._dns_cache_ttl_s,
            ssl=self._ssl_context or True,  # True: verify against the system's trusted certificates
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            headers={"User-Agent": self._user_agent},
            auto_decompress=True,
            trust_env=False,  # ignore proxy variables and .netrc: where requests go is configuration
            timeout=aiohttp.ClientTimeout(total=None),
        )
        return self._session

    def _url(self, url: str) -> URL:
        parsed = self._urls.get(url)
        if parsed is None:
            # Adapters build URLs already percent-encoded; re-quoting would only cost time (and could
            # change what an operator configured).
            parsed = URL(url, encoded=True)
            if len(self._urls) < 1024:  # bounded: URLs carrying per-request parts must not grow it
                self._urls[url] = parsed
        return parsed

    async def send(self, request: HttpRequest) -> HttpResponse:
        session = self._session
        if session is None or session.closed:
            session = self._open_session()
        timeout_s = request.timeout_s
        if timeout_s <= 0:  # aiohttp reads a zero timeout as "no timeout"
            raise ProviderTimeout("no time was left for this attempt before the request's deadline")
        with map_transport_errors(timeout_s):
            # aiohttp bounds connecting and each socket read separately; the outer timeout makes
            # "connected and got the headers" one budget, as the caller's deadline means it.
            async with asyncio.timeout(timeout_s):
                response = await session.request(
                    request.method,
                    self._url(request.url),
                    headers=request.headers,
                    data=request.body,
                    allow_redirects=False,  # a redirected POST would silently turn into a GET
                    timeout=aiohttp.ClientTimeout(total=None, connect=timeout_s, sock_read=timeout_s),
                )
        return _AiohttpResponse(response, timeout_s)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class _AiohttpResponse:
    __slots__ = ("_response", "_timeout_s", "status")

    def __init__(self, response: aiohttp.ClientResponse, timeout_s: float) -> None:
        self._response = response
        self._timeout_s = timeout_s
        self.status = response.status

    def header(self, name: str) -> str | None:
        return self._response.headers.get(name)

    async def read(self) -> bytes:
        with map_transport_errors(self._timeout_s):
            return await self._response.read()

    def aiter_bytes(self) -> AsyncIterator[bytes]:
        return _AiohttpChunks(self._response.content, self._timeout_s)

    async def aclose(self) -> None:
        # release() reuses the connection only when the body was read to its end; otherwise aiohttp closes
        # the socket, and the upstream server sees the client go away.
        self._response.release()


class _AiohttpChunks:
    """A plain async iterator rather than an async generator: nothing to finalise when abandoned."""

    __slots__ = ("_content", "_timeout_s")

    def __init__(self, content: aiohttp.StreamReader, timeout_s: float) -> None:
        self._content = content
        self._timeout_s = timeout_s

    def __aiter__(self) -> _AiohttpChunks:
        return self

    async def __anext__(self) -> bytes:
        with map_transport_errors(self._timeout_s):
            chunk = await self._content.readany()
        if not chunk:
            raise StopAsyncIteration
        return chunk


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
