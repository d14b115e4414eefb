"""The few ASGI helpers the simulator needs, including one thing ASGI cannot say: "drop the connection"."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON = b"application/json"


class ConnectionDropped(Exception):
    """Raised when the server gives no way to close the connection; the server then closes it."""


def header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of the request header ``name`` (lowercase, as ASGI servers give names)."""
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


async def read_body(receive: Receive) -> bytes:
    message = await receive()
    body: bytes = message.get("body", b"")
    if not message.get("more_body"):
        return body
    parts = [body]
    while message.get("more_body"):
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        parts.append(message.get("body", b""))
    return b"".join(parts)


async def respond(
    send: Send,
    status: int,
    body: bytes,
    *,
    content_type: bytes = JSON,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type), (b"content-length", b"%d" % len(body)), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


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
