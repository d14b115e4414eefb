"""Refuse requests whose header names or values hold CR, LF or NUL, before any route sees them.

HTTP/1.1 parsers normally refuse such bytes, but not every server or proxy in front of the gateway does; a
value with a line break must never reach a log line or an upstream request, so the gateway checks itself.
The error is in the client's protocol and names the header, never its value.
"""

from __future__ import annotations

from tokenmux.errors import InvalidRequest
from tokenmux.protocols import anthropic_answer, openai_chat
from tokenmux.server.asgi import Receive, Scope, Send, send_bytes

_FORBIDDEN = (b"\r", b"\n", b"\0")


class HeaderGuard:
    def __init__(self, app: object) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if b"\r" in value or b"\n" in value or b"\0" in value or any(c in name for c in _FORBIDDEN):
                    await self._refuse(scope, send, name)
                    return
        await self.app(scope, receive, send)  # type: ignore[operator]

    @staticmethod
    async def _refuse(scope: Scope, send: Send, name: bytes) -> None:
        shown = name.decode("latin-1").translate({13: None, 10: None, 0: None})[:64]
        err = InvalidRequest(
            f"the header {shown!r} holds a line break or NUL; no header value may", param=shown
        )
        anthropic = str(scope.get("path", "")).startswith("/api/anthropic/")
        body = anthropic_answer.encode_error(err) if anthropic else openai_chat.encode_error(err)
        await send_bytes(send, 400, body)
