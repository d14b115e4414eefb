"""Cross-origin access for browser clients: off unless configured, and never ``*`` with credentials.

    gateway:
      cors:
        allow_origins: ["https://app.example.com"]
        allow_credentials: false
        allow_headers: ["x-title"]      # added to the fixed list the API itself reads
        max_age_s: 600

Without ``allow_origins`` the middleware is not installed and no Access-Control header is ever sent, so
browsers keep other sites' pages from reading the API. A listed origin is echoed back exactly; as that
makes every answer depend on the request's ``Origin``, every response then carries ``Vary: Origin`` so a
shared cache never hands one origin's answer to another. ``"*"`` answers ``*`` to everyone and is refused
together with credentials, which browsers would refuse anyway.

A preflight (``OPTIONS`` with ``Access-Control-Request-Method``) from an allowed origin is answered here
with 204; from any other origin with 403 and no CORS headers. The routes never see preflights.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from tokenmux.asgi import AsgiApp, Message, Receive, Scope, Send
from tokenmux.errors import ConfigError

ALLOWED_METHODS = ("GET", "POST", "PATCH", "DELETE", "OPTIONS")
# The request headers the OpenAI-, Anthropic- and Gemini-shaped APIs read; configured extras are added to these.
BASE_ALLOWED_HEADERS = (
    "authorization",
    "content-type",
    "x-api-key",
    "x-goog-api-key",
    "anthropic-version",
    "anthropic-beta",
)
DEFAULT_MAX_AGE_S = 600

_SETTINGS = ("allow_origins", "allow_credentials", "allow_headers", "max_age_s")
# RFC 9110 token characters: a header name that is anything else would corrupt the header it is listed in.
_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz")


@dataclass(frozen=True, slots=True)
class CorsPolicy:
    """Which browser origins may read the API, checked and normalised from ``gateway.cors``."""

    allow_origins: frozenset[str]  # serialised origins, lower-case, e.g. "https://app.example.com"
    allow_any_origin: bool
    allow_credentials: bool
    allow_headers: tuple[str, ...]
    max_age_s: int

    @classmethod
    def from_settings(cls, raw: Mapping[str, Any] | None) -> CorsPolicy | None:
        """The policy for ``gateway.cors``, or None (CORS off) when no origin is configured."""
        if not raw:
            return None
        unknown = sorted(str(name) for name in raw if name not in _SETTINGS)
        if unknown:
            raise ConfigError(f"unknown gateway.cors setting {unknown[0]!r}; known: {', '.join(_SETTINGS)}")
        origins = _origins(raw.get("allow_origins"))
        if not origins:
            return None
        credentials = raw.get("allow_credentials", False)
        if not isinstance(credentials, bool):
            raise ConfigError(f"gateway.cors.allow_credentials must be true or false, got {credentials!r}")
        any_origin = "*" in origins
        if any_origin and credentials:
            raise ConfigError(
                "gateway.cors: allow_origins '*' cannot go with allow_credentials: true (browsers refuse it);"
                " list the origins that may send credentials, or set allow_credentials: false"
            )
        max_age_s = raw.get("max_age_s", DEFAULT_MAX_AGE_S)
        if isinstance(max_age_s, bool) or not isinstance(max_age_s, int) or max_age_s < 0:
            raise ConfigError(f"gateway.cors.max_age_s must be a whole number of seconds, got {max_age_s!r}")
        return cls(
            allow_origins=frozenset(origins - {"*"}),
            allow_any_origin=any_origin,
            allow_credentials=credentials,
            allow_headers=tuple(dict.fromkeys([*BASE_ALLOWED_HEADERS, *_headers(raw.get("allow_headers"))])),
            max_age_s=max_age_s,
        )

    def allows(self, origin: str) -> bool:
        return self.allow_any_origin or origin in self.allow_origins


def _origins(raw: Any) -> set[str]:
    if raw is None:
        return set()
    entries = [raw] if isinstance(raw, str) else raw
    if not isinstance(entries, list) or not all(isinstance(entry, str) for entry in entries):
        raise ConfigError(
            "gateway.cors.allow_origins must be a list of origins such as [https://app.example.com]"
        )
    return {_origin(entry) for entry in entries}


def _origin(entry: str) -> str:
    """An origin as browsers send it in ``Origin``, or ConfigError saying how to write it."""
    if entry == "*":
        return entry
    if entry == "null":
        # Sandboxed frames and local files all send "null": allowing it would allow any of them.
        raise ConfigError("gateway.cors.allow_origins must not list 'null'; list the real origins")
    parts = urlsplit(entry)
    if parts.scheme not in ("http", "https") or not parts.hostname or entry != entry.strip():
        raise ConfigError(
            f"gateway.cors.allow_origins: {entry!r} is not an origin; write scheme://host[:port],"
            " e.g. https://app.example.com"
        )
    if parts.path or parts.query or parts.fragment or parts.username or parts.password:
        # Browsers send the bare origin, so anything more would never match.
        raise ConfigError(
            f"gateway.cors.allow_origins: write {entry!r} as {parts.scheme}://{parts.netloc}"
            " (an origin has no path, not even a trailing /)"
        )
    return entry.lower()


def _headers(raw: Any) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(name, str) for name in raw):
        raise ConfigError("gateway.cors.allow_headers must be a list of header names such as [x-title]")
    names = [name.strip().lower() for name in raw]
    for name in names:
        if not name or not set(name) <= _TOKEN_CHARS:
            raise ConfigError(f"gateway.cors.allow_headers: {name!r} is not a header name")
    return names


class CorsMiddleware:
    """Answers preflights and adds the CORS headers to every response of an allowed origin."""

    def __init__(self, app: AsgiApp, policy: CorsPolicy) -> None:
        self.app = app
        self.policy = policy
        # Built once: per request only the origin echo is new.
        self._vary = not policy.allow_any_origin
        self._answer_extra: list[tuple[bytes, bytes]] = (
            [(b"access-control-allow-credentials", b"true")] if policy.allow_credentials else []
        )
        self._preflight_extra = [
            (b"access-control-allow-methods", ", ".join(ALLOWED_METHODS).encode()),
            (b"access-control-allow-headers", ", ".join(policy.allow_headers).encode()),
            (b"access-control-max-age", str(policy.max_age_s).encode()),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin: bytes | None = None
        requests_method = False
        for name, value in scope["headers"]:
            if name == b"origin":
                origin = value
            elif name == b"access-control-request-method":
                requests_method = True
        if origin is not None and requests_method and scope["method"] == "OPTIONS":
            await self._preflight(origin, send)
            return
        added = self._cors_headers(origin)

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": _merged(message.get("headers", ()), added)}
            await send(message)

        await self.app(scope, receive, send_with_cors)

    def _cors_headers(self, origin: bytes | None) -> list[tuple[bytes, bytes]]:
        """The headers an actual (not preflight) response gets for a request from ``origin``."""
        if self.policy.allow_any_origin:
            return [(b"access-control-allow-origin", b"*")]
        headers = [(b"vary", b"Origin")]
        if origin is not None and self.policy.allows(origin.decode("latin-1")):
            headers += [(b"access-control-allow-origin", origin), *self._answer_extra]
        return headers

    async def _preflight(self, origin: bytes, send: Send) -> None:
        headers = [(b"vary", b"Origin")] if self._vary else []
        if self.policy.allows(origin.decode("latin-1")):
            status = 204  # a 204 carries no Content-Length (RFC 9110 8.6)
            headers += [
                (b"access-control-allow-origin", b"*" if self.policy.allow_any_origin else origin),
                *self._answer_extra,
                *self._preflight_extra,
            ]
        else:
            status = 403
            headers.append((b"content-length", b"0"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


def _merged(headers: Any, added: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The response's headers plus ``added``; a ``Vary`` the app set is extended rather than repeated."""
    out = list(headers)
    for name, value in added:
        if name == b"vary":
            for i, (existing, existing_value) in enumerate(out):
                if existing.lower() == b"vary":
                    out[i] = (existing, existing_value + b", " + value)
                    break
            else:
                out.append((name, value))
        else:
            out.append((name, value))
    return out
