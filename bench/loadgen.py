"""The benchmark's load generator: raw HTTP/1.1 over persistent asyncio connections.

A general-purpose client (aiohttp, httpx) spends 100-300 µs of Python per request, as much as the gateway
itself, and at concurrency 64 on a small machine it would take the CPU the gateway needs. Here a request is
a byte string built once; ``httptools`` (C) parses the answer, and per request the Python work is a write,
a few parser callbacks and one clock read per milestone. The same client measures the direct path and the
gateway path, so whatever it costs cancels out in the difference.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import httptools
import msgspec


class RequestFailed(Exception):
    """An answer that is not a complete 200 (or a stream that did not end properly): the figures would be
    wrong."""


def raw_request(
    method: str,
    host: str,
    port: int,
    path: str,
    headers: dict[str, str] | None = None,
    payload: bytes = b"",
    content_type: str | None = None,
) -> bytes:
    """One request as the bytes sent on the wire, reused for every request of a run."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}"]
    if content_type is not None:
        lines.append(f"Content-Type: {content_type}")
    if payload or method != "GET":
        lines.append(f"Content-Length: {len(payload)}")
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return "\r\n".join([*lines, "", ""]).encode() + payload


def build_request(host: str, port: int, path: str, body: object, headers: dict[str, str]) -> bytes:
    """A JSON POST (a chat completion, a Messages, Responses or generateContent request)."""
    return raw_request("POST", host, port, path, headers, msgspec.json.encode(body), "application/json")


@dataclass(frozen=True, slots=True)
class StreamFormat:
    """How a protocol's event stream shows its first piece of text and its end."""

    name: str
    has_content: Callable[[bytes], bool]  # one SSE event (the bytes between two blank lines)
    end: bytes  # found in a stream that ended properly, in its last event


def _openai_content(event: bytes) -> bool:
    """A chunk carrying text (the role-only opening chunk, usage and [DONE] do not)."""
    if not event.startswith(b"data: {"):
        return False
    chunk = msgspec.json.decode(event[6:])
    return any((choice.get("delta") or {}).get("content") for choice in chunk.get("choices") or ())


def _anthropic_content(event: bytes) -> bool:
    # message_start, content_block_start and ping come first; the first delta is the first text.
    return event.startswith(b"event: content_block_delta")


def _responses_content(event: bytes) -> bool:
    # response.created, response.in_progress, the item and part openings come first.
    return event.startswith(b"event: response.output_text.delta")


def _gemini_content(event: bytes) -> bool:
    """A chunk whose candidate carries text that is not a thought."""
    if not event.startswith(b"data: {"):
        return False
    chunk = msgspec.json.decode(event[6:])
    for candidate in chunk.get("candidates") or ():
        for part in (candidate.get("content") or {}).get("parts") or ():
            if part.get("text") and not part.get("thought"):
                return True
    return False


OPENAI_STREAM = StreamFormat("OpenAI", _openai_content, b"data: [DONE]")
ANTHROPIC_STREAM = StreamFormat("Anthropic", _anthropic_content, b"event: message_stop")
RESPONSES_STREAM = StreamFormat("Responses", _responses_content, b"event: response.completed")
# Gemini marks no end of stream: the last chunk is the one with the finish reason.
GEMINI_STREAM = StreamFormat("Gemini", _gemini_content, b'"finishReason"')


@dataclass(slots=True)
class Timing:
    """One request's milestones in seconds from when its bytes were written."""

    total_s: float
    first_content_s: float | None  # streamed requests only: the first event carrying text


class Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._done: asyncio.Future[Timing] | None = None
        self._streamed = False
        self._format = OPENAI_STREAM
        self._started = 0.0
        self._first: float | None = None
        self._pending = b""  # SSE bytes not yet split into events (only until the first content)
        self._tail = b""  # the body's last bytes, where an end marker may have begun
        self._ended = False  # the stream's end marker was seen

    # asyncio.Protocol -------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as e:
            self._fail(RequestFailed(f"unparseable answer: {e}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(RequestFailed(f"connection closed by the server ({exc or 'EOF'})"))

    # httptools callbacks ----------------------------------------------------------------------

    def on_body(self, body: bytes) -> None:
        if self._streamed:
            window = self._tail + body
            if not self._ended and self._format.end in window:
                self._ended = True
            self._tail = window[-64:]
            if self._first is None:
                self._scan_for_content(body)

    def on_message_complete(self) -> None:
        now = time.perf_counter()
        status = self._parser.get_status_code()
        if status != 200:
            self._fail(RequestFailed(f"HTTP {status}"))
        elif self._streamed and not self._ended:
            self._fail(RequestFailed(f"a stream ended without {self._format.end.decode()}"))
        elif self._streamed and self._first is None:
            self._fail(RequestFailed("a stream carried no content"))
        elif self._done is not None and not self._done.done():
            first = None if self._first is None else self._first - self._started
            self._done.set_result(Timing(now - self._started, first))

    # ------------------------------------------------------------------------------------------

    def _scan_for_content(self, body: bytes) -> None:
        # Gemini ends its events with CRLF pairs, the others with LF pairs.
        self._pending += body.replace(b"\r\n", b"\n")
        *events, self._pending = self._pending.split(b"\n\n")
        has_content = self._format.has_content
        for event in events:
            if has_content(event):
                self._first = time.perf_counter()
                self._pending = b""
                return

    def _fail(self, exc: Exception) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_exception(exc)

    async def send(
        self, raw: bytes, *, streamed: bool, stream_format: StreamFormat = OPENAI_STREAM
    ) -> Timing:
        assert self._transport is not None
        if self._transport.is_closing():
            raise RequestFailed("the connection is closed")
        self._parser = httptools.HttpResponseParser(self)
        self._done = asyncio.get_running_loop().create_future()
        self._streamed = streamed
        self._format = stream_format
        self._first = None
        self._pending = self._tail = b""
        self._ended = False
        self._started = time.perf_counter()
        self._transport.write(raw)
        return await self._done

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


async def connect(host: str, port: int) -> Connection:
    _, protocol = await asyncio.get_running_loop().create_connection(Connection, host, port)
    return protocol


@dataclass(slots=True)
class Target:
    """One way to ask for a completion: the address and the request bytes, streamed and not."""

    name: str
    host: str
    port: int
    plain: bytes
    streamed: bytes
    stream_format: StreamFormat = OPENAI_STREAM  # what the streamed answers speak
    sent: int = 0  # requests answered so far, over every run

    def request(self, streamed: bool) -> bytes:
        return self.streamed if streamed else self.plain


@dataclass(slots=True)
class Batch:
    """What a run of requests measured."""

    timings: list[Timing] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.timings) / self.wall_s if self.wall_s else 0.0


async def sequential(targets: list[Target], count: int, *, streamed: bool) -> list[Batch]:
    """``count`` requests per target at concurrency 1, alternating between targets request by request so
    that slow drift of the machine (other tenants, frequency scaling) falls on every path alike."""
    connections = [await connect(t.host, t.port) for t in targets]
    batches = [Batch() for _ in targets]
    try:
        for _ in range(count):
            for target, conn, batch in zip(targets, connections, batches, strict=True):
                raw = target.request(streamed)
                batch.timings.append(
                    await conn.send(raw, streamed=streamed, stream_format=target.stream_format)
                )
                target.sent += 1
    finally:
        for conn in connections:
            conn.close()
    return batches


async def concurrent(target: Target, count: int, concurrency: int, *, streamed: bool) -> Batch:
    """``count`` requests over ``concurrency`` connections, each sending its next request as soon as its
    previous answer is complete (a closed loop, as SDK clients behave)."""
    connections = await asyncio.gather(*(connect(target.host, target.port) for _ in range(concurrency)))
    raw = target.request(streamed)
    remaining = count
    batch = Batch()

    async def worker(conn: Connection) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            batch.timings.append(await conn.send(raw, streamed=streamed, stream_format=target.stream_format))
            target.sent += 1

    started = time.perf_counter()
    try:
        await asyncio.gather(*(worker(c) for c in connections))
    finally:
        batch.wall_s = time.perf_counter() - started
        for conn in connections:
            conn.close()
    return batch
