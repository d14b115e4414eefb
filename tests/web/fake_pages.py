"""A PageSource with recorded figures (the seed page's), and a minimal ASGI app that serves WebPages.

Payloads are built by the same ``server/catalog_api.py`` functions the API uses, from the shipped catalog,
so the pages are tested against the real payload shapes; only the live figures are made up here.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from tokenmux.asgi import Receive, Scope, Send, send_text
from tokenmux.catalog import Catalog, load_catalog
from tokenmux.errors import AuthenticationFailed
from tokenmux.server.catalog_api import (
    HOURS_OF_UPTIME,
    empty_live_figures,
    model_endpoints_json,
    models_json,
)
from tokenmux.store.records import AttemptRecord, GenerationRecord
from tokenmux.web import WebPages

NANO = "openai/gpt-4.1-nano"
NOW = 1_760_108_400.0 + 25 * 60  # 2025-10-10 15:25 UTC: the last hourly bar is "Oct 10, 2025 - 3 PM UTC"
GOOD_KEY = "sk-tm-test-activity-key-0001"
HOSTILE = '<script>alert("x")</script>&<b>'


def _window(low: float, high: float, avg: float) -> dict[str, float]:
    return {"min": low, "max": high, "avg": avg, "p50": avg, "p90": high * 0.9, "p99": high}


# Hourly uptime of azure, oldest first: one hour in each colour band, a quiet hour, the rest perfect.
AZURE_HOURLY: list[float | None] = [100.0] * HOURS_OF_UPTIME
AZURE_HOURLY[-2] = 96.5  # good (>= 95)
AZURE_HOURLY[-3] = 90.0  # fair (>= 85)
AZURE_HOURLY[-4] = 50.0  # poor
AZURE_HOURLY[-5] = None  # no traffic
AZURE_HOURLY[-6] = 95.0  # exactly on the green threshold
AZURE_HOURLY[-7] = 85.0  # exactly on the amber threshold

# The seed page's measured figures for gpt-4.1-nano, with distinct 30-minute figures to tell them apart.
LIVE: dict[str, dict[str, Any]] = {
    f"{NANO}@openai": {
        "status": "up",
        "uptime_last_30m": 100.0,
        "uptime_last_1d": 100.0,
        "uptime_hourly": [None] * 48 + [100.0] * 24,
        "latency_last_30m": _window(551.0, 700.0, 612.0),
        "latency_last_1d": _window(540.0, 722.0, 627.59),
        "throughput_last_30m": _window(9.0, 70.0, 16.2),
        "throughput_last_1d": _window(8.54, 80.78, 17.45),
        "cache_hit_last_30m": 81.25,
        "cache_hit_last_1d": 62.5,
    },
    f"{NANO}@azure": {
        "status": "degraded",
        "uptime_last_30m": 90.0,
        "uptime_last_1d": 97.31,
        "uptime_hourly": AZURE_HOURLY,
        "latency_last_30m": _window(1160.0, 1700.0, 1300.0),
        "latency_last_1d": _window(1149.0, 1800.0, 1296.43),
        "throughput_last_30m": _window(7.0, 100.0, 31.0),
        "throughput_last_1d": _window(6.25, 108.82, 29.85),
        "cache_hit_last_30m": None,
        "cache_hit_last_1d": None,
    },
}
NANO_TOKENS_PER_DAY = [{"date": f"2025-09-{day:02d}", "tokens": 0} for day in range(11, 31)] + [
    {"date": f"2025-10-{day:02d}", "tokens": 1_000_000 * day + 12_345} for day in range(1, 11)
]


def hostile_catalog(catalog: Catalog) -> Catalog:
    """The shipped catalog with gpt-4.1-nano's texts and links replaced by markup and a script URL."""
    nano = catalog.models[NANO]
    endpoints = tuple(
        dataclasses.replace(e, status_page_url="javascript:alert(1)", quantization=HOSTILE)
        for e in nano.endpoints
    )
    models = dict(catalog.models)
    models[NANO] = dataclasses.replace(nano, name=HOSTILE, description=HOSTILE, endpoints=endpoints)
    return dataclasses.replace(catalog, models=models)


def _generation(gid: str, created: float, attempts: list[AttemptRecord], **fields: Any) -> dict[str, Any]:
    return GenerationRecord(
        id=gid, requested_model=NANO, created_at=created, attempts=attempts, **fields
    ).to_api()


