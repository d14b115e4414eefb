"""One socket write per whole response instead of two.

uvicorn writes a response's head (status line and headers) as soon as the app sends
``http.response.start``, and its body with the next message: two ``write()`` calls, each a trip through
the kernel's TCP stack (on loopback, the receiver's too). ``HeadJoiningWrites`` stands between one
request's cycle and the connection: it holds the head and writes it with the first body part that
follows, so a whole response leaves in one write. A head that no body follows within the same pass of
the event loop (a stream waiting for its first event) is written at the end of that pass, so nothing
waits longer than it did.
"""

from __future__ import annotations

import asyncio
from typing import Any


class HeadJoiningWrites:
    """The transport as one request's response cycle sees it: ``write`` holds the head (the first write
    after the response started) until the next write or the end of the loop pass; everything else goes
    straight to the connection."""

    __slots__ = ("_cycle", "_head", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, cycle: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        # uvicorn's RequestResponseCycle, whose ``response_started`` marks the head's write; let go of once
        # the head is here. The cycle holds this object as its transport, so keeping it would make every
        # request a reference cycle that only the garbage collector frees: CPU for the collector, and under
        # load (64 requests at once) megabytes of garbage waiting for it, in memory the process then keeps.
        self._cycle: Any = cycle
        self._loop = loop
        self._head: bytes | None = None

    def write(self, data: bytes) -> None:
        head = self._head
        if head is not None:
            self._head = None
            self._transport.write(head + data)
        elif self._cycle is not None and self._cycle.response_started:
            # The head. (A "100 Continue" is written before the response starts, so it goes at once.)
            self._cycle = None
            self._head = data
            self._loop.call_soon(self.flush)
        else:
            self._transport.write(data)

    def flush(self) -> None:
        head = self._head
        if head is not None:
            self._head = None
            self._transport.write(head)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:  # anything else a cycle may ask of its transport
        return getattr(self._transport, name)
