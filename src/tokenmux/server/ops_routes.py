"""The operator's routes: ``/health`` (the process answers), ``/ready`` (and its dependencies) and
``/metrics`` (Prometheus)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tokenmux.asgi import Receive, Scope, Send, send_bytes
from tokenmux.json_codec import encode_json
from tokenmux.limits.ledger import Ledger
from tokenmux.server.lifecycle import Lifecycle
from tokenmux.server.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from tokenmux.server.metrics import Metrics
from tokenmux.store.base import Store
from tokenmux.store.recorder import Recorder

if TYPE_CHECKING:  # with --redis only
    from tokenmux.redis.link import RedisLink


class OpsRoutes:
    def __init__(
        self,
        *,
        lifecycle: Lifecycle,
        store: Store,
        redis_link: RedisLink | None,
        ledger: Ledger,
        recorder: Recorder,
        metrics: Metrics,
    ) -> None:
        self.lifecycle = lifecycle
        self.store = store
        self.redis_link = redis_link
        self.ledger = ledger
        self.recorder = recorder
        self.metrics = metrics

    async def health_check(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send_bytes(send, 200, b'{"status":"ok"}')

    async def ready_check(self, scope: Scope, receive: Receive, send: Send) -> None:
        """503 until started and once stopping; 200 while serving, saying which dependency is down.

        A database or Redis outage is "degraded", not "not ready": requests are still served (records
        wait in the recorder, limits fall back to this replica's books), so taking every replica out of a
        load balancer for it would turn a partial outage into a full one."""
        database = await self.store.ping()
        redis = await self.redis_link.ping() if self.redis_link is not None else None
        if not self.lifecycle.ready:
            status, state = 503, "not_ready"
        elif database and redis is not False:
            status, state = 200, "ready"
        else:
            status, state = 200, "degraded"
        body = {
            "status": state,
            "database": database,
            "redis": redis,
            "limits": self.ledger.state,
            "records_pending": self.recorder.pending,
        }
        await send_bytes(send, status, encode_json(body))

    async def metrics_page(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Imported on the first scrape: prometheus_client and what it imports hold about 2.5 MB.
        from tokenmux.server.metrics_exposition import render

        await send_bytes(send, 200, render(self.metrics), content_type=METRICS_CONTENT_TYPE)