def activity() -> dict[str, Any]:
    failed = AttemptRecord(
        generation_id="gen-2",
        attempt=1,
        model=NANO,
        provider="azure",
        endpoint=f"{NANO}@azure",
        outcome="error",
        error_class="timeout",
        latency_ms=1000.0,
    )
    served = AttemptRecord(
        generation_id="gen-2",
        attempt=2,
        model=NANO,
        provider="openai",
        endpoint=f"{NANO}@openai",
        outcome="success",
        ttft_ms=640.0,
        latency_ms=900.0,
    )
    # Not streamed: no first token seen.
    whole = AttemptRecord(
        generation_id="gen-1",
        attempt=1,
        model=NANO,
        provider="openai",
        endpoint=f"{NANO}@openai",
        outcome="success",
        latency_ms=2300.0,
        generation_ms=2300.0,
    )
    return {
        "key": {"name": "demo-key", "display": "sk-tm-test-a…"},
        "by_day": [
            {
                "date": "2025-10-09",
                "requests": 12,
                "prompt_tokens": 1200,
                "completion_tokens": 3400,
                "cost_usd": 0.00148,
            },
            {
                "date": "2025-10-10",
                "requests": 3,
                "prompt_tokens": 300,
                "completion_tokens": 900,
                "cost_usd": 0.00039,
            },
        ],
        "by_model": [
            {
                "model": NANO,
                "requests": 15,
                "prompt_tokens": 1500,
                "completion_tokens": 4300,
                "cost_usd": 0.00187,
            },
        ],
        "recent": [
            _generation(
                "gen-2",
                NOW - 60,
                [failed, served],
                model=NANO,
                provider="openai",
                prompt_tokens=100,
                completion_tokens=300,
                cost_usd=0.00013,
                ttft_ms=1640.0,
                latency_ms=1900.0,
            ),
            _generation(
                "gen-1",
                NOW - 120,
                [whole],
                model=NANO,
                provider="openai",
                prompt_tokens=100,
                completion_tokens=300,
                cost_usd=0.00013,
                latency_ms=2300.0,
                generation_ms=2300.0,
            ),
        ],
    }


class FakePageSource:
    def __init__(self, catalog: Catalog | None = None, configured: frozenset[str] | None = None) -> None:
        self.catalog = catalog or load_catalog()
        self.configured = configured if configured is not None else frozenset({"openai", "azure"})
        self.activity_calls: list[str] = []

    def _live_for(self, endpoint: Any) -> dict[str, Any]:
        base = empty_live_figures()
        if endpoint.provider not in self.configured:
            base["status"] = "not_configured"
        return {**base, **LIVE.get(endpoint.key, {})}

    def model_payload(self, model_id: str) -> dict[str, Any] | None:
        model = self.catalog.models.get(model_id)
        if model is None:
            return None
        days = NANO_TOKENS_PER_DAY if model_id == NANO else []
        payload = model_endpoints_json(model, self.catalog, self.configured, self._live_for, days)
        data: dict[str, Any] = payload["data"]
        return data

    def models_payload(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = models_json(self.catalog, self.configured)["data"]
        for entry in entries:
            entry["throughput"] = 29.85 if entry["id"] == NANO else None
        return entries

    def status_payload(self) -> list[dict[str, Any]]:
        rows = []
        for slug, provider in self.catalog.providers.items():
            state = {"openai": "up", "azure": "degraded"}.get(slug, "not_configured")
            hourly = AZURE_HOURLY if slug == "azure" else [None] * HOURS_OF_UPTIME
            rows.append(
                {
                    "provider": slug,
                    "name": provider.name,
                    "state": state,
                    "uptime_last_1d": {"openai": 100.0, "azure": 97.31}.get(slug),
                    "uptime_hourly": hourly,
                    "endpoints": sum(
                        1 for m in self.catalog.models.values() for e in m.endpoints if e.provider == slug
                    ),
                    "status_page_url": provider.status_page_url,
                }
            )
        return rows

    async def activity_payload(self, api_key: str) -> dict[str, Any]:
        self.activity_calls.append(api_key)
        if api_key != GOOD_KEY:
            raise AuthenticationFailed("unknown API key")
        return activity()

    def base_url(self, scope: Scope) -> str:
        for name, value in scope["headers"]:
            if name == b"host":
                return f"http://{value.decode('latin-1')}"
        host, port = scope["server"]
        return f"http://{host}:{port}"


def pages_app(pages: WebPages) -> Any:
    """The pages alone as an ASGI app, the way the gateway mounts them behind its API routes."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        handler = pages.route(scope["method"], scope["path"])
        if handler is None:
            await send_text(send, 404, "not a page")
            return
        await handler(scope, receive, send)

    return app
