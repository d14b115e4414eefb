"""Small ASGI helpers: reading a bounded body, sending JSON, watching for disconnects."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from tokenmux.errors import InvalidRequest, PayloadTooLarge
from tokenmux.slow_waits import slow_waits

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]

JSON_HEADERS: list[tuple[bytes, bytes]] = [(b"content-type", b"application/json")]


def header(scope: Scope, name: bytes) -> bytes | None:
    """A request header by its lower-case name (ASGI servers lower-case them)."""
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole request body, refused with 413 as soon as it is known to exceed ``limit``."""
    declared = header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(
            f"the request body is {int(declared)} bytes; this gateway accepts at most {limit}"
        )
    message = await receive()
    if message["type"] == "http.disconnect":
        raise _gone()
    body = message.get("body", b"")
    if not message.get("more_body"):
        return body
    parts = [body]
    size = len(body)
    while message.get("more_body"):
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _gone()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the request body exceeds this gateway's limit of {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


def _gone() -> InvalidRequest:
    # Nobody will read the answer (the client left, or was too slow: server/connections.py); it is only
    # the end of the request's handling.
    return InvalidRequest("the client closed the connection before sending the whole body")


async def send_bytes(
    send: Send,
    status: int,
    body: bytes,
    headers: list[tuple[bytes, bytes]] | None = None,
    content_type: bytes = b"application/json",
) -> None:
    hdrs = [(b"content-type", content_type), (b"content-length", b"%d" % len(body))]
    if headers:
        hdrs.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": body})


class DisconnectWatch:
    """Cancels the request's task when the client goes away, so its upstream call is cancelled too.

    ``receive()`` after the body answers ``http.disconnect`` both when the client leaves and when the
    response is complete; ``done()`` before the last send tells the two apart.

    Watching means a task parked in ``receive()``, which only a slow request is worth (``slow_waits.py``): the
    task starts once the request has run a quarter of a second, and a client that left before then is
    noticed at that moment, well within the second promised.
    """

    __slots__ = ("_finished", "_receive", "_table", "_task", "_watcher", "disconnected")

    def __init__(self, receive: Receive) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        self._receive = receive
        self._finished = False
        self.disconnected = False
        self._watcher: asyncio.Future[Message] | None = None
        self._table = slow_waits()
        self._table.add(self)

    def on_slow(self) -> None:
        if self._finished:
            return
        self._watcher = watcher = asyncio.ensure_future(self._receive())
        watcher.add_done_callback(self._on_message)

    def _on_message(self, fut: asyncio.Future[Message]) -> None:
        if fut.cancelled() or self._finished:
            return
        if fut.exception() is None and fut.result().get("type") == "http.disconnect":
            self.disconnected = True
            self._task.cancel()

    def done(self) -> None:
        self._finished = True

    def stop(self) -> None:
        self._finished = True
        self._table.discard(self)
        if self._watcher is not None and not self._watcher.done():
            self._watcher.cancel()

    def absorb_cancel(self) -> bool:
        """After a CancelledError: True (and the cancellation undone) when it was this watch's doing."""
        if self.disconnected:
            self._task.uncancel()
            return True
        return False
