"""Which request is for a page, and which page: decided from the method and path alone, without the
templates, so that the gateway claims its page paths from the start and builds the pages themselves only
when one is first asked for (``web/on_demand.py``)."""

from __future__ import annotations

from tokenmux.web.static_files import PREFIX as STATIC_PREFIX

# Paths of the pages that are not a model's, and the name of the ``WebPages`` handler of each.
FIXED_PAGES = {"/": "home", "/models": "models_page", "/status": "status_page", "/activity": "activity_page"}


def page_handler_name(method: str, path: str) -> str | None:
    """The name of the ``WebPages`` attribute that answers ``method path``, or None when it is no page's."""
    if method == "POST":
        return "activity_page" if path == "/activity" else None  # the form that takes a key
    if method not in ("GET", "HEAD") or path.startswith("/api/"):
        return None
    if path.startswith(STATIC_PREFIX):
        return "static"
    name = FIXED_PAGES.get(path)
    if name is not None:
        return name
    author, _, slug = path[1:].partition("/")
    if author and slug and "/" not in slug:
        return "model_page"  # /{author}/{slug}, as catalog model names are
    return None
