"""``tokenmux demo``: the gateway with a simulated provider behind every catalog endpoint, and some traffic.

gpt-4.1-nano's two providers behave as the seed model page measured them (first-token latency and
throughput ranges); the other providers get plausible, varied profiles so that routing has real choices
to make and the figures differ between providers. The traffic (``demo_request``) is spread over each
model's providers and mostly streamed, so that within minutes every card of the seed model shows figures
that rest on enough calls, within the ranges its profile was given.
"""

from __future__ import annotations

import asyncio
import random
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp

from tokenmux.catalog.loader import load_catalog
from tokenmux.providers import provider_kinds
from tokenmux.server.build import build_gateway
from tokenmux.server.parts import Parts
from tokenmux.server.runner import BackgroundServer, DrainingServer, uvicorn_config
from tokenmux.simulator.app import create_app
from tokenmux.store.keys import new_key
from tokenmux.store.url import open_store

# The seed page's measured figures for openai/gpt-4.1-nano.
SEED_PROFILES: dict[str, dict[str, Any]] = {
    "openai": {
        "ttft_ms": 628,
        "ttft_ms_min": 540,
        "ttft_ms_max": 722,
        "tokens_per_second": 17.45,
        "tokens_per_second_min": 8.54,
        "tokens_per_second_max": 80.78,
    },
    "azure": {
        "ttft_ms": 1296,
        "ttft_ms_min": 1149,
        "ttft_ms_max": 1800,
        "tokens_per_second": 29.85,
        "tokens_per_second_min": 6.25,
        "tokens_per_second_max": 108.82,
    },
}
SEED_MODEL = "gpt-4.1-nano"


def demo_profiles(provider_slugs: list[str]) -> dict[str, dict[str, Any]]:
    """A profile per simulated provider; reproducible (seeded by the slug)."""
    profiles: dict[str, dict[str, Any]] = {}
    for slug in provider_slugs:
        rng = random.Random(slug)
        ttft = rng.uniform(250, 1400)
        tps = rng.uniform(20, 160)
        profile: dict[str, Any] = {
            "ttft_ms": round(ttft),
            "ttft_ms_min": round(ttft * 0.7),
            "ttft_ms_max": round(ttft * 1.6),
            "tokens_per_second": round(tps, 2),
            "tokens_per_second_min": round(tps * 0.4, 2),
            "tokens_per_second_max": round(tps * 2.5, 2),
            "error_rate": round(rng.choice([0.0, 0.0, 0.01, 0.03]), 3),
            "rate_limit_rate": round(rng.choice([0.0, 0.0, 0.02]), 3),
            "completion_tokens": 40,
        }
        if slug in SEED_PROFILES:
            profile["models"] = {SEED_MODEL: {**SEED_PROFILES[slug], "completion_tokens": 40}}
        profiles[slug] = profile
    return profiles


def demo_config(sim_url: str, provider_slugs: list[str]) -> dict[str, Any]:
    providers: dict[str, Any] = {}
    catalog = load_catalog()
    for slug in provider_slugs:
        kind = catalog.providers[slug].kind
        if kind == "azure":
            providers[slug] = {"base_url": f"{sim_url}/azure", "api_key": "demo", "api_version": "2024-10-21"}
        elif kind in ("anthropic", "google"):
            # The simulator speaks these formats under one prefix each; third-party hosts share it.
            providers[slug] = {"kind": kind, "base_url": f"{sim_url}/{kind}", "api_key": "demo"}
        else:
            providers[slug] = {"kind": kind, "base_url": f"{sim_url}/{slug}/v1", "api_key": "demo"}
    return {"providers": providers, "gateway": {"attempt_timeout_s": 30}}


def simulated_providers() -> list[str]:
    """Catalog providers whose wire format this version can speak to (and the simulator can imitate)."""
    catalog = load_catalog()
    return sorted(slug for slug, info in catalog.providers.items() if info.kind in provider_kinds())


async def create_demo_key(database_url: str) -> str:
    secret, record = new_key(f"demo-{int(time.time())}")
    async with open_store(database_url) as store:
        await store.create_key(record)
    return secret


def start_simulator() -> BackgroundServer:
    """The simulated providers with the demo's profiles, on a loopback port."""
    return BackgroundServer(create_app(seed=7, profiles=demo_profiles(simulated_providers()))).start()


def served_models(parts: Parts) -> dict[str, list[str]]:
    """Every chat model the gateway can serve, with the configured providers that serve it."""
    return {
        m.id: [e.provider for e in m.endpoints if e.provider in parts.providers]
        for m in sorted(parts.catalog.models.values(), key=lambda m: m.id)
        if any(e.provider in parts.providers for e in m.endpoints) and not m.embedding
    }


SEED_MODEL_ID = f"openai/{SEED_MODEL}"
SEED_MODEL_SHARE = 0.5  # the seed model's page is the one a newcomer opens first
ORDERED_SHARE = 2 / 3  # requests that name a provider to try first, spread evenly over the model's providers
STREAMED_SHARE = 0.85  # a first token and a pace are seen only in streamed calls


