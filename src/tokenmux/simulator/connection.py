"""What the simulator does to a client's connection: drop it mid-answer (a provider dying), and sleep
only as long as the client still waits."""

from __future__ import annotations

import asyncio

from tokenmux.asgi import Receive, Send, wait_for_disconnect


class ConnectionDropped(Exception):
    """Raised when the server gives no way to close the connection; the server then closes it."""


async def drop_connection(send: Send, receive: Receive) -> None:
    """Close the client's connection now, whatever was or was not sent on it.

    ASGI has no message for this. uvicorn's ``send`` is a method of the request cycle, which holds the
    connection's transport; closing that is exactly a provider that dies mid-answer. Waiting for the
    disconnect afterwards lets the server see a closed connection rather than an unfinished response
    (which it would log, or answer with a 500)."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None or not hasattr(transport, "close"):
        raise ConnectionDropped("simulated connection drop")
    transport.close()
    await wait_for_disconnect(receive)


class ClientWatch:
    """Sleeps that end as soon as the client goes away, so that an answer nobody waits for any more
    stops at once instead of running its course. The watching task is made on the first sleep only:
    an answer that never waits costs nothing."""

    __slots__ = ("_gone", "_receive")

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._gone: asyncio.Future[None] | None = None

    async def sleep(self, seconds: float) -> bool:
        """Wait ``seconds``; True if the client disconnected before or meanwhile."""
        if self._gone is None:
            self._gone = asyncio.ensure_future(wait_for_disconnect(self._receive))
        if not self._gone.done():
            await asyncio.wait((self._gone,), timeout=seconds)
        return self._gone.done()

    def close(self) -> None:
        if self._gone is not None and not self._gone.done():
            self._gone.cancel()
