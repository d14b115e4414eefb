"""What the pages read: the same payloads the JSON API serves, so a page and the API never disagree.

The gateway implements this; tests implement it with recorded figures. Payload shapes are those of
``server/catalog_api.py`` (``GET /api/v1/models``, ``/api/v1/models/{author}/{slug}/endpoints``) plus the
status and activity payloads described on each method.
"""

from __future__ import annotations

from typing import Any, Protocol

from tokenmux.asgi import Scope
from tokenmux.catalog.model import Catalog


class PageSource(Protocol):
    catalog: Catalog

    def model_payload(self, model_id: str) -> dict[str, Any] | None:
        """The ``data`` object of a model's ``/endpoints`` answer, live figures included; None if unknown."""
        ...

    def models_payload(self) -> list[dict[str, Any]]:
        """The ``data`` entries of ``GET /api/v1/models``, each with ``throughput``: the best measured
        average tokens/s over the last day across its endpoints, or None."""
        ...

    def status_payload(self) -> list[dict[str, Any]]:
        """One entry per provider: ``provider`` (slug), ``name``, ``state``, ``uptime_last_1d``,
        ``uptime_hourly`` (72 entries, oldest first), ``endpoints`` (count), ``status_page_url``."""
        ...

    async def activity_payload(self, api_key: str) -> dict[str, Any]:
        """A key's usage: ``key`` {name, display}, ``by_day``, ``by_model`` and ``recent`` generations
        (newest first, with their attempts). Raises ``AuthenticationFailed`` for an unknown key."""
        ...

    def base_url(self, scope: Scope) -> str:
        """The gateway's URL for sample code (scheme and host, no trailing slash). Never built from the
        request's Host header: a client chooses it, and a page must not show code pointing elsewhere."""
        ...
