"""``AiohttpTransport``: the transport seam (``transport.py``) over one pooled ``aiohttp.ClientSession`` per
process, keep-alive connections reused across requests. The gateway's own client (``http1.py``) is the
default; this one serves ``gateway.http_client: aiohttp`` (proxies, HTTP/2 servers that refuse HTTP/1.1),
and is imported only then.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator

import aiohttp
from yarl import URL

from tokenmux import __version__
from tokenmux.errors import ProviderMalformed, ProviderTimeout, ProviderUnreachable, UpstreamError
from tokenmux.providers.transport import HttpRequest, HttpResponse, map_transport_errors


def aiohttp_errors(exc: Exception, where: str) -> UpstreamError | None:
    """aiohttp's errors as ours (``map_transport_errors`` has already taken timeouts, and takes the OS
    errors this leaves)."""
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
    if isinstance(exc, aiohttp.ClientError) and not isinstance(exc, OSError):
        return ProviderUnreachable(f"connection to {where} failed: {exc!r}")
    return None


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
        with map_transport_errors(timeout_s, library=aiohttp_errors):
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
        with map_transport_errors(self._timeout_s, library=aiohttp_errors):
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
        with map_transport_errors(self._timeout_s, library=aiohttp_errors):
            chunk = await self._content.readany()
        if not chunk:
            raise StopAsyncIteration
        return chunk
