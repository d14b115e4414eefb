"""The web pages: model page, models, status and activity, served from the gateway's own process.

``WebPages(source).route(method, path)`` gives the ASGI handler for a page path, or None; ``PageSource`` is
what the pages read (the gateway implements it).
"""

from tokenmux.web.pages import WebPages
from tokenmux.web.source import PageSource

__all__ = ["PageSource", "WebPages"]