def demo_request(rng: random.Random, models: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """One request of the demo's traffic: ``models`` maps each model to the providers that serve it.

    Left to itself, routing sends almost every request to the endpoint with the best score, and the page's
    other providers would show figures that rest on a handful of calls: so two requests in three put a
    provider, drawn evenly, first (``provider.order``). Most are streamed, since only a streamed call
    shows its first token and its pace; the rest show the non-streamed path and count in total latency.
    """
    others = [m for m in models if m != SEED_MODEL_ID] or list(models)
    model = (
        SEED_MODEL_ID if SEED_MODEL_ID in models and rng.random() < SEED_MODEL_SHARE else rng.choice(others)
    )
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": f"Demo request {rng.randrange(10**6)}: say something."}],
        "stream": rng.random() < STREAMED_SHARE,
        "max_completion_tokens": rng.choice([24, 40, 64]),
    }
    providers = models[model]
    if len(providers) > 1 and rng.random() < ORDERED_SHARE:
        body["provider"] = {"order": [rng.choice(providers)]}
    return body


class Traffic:
    """Background load through the gateway, so the figures fill: ``rps`` requests a second on average
    (Poisson arrivals), each from ``demo_request``."""

    def __init__(self, base_url: str, key: str, rps: float, models: Mapping[str, Sequence[str]]) -> None:
        self.base_url = base_url
        self.key = key
        self.rps = rps
        self.models = models
        self.ok = 0
        self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._run()), name="demo-traffic", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    async def _run(self) -> None:
        rng = random.Random(42)
        headers = {"Authorization": f"Bearer {self.key}"}
        connector = aiohttp.TCPConnector(limit=0)  # as many requests in flight as the rate makes
        async with aiohttp.ClientSession(headers=headers, connector=connector) as session:
            tasks: set[asyncio.Task[None]] = set()
            while not self._stop.is_set():
                task = asyncio.ensure_future(self._one(session, demo_request(rng, self.models)))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                await asyncio.sleep(rng.expovariate(self.rps))
            for task in tasks:
                task.cancel()

    async def _one(self, session: aiohttp.ClientSession, body: dict[str, Any]) -> None:
        try:
            async with session.post(f"{self.base_url}/api/v1/chat/completions", json=body) as resp:
                await resp.read()
                if resp.status == 200:
                    self.ok += 1
                else:
                    self.failed += 1
        except (TimeoutError, aiohttp.ClientError):
            self.failed += 1


def run_demo(
    *,
    host: str,
    port: int,
    database_url: str,
    traffic_rps: float,
    duration_s: float | None,
    traffic_models: Sequence[str] | None = None,
) -> int:
    """Run until Ctrl-C (or ``duration_s``). ``traffic_models``: the models the traffic goes to, each with
    its share of ``demo_request``'s mix (default: every model served)."""
    simulator = start_simulator()
    base = f"http://{host}:{port}"
    gateway = build_gateway(
        demo_config(simulator.url, simulated_providers()), database_url=database_url, listen_url=base
    )
    key = asyncio.run(create_demo_key(database_url))
    served = served_models(gateway.parts)
    targets = {m: served[m] for m in traffic_models} if traffic_models else served
    print(
        f"""
tokenmux demo: {len(served)} models at {len(gateway.parts.providers)} simulated providers ({simulator.url})

  gateway     {base}/api/v1  (Anthropic SDK: {base}/api/anthropic)
  model page  {base}/openai/gpt-4.1-nano   (also {base}/models, {base}/status, {base}/activity)
  demo key    {key}

  curl {base}/api/v1/chat/completions \\
    -H "Authorization: Bearer {key}" -H "Content-Type: application/json" \\
    -d '{{"model": "openai/gpt-4.1-nano", "messages": [{{"role": "user", "content": "Hello"}}]}}'

Ctrl-C stops everything.
""",
        flush=True,
    )
    server = DrainingServer(uvicorn_config(gateway, host, port))
    traffic = Traffic(base, key, traffic_rps, targets) if traffic_rps > 0 else None
    stop = threading.Event()

    def progress() -> None:
        started = time.monotonic()
        while not server.started and not stop.is_set():
            time.sleep(0.05)
        if traffic:
            traffic.start()
        while not stop.wait(10):
            if traffic:
                print(
                    f"demo traffic: {traffic.ok} answered, {traffic.failed} failed",
                    file=sys.stderr,
                    flush=True,
                )
            if duration_s is not None and time.monotonic() - started >= duration_s:
                server.should_exit = True
                return

    watcher = threading.Thread(target=progress, daemon=True)
    watcher.start()
    if duration_s is not None and duration_s < 10:
        threading.Timer(duration_s, lambda: setattr(server, "should_exit", True)).start()
    try:
        server.run()
    finally:
        stop.set()
        if traffic:
            traffic.stop()
        simulator.stop()
    return 0
