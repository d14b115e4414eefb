"""A small Redis client: one pipelined connection, replies parsed by hiredis.

Requests of a key with limits cost one Redis round trip each (``limits.redis_ledger``), so the client's
own cost is on the hot path. A general client checks a connection out of a pool, builds a command object
and parses through layers for every call, about 100 µs of CPU here; this one writes the encoded command
to a single connection and pairs replies with waiting futures in order (Redis answers in order), a
fraction of that. Many requests in flight share the connection: their commands go out as they come and
their replies come back together.

Failure handling is the caller's (``link.RedisLink``): any error, or a timeout the caller imposes, should
be followed by ``reset()``, which drops the connection and fails whatever still waits on it; the next call
connects again (``AUTH`` and ``SELECT`` from the URL).
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections import deque
from collections.abc import Sequence
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import hiredis

from tokenmux.errors import ReplyError

Arg = bytes | str | int | float


def encode_command(args: Sequence[Arg]) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, bytes):
            data = arg
        elif isinstance(arg, str):
            data = arg.encode()
        else:
            data = str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class Script:
    """A Lua script run by its digest (EVALSHA), loaded once when the server does not know it."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()  # Redis names scripts by SHA-1


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.waiting: deque[asyncio.Future[Any]] = deque()
        self.reader = hiredis.Reader(replyError=ReplyError)
        self.lost: Exception | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while True:
            reply = self.reader.gets()
            if reply is False:
                return
            future = self.waiting.popleft()
            if future.done():
                continue  # its caller gave up waiting (and resets the connection)
            if isinstance(reply, ReplyError):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc or ConnectionResetError("Redis closed the connection")
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(ConnectionResetError(f"the Redis connection was lost: {self.lost}"))

    def send(self, payload: bytes, count: int) -> list[asyncio.Future[Any]]:
        if self.transport is None or self.lost is not None or self.transport.is_closing():
            raise ConnectionResetError("the Redis connection is closed")
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in range(count)]
        self.waiting.extend(futures)
        self.transport.write(payload)
        return futures


class RespClient:
    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ValueError("a Redis URL starts with redis://, rediss:// or unix://")
        self._scheme = parts.scheme
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 6379
        self._path = parts.path if parts.scheme == "unix" else ""
        self._username = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        db = parts.path.strip("/") if parts.scheme != "unix" else ""
        query_db = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p).get("db")
        self._db = int(db or query_db or 0)
        self._connection: _Connection | None = None
        self._connecting: asyncio.Lock | None = None

    async def _connected(self) -> _Connection:
        conn = self._connection
        if conn is not None and conn.lost is None:
            return conn
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            conn = self._connection
            if conn is not None and conn.lost is None:
                return conn
            loop = asyncio.get_running_loop()
            if self._scheme == "unix":
                _, conn = await loop.create_unix_connection(_Connection, self._path)
            else:
                tls = ssl.create_default_context() if self._scheme == "rediss" else None
                _, conn = await loop.create_connection(_Connection, self._host, self._port, ssl=tls)
            setup: list[list[Arg]] = []
            if self._password is not None:
                setup.append(
                    ["AUTH", self._username, self._password] if self._username else ["AUTH", self._password]
                )
            if self._db:
                setup.append(["SELECT", self._db])
            if setup:
                payload = b"".join(encode_command(c) for c in setup)
                for future in conn.send(payload, len(setup)):
                    await future
            self._connection = conn
            return conn

    async def call(self, *args: Arg) -> Any:
        conn = await self._connected()
        (future,) = conn.send(encode_command(args), 1)
        return await future

    async def pipeline(self, commands: Sequence[Sequence[Arg]]) -> list[Any]:
        """Several commands in one write; their replies (an error reply as a ``ReplyError`` value)."""
        if not commands:
            return []
        conn = await self._connected()
        futures = conn.send(b"".join(encode_command(c) for c in commands), len(commands))
        return list(await asyncio.gather(*futures, return_exceptions=True))

    async def run(self, script: Script, *args: Arg) -> Any:
        """Run a script (no KEYS, only ARGV), loading it first if the server has forgotten it."""
        try:
            return await self.call("EVALSHA", script.sha, 0, *args)
        except ReplyError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
        await self.call("SCRIPT", "LOAD", script.source)
        return await self.call("EVALSHA", script.sha, 0, *args)

    async def run_many(self, script: Script, arg_lists: Sequence[Sequence[Arg]]) -> list[Any]:
        """The script once per argument list, pipelined; an error reply comes back as a ``ReplyError``."""
        replies = await self.pipeline([("EVALSHA", script.sha, 0, *a) for a in arg_lists])
        if any(isinstance(r, ReplyError) and str(r).startswith("NOSCRIPT") for r in replies):
            await self.call("SCRIPT", "LOAD", script.source)
            replies = await self.pipeline([("EVALSHA", script.sha, 0, *a) for a in arg_lists])
        return replies

    def reset(self) -> None:
        """Drop the connection (after an error or a timeout); the next call connects again."""
        conn, self._connection = self._connection, None
        if conn is not None and conn.transport is not None:
            conn.transport.abort()
            conn.connection_lost(None)

    async def aclose(self) -> None:
        self.reset()
