"""What the web pages read, built from the same functions as the JSON API so the two never disagree."""

from __future__ import annotations

from typing import Any

from tokenmux.asgi import Scope
from tokenmux.catalog.lookup import find_model
from tokenmux.catalog.model import Catalog, Endpoint
from tokenmux.routing.health import HealthBoard
from tokenmux.server.auth import KeyRing
from tokenmux.server.catalog_api import model_endpoints_json, models_json
from tokenmux.server.live_figures import LiveFigures
from tokenmux.stats import Stats

# The sample code's URL when none is configured: plainly a placeholder (a reserved example domain).
PLACEHOLDER_URL = "https://your-gateway.example"


class GatewayPages:
    """The gateway as a ``web.PageSource``."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        configured: frozenset[str],
        live_figures: LiveFigures,
        stats: Stats,
        health: HealthBoard,
        keys: KeyRing,
        public_url: str,
    ) -> None:
        self.catalog = catalog
        self.configured = configured
        self.live_figures = live_figures
        self.stats = stats
        self.health = health
        self.keys = keys
        self.public_url = public_url

    def model_payload(self, model_id: str) -> dict[str, Any] | None:
        model = find_model(self.catalog, model_id)
        if model is None:
            return None
        body = model_endpoints_json(
            model, self.catalog, self.configured, self.live_figures, self.stats.tokens_per_day(model.id)
        )
        data: dict[str, Any] = body["data"]
        return data

    def models_payload(self) -> list[dict[str, Any]]:
        figures = self.stats.endpoint_figures
        entries: list[dict[str, Any]] = models_json(self.catalog, self.configured)["data"]
        for entry in entries:
            best = None
            for endpoint in self.catalog.models[entry["id"]].endpoints:
                day = figures(endpoint.key)["throughput_last_1d"]
                if day is not None and (best is None or day["avg"] > best):
                    best = day["avg"]
            entry["throughput"] = best
        return entries

    def status_payload(self) -> list[dict[str, Any]]:
        by_provider: dict[str, list[Endpoint]] = {}
        for model in self.catalog.models.values():
            for endpoint in model.endpoints:
                by_provider.setdefault(endpoint.provider, []).append(endpoint)
        out = []
        for slug, info in sorted(self.catalog.providers.items(), key=lambda kv: kv[1].name.lower()):
            endpoints = by_provider.get(slug, [])
            out.append(
                {
                    "provider": slug,
                    "name": info.name,
                    "state": self._provider_state(slug, endpoints),
                    "uptime_last_1d": self.stats.provider_uptime(slug, "1d"),
                    "uptime_hourly": self.stats.provider_uptime_hourly(slug),
                    "endpoints": len(endpoints),
                    "status_page_url": info.status_page_url,
                }
            )
        return out

    def _provider_state(self, slug: str, endpoints: list[Endpoint]) -> str:
        if slug not in self.configured:
            return "not_configured"
        blocked = [e for e in endpoints if self.health.blocked_until(e.key)]
        if endpoints and len(blocked) == len(endpoints):
            circuits = [self.health.peek(e.key) for e in blocked]
            return "down" if all(s is not None and s.circuit_open_until for s in circuits) else "cooling_down"
        state = self.stats.provider_status(slug)
        if blocked and state == "up":
            return "degraded"
        return state

    async def activity_payload(self, api_key: str) -> dict[str, Any]:
        key = await self.keys.authenticate(None, api_key.encode("utf-8", "replace"))
        activity = await self.stats.key_activity(key.id)
        recent = await self.stats.recent_generations(key.id)
        return {
            "key": {"name": key.name, "display": key.display},
            "by_day": activity["by_day"],
            "by_model": activity["by_model"],
            "recent": [g.to_api() for g in recent],
        }

    def base_url(self, scope: Scope) -> str:
        """``gateway.public_url``, or the address ``serve`` listens on, or a placeholder that says so."""
        return self.public_url or PLACEHOLDER_URL
