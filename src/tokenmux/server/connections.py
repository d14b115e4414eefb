"""Client connections under bounds: how long a client may take, how much head it may send, how many it may
hold open.

uvicorn closes a keep-alive connection that idles after a response (``timeout_keep_alive``), but nothing
else: a connection that never sends a byte, headers trickled a byte at a time, a body that never ends all
stay open for ever, and a client may open connections until the process runs out of file descriptors,
after which every other client's connection is refused. ``GuardedHttpTools`` is uvicorn's httptools
protocol with what it lacks, cheaply (a timer handle per connection, a counter per read):

- ``header_timeout_s``: a request's head (request line and headers) must arrive within this long of its
  first byte, or of the connection's opening for the first request. Then the connection is closed.
- ``body_timeout_s``: its body must arrive within this long of the head.
- ``idle_timeout_s``: a connection idle between requests is closed after this long (uvicorn's keep-alive).
- ``max_head_bytes``: a head larger than this is answered 431 and the connection closed, before the
  parser has buffered more (the header check's 431 in the client's protocol comes first for heads within
  this bound: it is the gateway's ``max_header_bytes`` plus room for the request line).
- A request answered before its body was read (a 401, 429 or 413 decided from the head) keeps its
  connection when at most ``MAX_SKIPPED_BODY`` of the body is still to come: the parser reads it as that
  request's and drops it, within the body deadline, and only then waits for the next request's head
  (counting those bytes as the next head would take the body for a head too large). When more is to come,
  or its length is unknown (chunked), the connection is closed after the answer, as Go's net/http does: a
  client flooding large bodies at a refusing key costs no more than its answers.
- ``max_connections``: at most this many connections are open, fewer when the process may open fewer
  files (``usable_connections``). A new connection over the bound makes room by closing the connection
  that has waited longest without a request in the app (idle, or still sending its head); when every
  connection is busy in the app, the new one gets 503 and is closed. So a client holding idle sockets
  cannot keep others out: each new client takes the place of the stalest idle one.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from tokenmux.server.head_joining import HeadJoiningWrites

_REFUSED = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 42\r\n"
    b"retry-after: 1\r\nconnection: close\r\n\r\nthe gateway has too many connections open\n"
)
_HEAD_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 42\r\nconnection: close\r\n\r\nthe request line and headers are too long\n"
)
# A request answered before its body was read: this much of the rest is read and dropped to keep the
# connection; with more to come it is closed after the answer.
MAX_SKIPPED_BODY = 256 * 1024
# A connection closed with the rest of a body unread is half-closed first and dropped this long after:
# closing a socket that still receives sends a reset, which can destroy the answer in the client's buffers
# before it is read (Go's net/http waits likewise, nginx's lingering_close too).
LINGER_S = 0.5
# File descriptors kept back from client connections: the database, upstream connections, logs, spool files.
_RESERVED_FILES = 128


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    idle_timeout_s: float = 20.0
    max_head_bytes: int = 32 * 1024 + 16 * 1024
    max_connections: int = 10_000


def usable_connections(wanted: int) -> int:
    """``wanted``, or fewer when the process may not open that many files; the soft limit on open files is
    first raised to the hard one, as far as the system allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = wanted + _RESERVED_FILES if hard == resource.RLIM_INFINITY else hard
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, target), hard))
            soft = max(soft, target)
    return max(1, min(wanted, soft - _RESERVED_FILES))


