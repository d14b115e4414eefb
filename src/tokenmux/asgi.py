"""The one ASGI toolkit of the package: message types, headers and query, bounded bodies, responses, and
watching for a client that went away. The gateway's routes, the web pages and the simulator all use it.

Plain functions over ASGI messages rather than a framework: the request path stays a dict lookup, one
body read and one send of a prepared body.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

from tokenmux.errors import FormTooLarge, InvalidRequest, PayloadTooLarge
from tokenmux.loop_lookup import current_task
from tokenmux.slow_waits import slow_waits

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]

JSON = b"application/json"
HTML = b"text/html; charset=utf-8"
TEXT = b"text/plain; charset=utf-8"
# HTML pages load nothing from any other host, run no inline script and are never framed. The policy makes a
# stray outside link in a template (or an injected one) fail loudly in the browser instead of leaking.
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        b"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
)


# -- reading ----------------------------------------------------------------------------------------------


def header(scope: Scope, name: bytes) -> bytes | None:
    """A request header by its lower-case name (ASGI servers lower-case them)."""
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


def query_value(scope: Scope, name: str) -> str | None:
    """The first value of a query parameter, or None."""
    raw: bytes = scope.get("query_string", b"")
    if not raw:
        return None
    values = parse_qs(raw.decode("latin-1")).get(name)
    return values[0] if values else None


async def read_body(scope: Scope, receive: Receive, limit: int | None = None) -> bytes:
    """The whole request body, refused with 413 as soon as it is known to exceed ``limit`` (None: no
    limit, for the simulator, whose clients are tests)."""
    if limit is not None:
        declared = header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(
                f"the request body is {int(declared)} bytes; this gateway accepts at most {limit}"
            )
    message = await receive()
    if message["type"] == "http.disconnect":
        raise client_gone()
    body: bytes = message.get("body", b"")
    if not message.get("more_body"):
        return body
    parts = [body]
    size = len(body)
    while message.get("more_body"):
        message = await receive()
        if message["type"] == "http.disconnect":
            raise client_gone()
        chunk = message.get("body", b"")
        size += len(chunk)
        if limit is not None and size > limit:
            raise PayloadTooLarge(f"the request body exceeds this gateway's limit of {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


def client_gone() -> InvalidRequest:
    # Nobody will read the answer (the client left, or was too slow: server/connections.py); it is only
    # the end of the request's handling.
    return InvalidRequest("the client closed the connection before sending the whole body")


async def read_form(receive: Receive, limit: int) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body, first value per name; refused beyond ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break  # the client went away; what arrived is all there is
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise FormTooLarge(f"a form body is at most {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    text = b"".join(chunks).decode("utf-8", errors="replace")
    return {name: values[0] for name, values in parse_qs(text).items()}


# -- answering --------------------------------------------------------------------------------------------


async def send_bytes(
    send: Send,
    status: int,
    body: bytes,
    headers: Iterable[tuple[bytes, bytes]] | None = None,
    content_type: bytes | None = JSON,
) -> None:
    """A whole response; ``content_type`` None when ``headers`` carry it (or a 304 has none)."""
    hdrs = [] if content_type is None else [(b"content-type", content_type)]
    if status != 304:  # a 304 describes the cached body, not its own empty one
        hdrs.append((b"content-length", b"%d" % len(body)))
    if headers:
        hdrs.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": body})


async def send_html(
    send: Send, status: int, html: str, extra: Iterable[tuple[bytes, bytes]] | None = None
) -> None:
    await send_bytes(send, status, html.encode(), [*SECURITY_HEADERS, *(extra or ())], content_type=HTML)


async def send_text(send: Send, status: int, text: str) -> None:
    await send_bytes(send, status, text.encode(), content_type=TEXT)


async def redirect(send: Send, location: str) -> None:
    await send_bytes(send, 302, b"", [(b"location", location.encode())], content_type=None)


# -- the client going away --------------------------------------------------------------------------------


async def wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


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
        task = current_task()
        self._task = task
        self._receive = receive
        self._finished = False
        self.disconnected = False
        self._watcher: asyncio.Future[Message] | None = None
        self._table = slow_waits(task.get_loop())
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
