"""The gateway as an ASGI application: routes, and the wiring of catalog, routing, providers and store.

A plain ASGI callable rather than a framework: the request path is a dict lookup, one body read, one JSON
decode, the plan, the upstream call and one JSON encode.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from tokenmux.catalog.lookup import find_model
from tokenmux.catalog.model import Catalog, Endpoint
from tokenmux.config import Settings
from tokenmux.errors import InvalidRequest, ModelNotFound, NotFound, TokenmuxError
from tokenmux.protocols.anthropic_messages import models_json as anthropic_models_json
from tokenmux.protocols.openai_chat import (
    encode_error,
    encode_json,
)
from tokenmux.providers import build_provider
from tokenmux.providers.base import Provider
from tokenmux.providers.http1 import Http1Transport
from tokenmux.providers.transport import AiohttpTransport, Transport
from tokenmux.routing.health import HealthBoard
from tokenmux.routing.router import Router
from tokenmux.server.anthropic_inbound import AnthropicMessages
from tokenmux.server.asgi import (
    Receive,
    Scope,
    Send,
    header,
    send_bytes,
)
from tokenmux.server.auth import KeyRing
from tokenmux.server.catalog_api import model_endpoints_json, models_json
from tokenmux.server.chat import ChatRoute, OpenAIChat
from tokenmux.server.metrics import Metrics
from tokenmux.server.pages_source import GatewayPages
from tokenmux.server.relay import Relay
from tokenmux.stats import Stats
from tokenmux.store.base import Store
from tokenmux.store.recorder import Recorder
from tokenmux.store.records import GenerationRecord, KeyRecord
from tokenmux.web import WebPages

log = logging.getLogger("tokenmux.server")

Handler = Callable[[Scope, Receive, Send], Any]


@dataclass(slots=True)
class Parts:
    """Everything the gateway is wired from; tests build it with fakes where they need to."""

    settings: Settings
    catalog: Catalog
    store: Store
    transport: Transport | None = None


class Gateway:
    def __init__(self, parts: Parts) -> None:
        self.settings = parts.settings
        self.catalog = parts.catalog
        self.store = parts.store
        gw = self.settings.gateway
        self.transport = parts.transport or (
            Http1Transport() if gw.http_client == "http1" else AiohttpTransport()
        )
        self.health = HealthBoard(
            cooldown_s=gw.cooldown_s, circuit_failures=gw.circuit_failures, circuit_open_s=gw.circuit_open_s
        )
        self.providers: dict[str, Provider] = {
            slug: build_provider(cfg, self.transport) for slug, cfg in self.settings.providers.items()
        }
        self.configured = frozenset(self.providers)
        self.stats = Stats(self.store)
        self.router = Router(self.catalog, self.configured, self.health, measured=self.stats.routing_figures)
        # 100,000 pending records (about 64 MB) ride out a database outage of minutes at full load.
        self.recorder = Recorder(self.store, max_pending=100_000)
        self.recorder.add_listener(self.stats.batch_written)
        self.metrics = Metrics(self.recorder)
        self.relay = Relay(
            self.providers,
            self.health,
            self._record,
            deadline_s=gw.request_timeout_s,
            keepalive_s=gw.stream_keepalive_s,
        )
        self.keys = KeyRing(self.store)
        self._models_body = encode_json(models_json(self.catalog, self.configured))
        self._anthropic_models_body = anthropic_models_json(self.catalog)
        self._routes: dict[tuple[str, str], Handler] = {
            ("POST", "/api/v1/chat/completions"): ChatRoute(self, OpenAIChat()),
            ("POST", "/api/anthropic/v1/messages"): ChatRoute(self, AnthropicMessages()),
            ("GET", "/api/anthropic/v1/models"): self.list_models_anthropic,
            ("GET", "/api/v1/models"): self.list_models,
            ("GET", "/api/v1/generation"): self.get_generation,
            ("GET", "/health"): self.health_check,
            ("GET", "/ready"): self.ready_check,
            ("GET", "/metrics"): self.metrics_page,
        }
        self.pages = WebPages(GatewayPages(self))
        self.ready = False

    # -- lifecycle -----------------------------------------------------------------------------

    async def startup(self) -> None:
        await self.store.open()
        self.recorder.start()
        await self.stats.start()
        self.ready = True

    async def shutdown(self) -> None:
        self.ready = False
        await self.stats.aclose()
        await self.recorder.close()
        for provider in self.providers.values():
            await provider.aclose()
        await self.transport.aclose()
        await self.store.close()

    def _record(self, generation: GenerationRecord) -> None:
        self.recorder.record(generation)
        self.metrics.observe(generation)

    # -- ASGI ----------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            handler = self._routes.get((scope["method"], scope["path"]))
            if handler is None:
                handler = self._match_dynamic(scope)
            try:
                await handler(scope, receive, send)
            except TokenmuxError as err:
                await self._send_error(send, err)
            except Exception:
                # A bug of ours, not the client's: logged with its traceback, answered in the API's shape.
                log.exception("unhandled error on %s %s", scope["method"], scope["path"])
                failure = TokenmuxError("internal error in the gateway; the request was not completed")
                # If the response had already started, nothing more can be said.
                with contextlib.suppress(Exception):
                    await self._send_error(send, failure)
            return
        if kind == "lifespan":
            await self._lifespan(receive, send)

    def _match_dynamic(self, scope: Scope) -> Handler:
        path: str = scope["path"]
        if scope["method"] == "GET" and path.startswith("/api/v1/models/") and path.endswith("/endpoints"):
            return self.model_endpoints
        page = self.pages.route(scope["method"], path)
        return page if page is not None else self.not_found

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    log.error("startup failed: %s", exc)
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _send_error(
        self, send: Send, err: TokenmuxError, extra: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        self.metrics.error(err.status)
        headers = err.headers()
        if extra:
            headers = headers + extra
        await send_bytes(send, err.status, encode_error(err), headers)

    async def not_found(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotFound(f"no route {scope['method']} {scope['path']}; the API lives under /api/v1")

    # -- catalog -------------------------------------------------------------------------------

    async def list_models(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send_bytes(send, 200, self._models_body)

    async def list_models_anthropic(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send_bytes(send, 200, self._anthropic_models_body)

    async def model_endpoints(self, scope: Scope, receive: Receive, send: Send) -> None:
        model_id = scope["path"][len("/api/v1/models/") : -len("/endpoints")]
        model = self.catalog.models.get(model_id) or find_model(self.catalog, model_id)
        if model is None:
            raise ModelNotFound(
                f"model {model_id!r} is not in the catalog; GET /api/v1/models lists every model"
            )
        body = model_endpoints_json(
            model, self.catalog, self.configured, self.live_figures, self.stats.tokens_per_day(model.id)
        )
        await send_bytes(send, 200, encode_json(body))

    def live_figures(self, endpoint: Endpoint) -> dict[str, Any]:
        """The measured figures of an endpoint, with its state now: health (cooldown, open circuit) overrides
        what the windows say."""
        live: dict[str, Any] = dict(self.stats.endpoint_figures(endpoint.key))
        if endpoint.provider not in self.configured:
            live["status"] = "not_configured"
            return live
        if self.health.blocked_until(endpoint.key):
            state = self.health.peek(endpoint.key)
            live["status"] = "down" if state is not None and state.circuit_open_until else "cooling_down"
        return live

    # -- generations ---------------------------------------------------------------------------

    async def get_generation(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = await self.keys.authenticate(header(scope, b"authorization"))
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        ids = query.get("id")
        if not ids or not ids[0]:
            raise InvalidRequest("pass the generation id: GET /api/v1/generation?id=gen-...", param="id")
        record = await self.recorder.get_generation(ids[0])
        if record is None or not _may_see(key, record):
            raise NotFound(
                f"no generation {ids[0]!r} for this key; the id is in the X-Generation-Id header of a response",
                code="generation_not_found",
            )
        await send_bytes(send, 200, encode_json({"data": record.to_api()}))

    # -- operations ----------------------------------------------------------------------------

    async def health_check(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send_bytes(send, 200, b'{"status":"ok"}')

    async def ready_check(self, scope: Scope, receive: Receive, send: Send) -> None:
        database = self.ready and await self.store.ping()
        status = 200 if database else 503
        body = {"status": "ready" if database else "not_ready", "database": database}
        await send_bytes(send, status, encode_json(body))

    async def metrics_page(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send_bytes(send, 200, self.metrics.render().encode(), content_type=b"text/plain; version=0.0.4")


def _may_see(key: KeyRecord, record: GenerationRecord) -> bool:
    return key.is_admin or record.key_id == key.id
