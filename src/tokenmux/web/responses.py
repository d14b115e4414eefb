"""The little ASGI the pages need: send a response, read a small form body, read a query parameter.

Kept apart from ``server/asgi.py`` on purpose: the web package depends on no server module, so the server
can wire it in (and tests can run it) without the rest of the gateway.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

from tokenmux.errors import FormTooLarge

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Handler = Callable[[Scope, Receive, Send], Awaitable[None]]

HTML = b"text/html; charset=utf-8"
# Pages load nothing from any other host, run no inline script and are never framed. The policy makes a
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


async def send_response(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    all_headers = list(headers or [])
    if status != 304:
        all_headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body})


async def send_html(
    send: Send, status: int, html: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [(b"content-type", HTML), *SECURITY_HEADERS, *(extra or [])]
    await send_response(send, status, html.encode(), headers)


async def send_text(send: Send, status: int, text: str) -> None:
    await send_response(send, status, text.encode(), [(b"content-type", b"text/plain; charset=utf-8")])


async def redirect(send: Send, location: str) -> None:
    await send_response(send, 302, b"", [(b"location", location.encode())])


def query_value(scope: Scope, name: str) -> str | None:
    raw: bytes = scope.get("query_string", b"")
    if not raw:
        return None
    values = parse_qs(raw.decode("latin-1")).get(name)
    return values[0] if values else None


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
