"""CORS for browser clients: off unless configured, and never ``*`` together with credentials.

    gateway:
      cors: {allow_origins: ["https://app.example.com"], allow_credentials: false, max_age_s: 600}

With no ``allow_origins`` no Access-Control header is ever sent, so browsers keep other sites' pages from
reading the API. An allowed origin is echoed back exactly (with ``Vary: Origin``); ``"*"`` answers ``*``
and is refused at start when credentials are allowed, as browsers would refuse it anyway. A preflight
from an allowed origin gets 204 with the methods and headers the API takes; from another origin, 403.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tokenmux.config import ConfigError
from tokenmux.server.asgi import Message, Receive, Scope, Send

_METHODS = b"GET, POST, PATCH, DELETE, OPTIONS"
_HEADERS = ("authorization", "content-type", "x-api-key", "anthropic-version", "anthropic-beta")


@dataclass(frozen=True, slots=True)
class CorsPolicy:
    origins: frozenset[str]
    any_origin: bool
    credentials: bool
    headers: bytes
    max_age_s: int

    @classmethod
    def from_settings(cls, raw: Mapping[str, Any] | None) -> CorsPolicy | None:
        if not raw or not raw.get("allow_origins"):
            return None
        origins = raw["allow_origins"]
        if isinstance(origins, str):
            origins = [origins]
        if not isinstance(origins, list) or not all(isinstance(o, str) for o in origins):
            raise ConfigError(
                "gateway.cors.allow_origins must be a list of origins such as https://app.example"
            )
        credentials = bool(raw.get("allow_credentials", False))
        any_origin = "*" in origins
        if any_origin and credentials:
            raise ConfigError(
                "gateway.cors: allow_origins '*' cannot go with allow_credentials: true; list the origins"
            )
        extra = [str(h).lower() for h in raw.get("allow_headers") or []]
        return cls(
            origins=frozenset(o.rstrip("/") for o in origins if o != "*"),
            any_origin=any_origin,
            credentials=credentials,
            headers=", ".join(dict.fromkeys([*_HEADERS, *extra])).encode(),
            max_age_s=int(raw.get("max_age_s", 600)),
        )

    def allowed(self, origin: bytes) -> bool:
        return self.any_origin or origin.decode("latin-1") in self.origins

    def answer_headers(self, origin: bytes) -> list[tuple[bytes, bytes]]:
        if self.any_origin:
            return [(b"access-control-allow-origin", b"*")]
        out = [(b"access-control-allow-origin", origin), (b"vary", b"Origin")]
        if self.credentials:
            out.append((b"access-control-allow-credentials", b"true"))
        return out


class CorsMiddleware:
    def __init__(self, app: Any, policy: CorsPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        origin = None
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == b"origin":
                    origin = value
                    break
        if origin is None:
            await self.app(scope, receive, send)
            return
        policy = self.policy
        allowed = policy.allowed(origin)
        preflight = scope["method"] == "OPTIONS" and any(
            n == b"access-control-request-method" for n, _ in scope["headers"]
        )
        if preflight:
            headers = [(b"content-length", b"0")]
            if allowed:
                headers += [
                    *policy.answer_headers(origin),
                    (b"access-control-allow-methods", _METHODS),
                    (b"access-control-allow-headers", policy.headers),
                    (b"access-control-max-age", str(policy.max_age_s).encode()),
                ]
            await send({"type": "http.response.start", "status": 204 if allowed else 403, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        if not allowed:
            await self.app(scope, receive, send)  # answered without CORS headers: the browser hides it
            return
        extra = policy.answer_headers(origin)

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_cors)
