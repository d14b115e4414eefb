"""Finding the handler of a request in the route table, and answering what no handler answered.

Exact routes are one dict lookup; the few prefixed ones (a model id, a key id in the path) are tried in
order after them; a path the API does not claim goes to the web pages, and anything else is a 404.
A client error raised by a handler is answered in the API's shape; any other exception is a bug of ours,
logged once with its traceback and answered 500 in the same shape.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tokenmux.asgi import AsgiApp, Receive, Scope, Send
from tokenmux.errors import NotFound, TokenmuxError
from tokenmux.protocols.openai_chat import encode_error
from tokenmux.server.metrics import Metrics
from tokenmux.server.replies import send_error

log = logging.getLogger("tokenmux.server")


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: AsgiApp
    # True: ``path`` is a prefix, and the rest of the request's path is the route's argument (not empty).
    prefix: bool = False


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
        return page if page is not None else self.not_found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.handler(scope["method"], scope["path"])(scope, receive, send)
        except TokenmuxError as err:
            await send_error(send, err, encode_error, self._metrics)
        except Exception:
            # A bug of ours, not the client's: logged with its traceback, answered in the API's shape.
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            failure = TokenmuxError("internal error in the gateway; the request was not completed")
            # If the response had already started, nothing more can be said.
            with contextlib.suppress(Exception):
                await send_error(send, failure, encode_error, self._metrics)

    async def not_found(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotFound(f"no route {scope['method']} {scope['path']}; the API lives under /api/v1")
