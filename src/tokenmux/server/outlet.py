"""A streamed answer over ASGI ``send``, and the keep-alive comments it sends while the answer waits.

The attempt loop writes a stream through ``attempts.delivery.Outlet``; this is the server's side of it.
While an attempt waits for its first content the outlet sends ``: tokenmux processing`` comments every
``keepalive_s`` (the first opens the response with a 200), so a client or a proxy does not give up on a
slow first token; the comments stop when content comes.
"""

from __future__ import annotations

import asyncio

from tokenmux.asgi import Send
from tokenmux.loop_lookup import running_loop
from tokenmux.protocols.sse import comment
from tokenmux.slow_waits import SlowWaits, slow_waits

KEEPALIVE = comment("tokenmux processing")

SSE_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class AsgiOutlet:
    """A streamed response over ASGI ``send`` (``attempts.delivery.Outlet``)."""

    __slots__ = ("_extra", "_keepalive", "_keepalive_s", "_send", "ended", "started")

    def __init__(self, send: Send, extra_headers: list[tuple[bytes, bytes]], keepalive_s: float) -> None:
        self._send = send
        self._extra = extra_headers
        self._keepalive_s = keepalive_s
        self._keepalive: KeepAlive | None = None
        self.started = False
        self.ended = False

    async def open(self) -> None:
        if self.started:
            return
        self.started = True
        await self._send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS + self._extra})

    async def write(self, chunk: bytes) -> None:
        await self._send({"type": "http.response.body", "body": chunk, "more_body": True})

    async def end(self, chunk: bytes) -> None:
        self.ended = True
        if not self.started:
            await self.open()  # the head, in the same pass of the loop as the body that ends the answer
        await self._send({"type": "http.response.body", "body": chunk})

    def wait_begins(self, left_s: float) -> None:
        every = self._keepalive_s
        # A wait shorter than one interval needs no comment, unless the response has begun already (a
        # failed attempt's wait sent some): then the comments go on.
        if every > 0 and (left_s > every or self.started):
            self._keepalive = KeepAlive(self, every)

    async def wait_ends(self) -> None:
        keepalive = self._keepalive
        if keepalive is not None:
            self._keepalive = None
            await keepalive.stop()

    async def close(self) -> None:
        """End the response if it started and has not ended yet."""
        if self.started and not self.ended:
            self.ended = True
            await self._send({"type": "http.response.body", "body": b""})


class KeepAlive:
    """Keep-alive comments every ``every_s`` while a stream waits for its first content, from a task that
    only a slow request gets (``slow_waits.py``); the first comment opens the response with a 200."""

    __slots__ = ("_every_s", "_outlet", "_since", "_stopped", "_table", "_task")

    def __init__(self, outlet: AsgiOutlet, every_s: float) -> None:
        self._outlet = outlet
        self._every_s = every_s
        loop = running_loop()  # not asyncio.get_running_loop(): a getpid system call per stream on 3.11
        self._since = loop.time()
        self._task: asyncio.Task[None] | None = None
        self._stopped = False
        self._table: SlowWaits | None = None
        if SlowWaits.arms_in_time(every_s):
            self._table = slow_waits(loop)
            self._table.add(self)
        else:
            self.on_slow()

    def on_slow(self) -> None:
        if not self._stopped:
            self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        loop = running_loop()
        due = self._since + self._every_s
        while True:
            await asyncio.sleep(due - loop.time())
            await self._outlet.open()
            await self._outlet.write(KEEPALIVE)
            due += self._every_s

    async def stop(self) -> None:
        self._stopped = True
        if self._table is not None:
            self._table.discard(self)
        task = self._task
        if task is None:
            return
        # Not kept: a cancelled task holds its exception, whose traceback holds the task's frames, and they
        # hold this object. Kept, that would be a reference cycle holding the whole stream (its outlet, the
        # server's request cycle) until the garbage collector came round to it.
        self._task = None
        if not task.done():
            # An ASGI send is complete or not begun when cancelled: no comment is cut in half.
            task.cancel()
            await asyncio.wait({task})
        if not task.cancelled():
            # A comment that could not be sent says nothing the stream's next write will not say.
            task.exception()
