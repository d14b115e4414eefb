"""Finding the handler of a request in the route table, and answering what no handler answered.

Exact routes are one dict lookup; the few prefixed ones (a model id, a key id in the path) are tried in
order after them; a path the API does not claim goes to the web pages. What is left is a 405 when the path
is a route's with another method, else a 404 naming the nearest route. A client error raised by a handler
is answered in the error shape of the API its path belongs to (``replies.py``); any other exception is a
bug of ours, logged once with its traceback and answered 500 in the same shape.
"""

from __future__ import annotations

import contextlib
import difflib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tokenmux.asgi import AsgiApp, Receive, Scope, Send
from tokenmux.errors import MethodNotAllowed, NotFound, TokenmuxError
from tokenmux.server.metrics import Metrics
from tokenmux.server.replies import error_encoder_for, send_error

log = logging.getLogger("tokenmux.server")

# A path longer than this is compared with no route: nothing is near it, and comparing costs.
_LONGEST_COMPARED = 200
_CUTOFF = 0.85  # difflib ratio below which a route is not offered as "did you mean"
_API_HOMES = (
    "OpenAI's API is under /api/v1, Anthropic's under /api/anthropic/v1, Gemini's under /api/gemini/v1beta"
)


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: AsgiApp
    # True: ``path`` is a prefix, and the rest of the request's path is the route's argument (not empty).
    prefix: bool = False
    # How a 404's "did you mean" shows a prefixed route (default: the prefix followed by ``{id}``).
    shown: str = ""

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def display(self) -> str:
        return f"{self.method} {self.shown or (self.path + '{id}' if self.prefix else self.path)}"


class RouteTable:
    def __init__(
        self,
        routes: Sequence[Route],
        *,
        pages: Callable[[str, str], AsgiApp | None],
        metrics: Metrics,
    ) -> None:
        self.routes = tuple(routes)
        self._exact = {(r.method, r.path): r.handler for r in routes if not r.prefix}
        self._prefixed = [(r.method, r.path, r.handler) for r in routes if r.prefix]
        self._pages = pages
        self._metrics = metrics

    def handler(self, method: str, path: str) -> AsgiApp:
        handler = self._exact.get((method, path))
        if handler is not None:
            return handler
        for route_method, prefix, prefixed in self._prefixed:
            if method == route_method and path.startswith(prefix) and len(path) > len(prefix):
                return prefixed
        page = self._pages(method, path)
        return page if page is not None else self.no_route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.handler(scope["method"], scope["path"])(scope, receive, send)
        except TokenmuxError as err:
            await send_error(send, err, error_encoder_for(scope["path"]), self._metrics)
        except Exception:
            # A bug of ours, not the client's: logged with its traceback, answered in the API's shape.
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            failure = TokenmuxError("internal error in the gateway; the request was not completed")
            # If the response had already started, nothing more can be said.
            with contextlib.suppress(Exception):
                await send_error(send, failure, error_encoder_for(scope["path"]), self._metrics)

    async def no_route(self, scope: Scope, receive: Receive, send: Send) -> None:
        method: str = scope["method"]
        path: str = scope["path"]
        allowed = self.methods_of(path)
        if allowed:
            raise MethodNotAllowed(f"{path} takes {' or '.join(allowed)}, not {method}", allow=allowed)
        near = self.nearest(method, path)
        if near is not None:
            raise NotFound(f"no route {method} {path}; did you mean {near}?")
        raise NotFound(f"no route {method} {path}; {_API_HOMES}")

    def methods_of(self, path: str) -> list[str]:
        """The methods the table serves at ``path`` (none when it is no route's)."""
        found = [method for method, route_path in self._exact if route_path == path]
        found += [
            method
            for method, prefix, _ in self._prefixed
            if path.startswith(prefix) and len(path) > len(prefix) and method not in found
        ]
        return found

    def nearest(self, method: str, path: str) -> str | None:
        """The route that looks most like ``method path``, or None when none is close. A prefixed route is
        compared with as many of the path's segments as its prefix has (the rest is its argument)."""
        if len(path) > _LONGEST_COMPARED:
            return None
        matcher = difflib.SequenceMatcher(autojunk=False)
        best, best_ratio = None, _CUTOFF
        for route in self.routes:
            compared = _segments(path, route.path.count("/")) if route.prefix else path
            matcher.set_seqs(f"{method} {compared}", route.key)
            if matcher.real_quick_ratio() > best_ratio and matcher.quick_ratio() > best_ratio:
                ratio = matcher.ratio()
                if ratio > best_ratio:
                    best, best_ratio = route.display, ratio
        return best


def _segments(path: str, slashes: int) -> str:
    """``path`` up to and including its ``slashes``-th slash (all of it when it has fewer)."""
    end = -1
    for _ in range(slashes):
        end = path.find("/", end + 1)
        if end < 0:
            return path
    return path[: end + 1]
