"""The web pages: model page, models, status and activity, served from the gateway's own process.

``WebPages(source).route(method, path)`` gives the ASGI handler for a page path, or None; ``PageSource`` is
what the pages read (the gateway implements it). ``on_demand.PagesOnDemand`` builds them at the first page
request. Both names are imported when first used (PEP 562), so that importing ``tokenmux.web.page_paths``
does not import Jinja2.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tokenmux.web.pages import WebPages
    from tokenmux.web.source import PageSource

__all__ = ["PageSource", "WebPages"]


def __getattr__(name: str) -> Any:
    if name == "WebPages":
        from tokenmux.web.pages import WebPages

        return WebPages
    if name == "PageSource":
        from tokenmux.web.source import PageSource

        return PageSource
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
