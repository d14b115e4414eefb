"""A loopback HTTP/1.1 server whose connection handler each test writes, byte by byte.

The transport tests need servers that misbehave on cue (never answer, stall mid-body, reset, send garbage)
and that can observe the client going away; a raw ``asyncio`` server gives exact control over all of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType


@dataclass
class ReceivedRequest:
    method: str
    target: str  # path and query, as sent on the request line
    headers: list[tuple[str, str]]  # names lower-cased, in the order sent
    body: bytes

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key == name), None)


ConnectionHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class LoopbackServer:
    def __init__(self, handler: ConnectionHandler, ssl_context: ssl.SSLContext | None = None) -> None:
        self._handler = handler
        self._ssl_context = ssl_context
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    async def __aenter__(self) -> LoopbackServer:
        self._server = await asyncio.start_server(self._on_connection, "127.0.0.1", 0, ssl=self._ssl_context)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client went away, or the server is shutting down: both are ends a test may want
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            self._tasks.discard(task)


async def read_request(reader: asyncio.StreamReader) -> ReceivedRequest:
    head = await reader.readuntil(b"\r\n\r\n")
    request_line, *header_lines = head.decode("latin-1").split("\r\n")[:-2]
    method, target, _version = request_line.split(" ")
    headers = [(name.lower(), value.strip()) for name, value in (h.split(":", 1) for h in header_lines)]
    length = int(next((v for k, v in headers if k == "content-length"), "0"))
    body = await reader.readexactly(length) if length else b""
    return ReceivedRequest(method, target, headers, body)


async def each_request(reader: asyncio.StreamReader) -> AsyncIterator[ReceivedRequest]:
    """The requests of one keep-alive connection, read one after another until the client closes it."""
    while True:
        try:
            request = await read_request(reader)
        except asyncio.IncompleteReadError:
            return
        yield request


def response_head(status: int = 200, headers: list[tuple[str, str]] | None = None, *, chunked: bool) -> bytes:
    lines = [f"HTTP/1.1 {status} Status"]
    lines += [f"{name}: {value}" for name, value in headers or []]
    lines.append("Transfer-Encoding: chunked" if chunked else "")
    return ("\r\n".join(line for line in lines if line) + "\r\n\r\n").encode("latin-1")


def full_response(status: int, body: bytes, headers: list[tuple[str, str]] | None = None) -> bytes:
    return response_head(status, [*(headers or []), ("Content-Length", str(len(body)))], chunked=False) + body


def chunk(data: bytes) -> bytes:
    """One piece of a chunked body; ``chunk(b"")`` is the terminator."""
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"
