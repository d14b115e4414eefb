"""An endpoint's measured figures with its state now, for the JSON API and the pages alike."""

from __future__ import annotations

from typing import Any

from tokenmux.catalog.model import Endpoint
from tokenmux.routing.health import HealthBoard
from tokenmux.stats import Stats


class LiveFigures:
    __slots__ = ("configured", "health", "stats")

    def __init__(self, stats: Stats, health: HealthBoard, configured: frozenset[str]) -> None:
        self.stats = stats
        self.health = health
        self.configured = configured

    def __call__(self, endpoint: Endpoint) -> dict[str, Any]:
        """What the windows say of ``endpoint``; its health now (cooldown, open circuit) overrides them."""
        live: dict[str, Any] = dict(self.stats.endpoint_figures(endpoint.key))
        if endpoint.provider not in self.configured:
            live["status"] = "not_configured"
            return live
        if self.health.blocked_until(endpoint.key):
            state = self.health.peek(endpoint.key)
            live["status"] = "down" if state is not None and state.circuit_open_until else "cooling_down"
        return live