class ConnectionTable:
    """The open connections of one server, and, in the order they became so, those not busy in the app."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self.max_connections = usable_connections(limits.max_connections)
        self.open = 0
        self.waiting: dict[GuardedHttpTools, None] = {}  # insertion order: longest waiting first
        self.evicted = 0
        self.refused = 0

    def admit(self, conn: GuardedHttpTools) -> bool:
        """Count a new connection in; False when it must be refused (every other one is busy)."""
        if self.open >= self.max_connections:
            if not self.waiting:
                self.refused += 1
                return False
            stalest = next(iter(self.waiting))
            self.evicted += 1
            stalest.close_quietly()
        self.open += 1
        self.waiting[conn] = None
        return True

    def left(self, conn: GuardedHttpTools) -> None:
        self.open -= 1
        self.waiting.pop(conn, None)

    def busy(self, conn: GuardedHttpTools) -> None:
        self.waiting.pop(conn, None)

    def idle(self, conn: GuardedHttpTools) -> None:
        self.waiting.pop(conn, None)
        self.waiting[conn] = None


class GuardedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol with deadlines for the head and the body, a bound on the head's size and
    a place in a bounded ``ConnectionTable``."""

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        table: ConnectionTable,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._table = table
        self._limits = table.limits
        self._deadline: asyncio.TimerHandle | None = None
        self._reading_head = True  # waiting for, or reading, a request's head
        self._in_body = False  # reading a request's body
        self._skipping_body = False  # its response went out before the body was read: dropping the rest
        self._lingering = False  # answered and half-closed: what still arrives is dropped unread
        self._body_left = -1  # bytes of the request's body still to come; -1: unknown (chunked)
        self._head_bytes = 0
        self._counted = False

    # The connection.

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if not self._table.admit(self):
            transport.write(_REFUSED)
            transport.close()
            return
        self._counted = True
        self._arm(self._limits.header_timeout_s)  # the first request's head, from the connection's opening

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._counted:
            self._counted = False
            self._table.left(self)
        super().connection_lost(exc)

    def close_quietly(self) -> None:
        """Close a connection that waits for a request (to make room, or past a deadline)."""
        if not self.transport.is_closing():
            self.transport.close()

    # Reading a request. A deadline is armed only for a read that leaves a head or a body unfinished: a
    # request that arrives in one read (nearly all) costs no timer.

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return
        if self._reading_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._reading_head:
            if self._head_bytes > self._limits.max_head_bytes:
                # The parser holds what came so far; nothing more is read.
                self._disarm()
                self.transport.write(_HEAD_TOO_LARGE)
                self.transport.close()
            elif self._head_bytes and self._deadline is None:
                self._arm(self._limits.header_timeout_s)
        elif self._in_body and self._deadline is None:
            self._arm(self._limits.body_timeout_s)

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._in_body = True
        self._head_bytes = 0
        self._disarm()
        self._unset_keepalive_if_required()  # armed after a skipped body, if the next head came in its read
        self._body_left = -1
        for name, value in self.headers:
            if name == b"content-length" and value.isdigit():
                self._body_left = int(value)
        self._table.busy(self)
        previous = self.cycle
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle is not previous:  # not for an upgrade, which starts no cycle
            cycle.transport = HeadJoiningWrites(self.transport, cycle, self.loop)  # type: ignore[assignment]

    def on_body(self, body: bytes) -> None:
        if self._body_left > 0:
            self._body_left -= len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._in_body = False
        self._disarm()
        super().on_message_complete()
        if self._skipping_body:
            self._skipping_body = False
            self._await_next_request()
            # uvicorn armed the idle timeout when the response went out, and the body's reads put it off.
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )

    def on_response_complete(self) -> None:
        writes = self.cycle.transport if self.cycle is not None else None
        if isinstance(writes, HeadJoiningWrites):
            writes.flush()  # a head no body followed (HEAD): out before a half-close or the next response
        super().on_response_complete()  # arms uvicorn's keep-alive timer: the idle timeout
        if self._in_body:
            if 0 <= self._body_left <= MAX_SKIPPED_BODY:
                # Answered before its body was read: the rest still comes, and the parser reads it as
                # this request's (uvicorn drops it). The next head starts after it.
                self._skipping_body = True
            else:
                self._linger()  # the answer is written first
            return
        self._await_next_request()

    def _linger(self) -> None:
        """Close after the answer without a reset: end our side once the answer is written, drop what the
        client still sends, and close a moment later."""
        if self.transport.is_closing():
            return
        self._lingering = True
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_S, self.close_quietly)

    def _await_next_request(self) -> None:
        self._reading_head = True
        self._head_bytes = 0
        if self._counted and not self.transport.is_closing():
            self._table.idle(self)

    # Deadlines.

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        """The head or the body did not arrive in time: close. A request already in the app learns of it as
        a disconnect."""
        self._deadline = None
        self.close_quietly()
