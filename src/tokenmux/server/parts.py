"""The gateway's services, built once by ``server/build.py``.

A plain record, not a container that routes reach into: each route is given, by ``server/routes.py``, the
few services it uses, and only the lifecycle (``server/lifecycle.py``) starts and stops them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tokenmux.attempts import Attempts
from tokenmux.catalog.model import Catalog
from tokenmux.config import Settings
from tokenmux.limits.ledger import Ledger
from tokenmux.providers.base import Provider
from tokenmux.providers.transport import Transport
from tokenmux.routing.affinity import CacheAffinity
from tokenmux.routing.health import HealthBoard
from tokenmux.routing.router import Router
from tokenmux.server.auth import KeyRing
from tokenmux.server.auth_failures import AuthFailures
from tokenmux.server.body_budget import BodyBudget
from tokenmux.server.key_limits_cache import KeyLimitsCache
from tokenmux.server.metrics import Metrics
from tokenmux.stats import Stats
from tokenmux.store.base import Store
from tokenmux.store.contents import ContentKeeper
from tokenmux.store.recorder import Recorder

if TYPE_CHECKING:  # with --redis only: imported then (server/build.py)
    from tokenmux.redis.link import RedisLink
    from tokenmux.routing.shared_health import SharedHealth


@dataclass(slots=True)
class Parts:
    settings: Settings
    catalog: Catalog
    store: Store
    transport: Transport
    providers: dict[str, Provider]  # configured providers by slug
    configured: frozenset[str]
    health: HealthBoard  # this process's cooldowns and circuits
    stats: Stats
    router: Router
    affinity: CacheAffinity  # which endpoint holds each recent conversation's prompt cache
    recorder: Recorder
    metrics: Metrics
    attempts: Attempts
    auth_failures: AuthFailures
    keys: KeyRing
    key_limits: KeyLimitsCache
    ledger: Ledger
    contents: ContentKeeper
    bodies: BodyBudget  # request bodies in flight, under gateway.body_budget_bytes
    redis_link: RedisLink | None  # with --redis only, like the two below
    shared_health: SharedHealth | None
    # Where clients reach this gateway, for sample code on the pages: configured, or where ``serve`` listens.
    public_url: str = ""

    def key_changed(self, key_id: str) -> None:
        """A key was updated or revoked here: no cached copy may outlive the change in this process
        (other replicas read it again within the key cache's few seconds)."""
        self.keys.forget()
        self.key_limits.forget(key_id)
        self.ledger.forget(key_id)
