"""What the web pages read, built from the same functions as the JSON API so the two never disagree."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tokenmux.asgi import Scope
from tokenmux.catalog.lookup import find_model
from tokenmux.catalog.model import Catalog, Endpoint
from tokenmux.server.catalog_api import model_endpoints_json, models_json

if TYPE_CHECKING:
    from tokenmux.server.app import Gateway

# The sample code's URL when none is configured: plainly a placeholder (a reserved example domain).
PLACEHOLDER_URL = "https://your-gateway.example"


class GatewayPages:
    """The gateway as a ``web.PageSource``."""

    def __init__(self, gateway: Gateway) -> None:
        self._gw = gateway
        self.catalog: Catalog = gateway.catalog

    def model_payload(self, model_id: str) -> dict[str, Any] | None:
        model = find_model(self.catalog, model_id)
        if model is None:
            return None
        gw = self._gw
        body = model_endpoints_json(
            model, self.catalog, gw.configured, gw.live_figures, gw.stats.tokens_per_day(model.id)
        )
        data: dict[str, Any] = body["data"]
        return data

    def models_payload(self) -> list[dict[str, Any]]:
        figures = self._gw.stats.endpoint_figures
        entries: list[dict[str, Any]] = models_json(self.catalog, self._gw.configured)["data"]
        for entry in entries:
            best = None
            for endpoint in self.catalog.models[entry["id"]].endpoints:
                day = figures(endpoint.key)["throughput_last_1d"]
                if day is not None and (best is None or day["avg"] > best):
                    best = day["avg"]
            entry["throughput"] = best
        return entries

    def status_payload(self) -> list[dict[str, Any]]:
        gw = self._gw
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
                    "uptime_last_1d": gw.stats.provider_uptime(slug, "1d"),
                    "uptime_hourly": gw.stats.provider_uptime_hourly(slug),
                    "endpoints": len(endpoints),
                    "status_page_url": info.status_page_url,
                }
            )
        return out

    def _provider_state(self, slug: str, endpoints: list[Endpoint]) -> str:
        gw = self._gw
        if slug not in gw.configured:
            return "not_configured"
        blocked = [e for e in endpoints if gw.health.blocked_until(e.key)]
        if endpoints and len(blocked) == len(endpoints):
            circuits = [gw.health.peek(e.key) for e in blocked]
            return "down" if all(s is not None and s.circuit_open_until for s in circuits) else "cooling_down"
        state = gw.stats.provider_status(slug)
        if blocked and state == "up":
            return "degraded"
        return state

    async def activity_payload(self, api_key: str) -> dict[str, Any]:
        gw = self._gw
        key = await gw.keys.authenticate(None, api_key.encode("utf-8", "replace"))
        activity = await gw.stats.key_activity(key.id)
        recent = await gw.stats.recent_generations(key.id)
        return {
            "key": {"name": key.name, "display": key.display},
            "by_day": activity["by_day"],
            "by_model": activity["by_model"],
            "recent": [g.to_api() for g in recent],
        }

    def base_url(self, scope: Scope) -> str:
        """``gateway.public_url``, or the address ``serve`` listens on, or a placeholder that says so."""
        return self._gw.public_url or PLACEHOLDER_URL
