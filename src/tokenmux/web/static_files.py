"""The files under ``web/static``, read once into memory and served with validators and caching headers.

A request names a file; it is looked up in a dict built from the package's own listing, so no request can
reach a path outside that listing ("..", encoded separators, absolute paths all simply miss).
Pages link to ``url(name)``, which carries a digest of the content: a new release changes the link, so
the browser may keep a linked file for a year without ever showing a stale one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

from tokenmux.asgi import Receive, Scope, Send, query_value, send_bytes, send_text

CONTENT_TYPES = {
    ".css": b"text/css; charset=utf-8",
    ".js": b"text/javascript; charset=utf-8",
    ".svg": b"image/svg+xml",
    ".png": b"image/png",
    ".ico": b"image/x-icon",
    ".woff2": b"font/woff2",
    ".txt": b"text/plain; charset=utf-8",
}
PREFIX = "/static/"
# Unversioned links (a bookmark, an old page) are revalidated after an hour.
_SHORT_CACHE = b"public, max-age=3600"
_LONG_CACHE = b"public, max-age=31536000, immutable"


@dataclass(frozen=True, slots=True)
class StaticFile:
    body: bytes
    content_type: bytes
    version: str  # first 12 hex digits of the content's SHA-256

    @property
    def etag(self) -> bytes:
        return f'"{self.version}"'.encode()


def load_static_files(package: str = "tokenmux.web", folder: str = "static") -> dict[str, StaticFile]:
    files: dict[str, StaticFile] = {}
    root = resources.files(package).joinpath(folder)
    for entry in root.iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1] if "." in entry.name else ""
        if not entry.is_file() or suffix not in CONTENT_TYPES:
            continue
        body = entry.read_bytes()
        version = hashlib.sha256(body).hexdigest()[:12]
        files[entry.name] = StaticFile(body, CONTENT_TYPES[suffix], version)
    return files


class StaticFiles:
    def __init__(self, files: dict[str, StaticFile] | None = None) -> None:
        self.files = load_static_files() if files is None else files

    def url(self, name: str) -> str:
        """The link a page uses: ``/static/tokenmux.css?v=3f2a…``. Fails for a file that is not shipped."""
        return f"{PREFIX}{name}?v={self.files[name].version}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        found = self.files.get(path[len(PREFIX) :]) if path.startswith(PREFIX) else None
        if found is None:
            await send_text(send, 404, "No such file.")
            return
        versioned = query_value(scope, "v") == found.version
        headers = [
            (b"etag", found.etag),
            (b"cache-control", _LONG_CACHE if versioned else _SHORT_CACHE),
            (b"x-content-type-options", b"nosniff"),
        ]
        if _matches(scope, found.etag):
            await send_bytes(send, 304, b"", headers, content_type=None)
            return
        await send_bytes(send, 200, found.body, headers, content_type=found.content_type)


def _matches(scope: Scope, etag: bytes) -> bool:
    for name, value in scope["headers"]:
        if name == b"if-none-match":
            return etag in [v.strip().removeprefix(b"W/") for v in value.split(b",")] or value.strip() == b"*"
    return False
