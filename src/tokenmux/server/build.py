"""Building a Gateway from a configuration document: the one place that knows all the parts and wires them."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokenmux.asgi import AsgiApp
from tokenmux.attempts import Attempts
from tokenmux.catalog.loader import load_catalog
from tokenmux.catalog.model import Catalog
from tokenmux.config import ConfigDocument, Settings, build_settings, decode_document
from tokenmux.limits.ledger import Ledger, LocalLedger, SpendSource, seed_from_log, spend_from_log
from tokenmux.providers import build_provider
from tokenmux.providers.http1 import Http1Transport
from tokenmux.providers.registry import provider_kinds
from tokenmux.providers.transport import Transport
from tokenmux.routing.affinity import CacheAffinity
from tokenmux.routing.health import HealthBoard
from tokenmux.routing.router import Router
from tokenmux.server.app import Gateway
from tokenmux.server.auth import KeyRing
from tokenmux.server.auth_failures import AuthFailures, AuthGuard
from tokenmux.server.body_budget import BodyBudget
from tokenmux.server.cors import CorsMiddleware, CorsPolicy
from tokenmux.server.header_check import HeaderCheck
from tokenmux.server.key_limits_cache import KeyLimitsCache
from tokenmux.server.lifecycle import Lifecycle
from tokenmux.server.metrics import Metrics
from tokenmux.server.parts import Parts
from tokenmux.server.routes import route_table
from tokenmux.stats import Stats
from tokenmux.store.base import Store
from tokenmux.store.contents import ContentKeeper
from tokenmux.store.journal import Journal
from tokenmux.store.recorder import Recorder
from tokenmux.store.records import GenerationRecord
from tokenmux.store.spool import Spool
from tokenmux.store.url import open_store

if TYPE_CHECKING:
    from tokenmux.redis.link import RedisLink
    from tokenmux.routing.shared_health import SharedHealth


def build_gateway(
    config: Mapping[str, Any] | ConfigDocument,
    *,
    database_url: str | None = None,
    redis_url: str | None = None,
    transport: Transport | None = None,
    env: Mapping[str, str] | None = None,
    listen_url: str | None = None,
) -> Gateway:
    """``listen_url``: where ``serve`` (or the demo) listens, for the pages' sample code when
    ``gateway.public_url`` is not configured."""
    document = decode_document(config)
    catalog = load_catalog(document.catalog or None, document.aliases or None, kinds=provider_kinds())
    settings = build_settings(document, catalog, env=env, database_url=database_url, redis_url=redis_url)
    store = open_store(settings.database_url)
    parts = build_parts(settings, catalog, store, transport=transport, listen_url=listen_url)
    return build_app(parts)


def _aiohttp_transport() -> Transport:
    # Imported only when configured: aiohttp costs about 9 MB that the default client does not need.
    from tokenmux.providers.aiohttp_transport import AiohttpTransport

    return AiohttpTransport()


def build_parts(
    settings: Settings,
    catalog: Catalog,
    store: Store,
    *,
    transport: Transport | None = None,
    listen_url: str | None = None,
) -> Parts:
    """Every service of the gateway, built once."""
    gw = settings.gateway
    transport = transport or (Http1Transport() if gw.http_client == "http1" else _aiohttp_transport())
    health = HealthBoard(
        cooldown_s=gw.cooldown_s, circuit_failures=gw.circuit_failures, circuit_open_s=gw.circuit_open_s
    )
    providers = {slug: build_provider(cfg, transport) for slug, cfg in settings.providers.items()}
    configured = frozenset(providers)
    stats = Stats(store)
    router = Router(
        catalog, configured, health, measured=stats.routing_figures, cache_hit_rate=stats.cache_hit_rate
    )
    affinity = CacheAffinity(health.blocked_until, idle_s=gw.cache_affinity_s)
    # 100,000 pending records (about 64 MB) ride out a database outage of minutes at full load.
    # Records the database cannot take in time go to disk (a full queue, a shutdown during an outage)
    # and back into the queue at the next start.
    # Every record is journaled there too before its response ends, so a crash loses none.
    spool_dir = Path(gw.spool_dir)
    recorder = Recorder(store, max_pending=100_000, spool=Spool(spool_dir), journal=Journal(spool_dir))
    recorder.add_listener(stats.batch_written)
    metrics = Metrics(recorder)
    bodies = BodyBudget(max(gw.body_budget_bytes, gw.max_body_bytes), wait_s=gw.body_wait_s)
    metrics.bodies = bodies.figures

    def record(generation: GenerationRecord) -> asyncio.Future[None] | None:
        metrics.observe(generation)
        return recorder.record(generation)

    attempts = Attempts(
        providers,
        health,
        record,
        deadline_s=gw.request_timeout_s,
        journal_stream=recorder.stream_started,
        affinity=affinity,
    )
    auth_failures = AuthFailures(limit=gw.auth_failure_limit, block_s=gw.auth_block_s)
    metrics.auth_failures = auth_failures.by_reason
    keys = KeyRing(store, admin_key=gw.admin_key or None, failures=auth_failures)
    # With --redis, replicas share limits and endpoint health; without, each process keeps its own.
    spend = spend_from_log(store)
    if settings.redis_url:
        redis_link, shared_health, ledger = _shared_over_redis(
            settings.redis_url, settings, health, store, spend, recorder, metrics
        )
    else:
        redis_link, shared_health, ledger = None, None, LocalLedger(spend)
    return Parts(
        settings=settings,
        catalog=catalog,
        store=store,
        transport=transport,
        providers=providers,
        configured=configured,
        health=health,
        stats=stats,
        router=router,
        affinity=affinity,
        recorder=recorder,
        metrics=metrics,
        attempts=attempts,
        auth_failures=auth_failures,
        keys=keys,
        key_limits=KeyLimitsCache(),
        ledger=ledger,
        contents=ContentKeeper(store),
        bodies=bodies,
        redis_link=redis_link,
        shared_health=shared_health,
        # For sample code on the pages: configured, or where this gateway listens.
        public_url=(gw.public_url or listen_url or "").rstrip("/"),
    )


def _shared_over_redis(
    redis_url: str,
    settings: Settings,
    health: HealthBoard,
    store: Store,
    spend: SpendSource,
    recorder: Recorder,
    metrics: Metrics,
) -> tuple[RedisLink, SharedHealth, Ledger]:
    """The link to Redis, the endpoint health and the ledger that replicas share through it. Imported only
    then: the Redis modules and hiredis cost about 0.5 MB that a single gateway does not need."""
    from tokenmux.limits.redis_ledger import RedisLedger
    from tokenmux.redis.link import RedisLink
    from tokenmux.routing.shared_health import SharedHealth

    gw = settings.gateway
    link = RedisLink(redis_url, timeout_s=gw.redis_timeout_s)
    ledger = RedisLedger(
        link,
        spend,
        seed_source=seed_from_log(store),
        lease_s=gw.redis_lease_s,
        longest_request_s=gw.request_timeout_s,
    )
    # Settlements are kept for sending again until their generations are in the log.
    recorder.add_listener(lambda batch: ledger.logged([g.id for g in batch]))

    def shared_gauges() -> dict[str, int]:
        return {
            "redis_up": int(link.answering),
            "redis_failures": link.failures,
            "settlements_pending": ledger.pending_settlements,
        }

    metrics.shared = shared_gauges
    return link, SharedHealth(link, health), ledger


def build_app(parts: Parts) -> Gateway:
    """The ASGI app over ``parts``: every HTTP request passes the header check, then the guard against key
    guessing, then CORS when configured, then the route table."""
    gw = parts.settings.gateway
    lifecycle = Lifecycle(parts)
    routes: AsgiApp = route_table(parts, lifecycle)
    cors = CorsPolicy.from_settings(gw.cors)
    if cors is not None:
        routes = CorsMiddleware(routes, cors)
    routes = AuthGuard(routes, parts.auth_failures)
    http = HeaderCheck(routes, max_bytes=gw.max_header_bytes, max_count=gw.max_headers)
    return Gateway(parts, lifecycle, http)
