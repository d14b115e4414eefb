"""The web pages, built when a page is first asked for.

Building them imports Jinja2, reads the static files and compiles every template: about 5 MB resident and
0.15 s of CPU that a gateway serving only the API never needs. The page paths are claimed from the start
(``page_paths.py``); the first request for one builds the pages in a worker thread, so the event loop goes
on serving API requests meanwhile, and every request after it goes straight to the built pages.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from tokenmux.asgi import AsgiApp, Receive, Scope, Send
from tokenmux.web.page_paths import page_handler_name

if TYPE_CHECKING:
    from tokenmux.web.pages import WebPages


class PagesOnDemand:
    def __init__(self, build: Callable[[], WebPages]) -> None:
        self._build = build  # run in a worker thread: it must not touch the event loop
        self._pages: WebPages | None = None
        self._building: asyncio.Future[WebPages] | None = None
        self._waiting_handlers: dict[str, AsgiApp] = {}

    @property
    def built(self) -> bool:
        return self._pages is not None

    def route(self, method: str, path: str) -> AsgiApp | None:
        """As ``WebPages.route``: the handler of a page path, or None when the path is no page's."""
        name = page_handler_name(method, path)
        if name is None:
            return None
        if self._pages is not None:
            return self._pages.route(method, path)
        handler = self._waiting_handlers.get(name)
        if handler is None:
            handler = self._waiting_handlers[name] = partial(self._serve_when_built, name)
        return handler

    async def _serve_when_built(self, name: str, scope: Scope, receive: Receive, send: Send) -> None:
        pages = await self.pages()
        await getattr(pages, name)(scope, receive, send)

    async def pages(self) -> WebPages:
        """The pages, built by the first caller; the callers that come meanwhile wait for that build."""
        if self._pages is not None:
            return self._pages
        if self._building is None:
            self._building = asyncio.ensure_future(asyncio.to_thread(self._build))
        building = self._building
        try:
            # Shielded: a client that disconnects cancels its own wait, not the build the others wait for.
            pages = await asyncio.shield(building)
        except BaseException:
            if building.done() and not building.cancelled() and building.exception() is not None:
                self._building = None  # a failed build is tried again by the next request
            raise
        self._pages = pages
        return pages
