"""The gateway as an ASGI application: routes, and the wiring of catalog, routing, providers and store.

A plain ASGI callable rather than a framework: the request path is a dict lookup, one body read, one JSON
decode, the plan, the upstream call and one JSON encode.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from tokenmux.asgi import (
    Receive,
    Scope,
    Send,
    header,
    send_bytes,
)
from tokenmux.attempts import Attempts
from tokenmux.catalog.model import Catalog, Endpoint, Model
from tokenmux.config import Settings
from tokenmux.errors import InvalidRequest, ModelNotFound, NotFound, StoreUnavailable, TokenmuxError
from tokenmux.json_codec import encode_json
from tokenmux.limits.key_limits import KeyLimits
from tokenmux.limits.ledger import Ledger, LocalLedger, spend_from_log
from tokenmux.limits.redis_ledger import RedisLedger
from tokenmux.protocols import anthropic_messages
from tokenmux.protocols.anthropic_messages import models_json as anthropic_models_json
from tokenmux.protocols.openai_chat import encode_error
from tokenmux.providers import build_provider
from tokenmux.providers.base import Provider
from tokenmux.providers.http1 import Http1Transport
from tokenmux.providers.transport import AiohttpTransport, Transport
from tokenmux.redis.link import RedisLink
from tokenmux.routing.health import HealthBoard
from tokenmux.routing.router import Router
from tokenmux.routing.shared_health import SharedHealth
from tokenmux.server.anthropic_inbound import AnthropicMessages
from tokenmux.server.auth import KeyRing
from tokenmux.server.auth_failures import AuthFailures, AuthGuard
from tokenmux.server.catalog_api import model_endpoints_json, model_json, models_json
from tokenmux.server.chat import ChatRoute
from tokenmux.server.connections import ConnectionLimits
from tokenmux.server.cors import CorsMiddleware, CorsPolicy
from tokenmux.server.count_tokens import CountTokensRoute
from tokenmux.server.gemini_inbound import GEMINI_PREFIX, GeminiRoutes
from tokenmux.server.header_check import HeaderCheck
from tokenmux.server.key_api import KEYS_PREFIX, KeyApi
from tokenmux.server.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from tokenmux.server.metrics import Metrics
from tokenmux.server.openai_inbound import OpenAIChat
from tokenmux.server.pages_source import GatewayPages
from tokenmux.server.responses_inbound import OpenAIResponses
from tokenmux.stats import Stats
from tokenmux.store.base import Store
from tokenmux.store.contents import ContentKeeper
from tokenmux.store.journal import Journal
from tokenmux.store.recorder import Recorder
from tokenmux.store.records import GenerationRecord, KeyRecord
from tokenmux.store.spool import Spool
from tokenmux.web import WebPages

log = logging.getLogger("tokenmux.server")

Handler = Callable[[Scope, Receive, Send], Any]
_MODELS_PREFIX = "/api/v1/models/"
_ANTHROPIC_MODELS_PREFIX = "/api/anthropic/v1/models/"


@dataclass(slots=True)
class Parts:
    """Everything the gateway is wired from; tests build it with fakes where they need to."""

    settings: Settings
    catalog: Catalog
    store: Store
    transport: Transport | None = None
    ledger: Ledger | None = None  # default: this process's own books


class Gateway:
    def __init__(self, parts: Parts) -> None:
        self.settings = parts.settings
        self.catalog = parts.catalog
        self.store = parts.store
        gw = self.settings.gateway
        # For sample code on the pages: configured, or set by whoever knows where this gateway listens.
        self.public_url = gw.public_url.rstrip("/")
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
        # Records the database cannot take in time go to disk (a full queue, a shutdown during an outage)
        # and back into the queue at the next start.
        # Every record is journaled there too before its response ends, so a crash loses none.
        spool_dir = Path(gw.spool_dir)
        self.recorder = Recorder(
            self.store, max_pending=100_000, spool=Spool(spool_dir), journal=Journal(spool_dir)
        )
        self.recorder.add_listener(self.stats.batch_written)
        self.metrics = Metrics(self.recorder)
        self.attempts = Attempts(
            self.providers,
            self.health,
            self._record,
            deadline_s=gw.request_timeout_s,
            journal_stream=self.recorder.stream_started,
        )
        self.auth_failures = AuthFailures(limit=gw.auth_failure_limit, block_s=gw.auth_block_s)
        self.metrics.auth_failures = self.auth_failures.by_reason
        self.keys = KeyRing(self.store, admin_key=gw.admin_key or None, failures=self.auth_failures)
        # With --redis, replicas share limits and endpoint health; without, each process keeps its own.
        url = self.settings.redis_url
        self.redis_link = RedisLink(url, timeout_s=gw.redis_timeout_s) if url else None
        self.shared_health = SharedHealth(self.redis_link, self.health) if self.redis_link else None
        spend = spend_from_log(self.store)
        self.ledger = parts.ledger or (
            RedisLedger(self.redis_link, spend, lease_s=gw.redis_lease_s)
            if self.redis_link
            else LocalLedger(spend)
        )
        if self.redis_link is not None:
            self.metrics.shared = self._shared_gauges
        self._limits: dict[str, tuple[KeyRecord, KeyLimits]] = {}
        self.key_api = KeyApi(self)
        self.contents = ContentKeeper(self.store)
        self._models_body = encode_json(models_json(self.catalog, self.configured))
        self._anthropic_models_body = anthropic_models_json(self.catalog)
        self._routes: dict[tuple[str, str], Handler] = {
            ("POST", "/api/v1/chat/completions"): ChatRoute(self, OpenAIChat()),
            ("POST", "/api/anthropic/v1/messages"): ChatRoute(self, AnthropicMessages()),
            ("POST", "/api/anthropic/v1/messages/count_tokens"): CountTokensRoute(self),
            ("POST", "/api/v1/responses"): ChatRoute(self, OpenAIResponses()),
            ("GET", "/api/anthropic/v1/models"): self.list_models_anthropic,
            ("GET", "/api/v1/models"): self.list_models,
            ("GET", "/api/v1/generation"): self.get_generation,
            ("GET", "/api/v1/key"): self.key_api.current_key,
            ("GET", "/api/v1/keys"): self.key_api.list_keys,
            ("POST", "/api/v1/keys"): self.key_api.create_key,
            ("GET", "/api/v1/usage"): self.key_api.usage,
            ("GET", "/health"): self.health_check,
            ("GET", "/ready"): self.ready_check,
            ("GET", "/metrics"): self.metrics_page,
        }
        self.gemini = GeminiRoutes(self)
        self.pages = WebPages(GatewayPages(self))
        self.ready = False
        self._opening: asyncio.Task[None] | None = None
        # Every HTTP request passes the header check, then the guard against key guessing, then CORS when
        # configured, then the routes.
        cors = CorsPolicy.from_settings(gw.cors)
        routes: Handler = self._dispatch if cors is None else CorsMiddleware(self._dispatch, cors)
        routes = AuthGuard(routes, self.auth_failures)
        self._http: Handler = HeaderCheck(routes, max_bytes=gw.max_header_bytes, max_count=gw.max_headers)

    @property
    def connection_limits(self) -> ConnectionLimits:
        """How the HTTP server bounds client connections (``server/runner.py`` reads it)."""
        gw = self.settings.gateway
        return ConnectionLimits(
            header_timeout_s=gw.header_timeout_s,
            body_timeout_s=gw.body_timeout_s,
            idle_timeout_s=gw.idle_timeout_s,
            # The header check's 431 in the client's protocol first; this bound only stops the parser from
            # buffering a head that is refused anyway (the request line has room too).
            max_head_bytes=gw.max_header_bytes + 16 * 1024,
            max_connections=gw.max_connections,
        )

    # -- lifecycle -----------------------------------------------------------------------------

    async def startup(self) -> None:
        try:
            await self.store.open()
        except StoreUnavailable as exc:
            # Serve anyway: keys seen before are unknown yet (503 until the database answers), records
            # wait in memory, and the database is opened as soon as it answers.
            log.warning("the database is unavailable (%s); serving while retrying", exc)
            self._opening = asyncio.create_task(self._open_when_back(), name="tokenmux-open-store")
        else:
            await self._start_with_store()
        await self.ledger.start()
        await self.contents.start()
        if self.shared_health is not None:
            await self.shared_health.start()
        self.ready = True

    async def _start_with_store(self) -> None:
        self.recorder.start()
        await self.stats.start()

    async def _open_when_back(self) -> None:
        while True:
            await asyncio.sleep(2.0)
            try:
                await self.store.open()
            except StoreUnavailable:
                continue
            log.info("the database answers again; writing the request records kept meanwhile")
            await self._start_with_store()
            return

    async def shutdown(self) -> None:
        self.ready = False
        if self._opening is not None and not self._opening.done():
            self._opening.cancel()
        await self.stats.aclose()
        if self.shared_health is not None:
            await self.shared_health.close()
        await self.ledger.close()
        await self.contents.close()
        if self.redis_link is not None:
            await self.redis_link.aclose()
        await self.recorder.close()
        for provider in self.providers.values():
            await provider.aclose()
        await self.transport.aclose()
        await self.store.close()

    def _record(self, generation: GenerationRecord) -> asyncio.Future[None] | None:
        self.metrics.observe(generation)
        return self.recorder.record(generation)

    def _shared_gauges(self) -> dict[str, int]:
        link = self.redis_link
        assert link is not None
        ledger = self.ledger
        pending = ledger.pending_settlements if isinstance(ledger, RedisLedger) else 0
        return {"redis_up": int(link.up), "redis_failures": link.failures, "settlements_pending": pending}

    # -- keys ----------------------------------------------------------------------------------------

    def limits_of(self, key: KeyRecord) -> KeyLimits:
        """The key's limits, worked out once per record read from the database."""
        cached = self._limits.get(key.id)
        if cached is not None and cached[0] is key:
            return cached[1]
        limits = KeyLimits.of(key)
        if len(self._limits) > 100_000:
            self._limits.clear()
        self._limits[key.id] = (key, limits)
        return limits

    def key_changed(self, key_id: str) -> None:
        """A key was updated or revoked here: no cached copy may outlive the change in this process
        (other replicas read it again within the key cache's few seconds)."""
        self.keys.forget()
        self._limits.pop(key_id, None)
        self.ledger.forget(key_id)

    # -- ASGI ----------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
            return
        if kind == "lifespan":
            await self._lifespan(receive, send)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
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

    def _match_dynamic(self, scope: Scope) -> Handler:
        path: str = scope["path"]
        if scope["method"] == "GET" and path.startswith(_MODELS_PREFIX):
            return self.model_endpoints if path.endswith("/endpoints") else self.get_model
        if scope["method"] == "GET" and path.startswith(_ANTHROPIC_MODELS_PREFIX):
            return self.get_model_anthropic
        if path.startswith(GEMINI_PREFIX):
            return self.gemini
        if path.startswith(KEYS_PREFIX) and len(path) > len(KEYS_PREFIX):
            return self.key_api.key_route
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

    async def get_model(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``GET /api/v1/models/{id}``: one model as an OpenAI model object; any name the model answers
        to finds it (the id may hold a slash), and the answer carries the catalog id."""
        model = self.router.resolve(scope["path"][len(_MODELS_PREFIX) :])[0]
        await send_bytes(send, 200, encode_json(model_json(model, self.configured)))

    async def get_model_anthropic(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``GET /api/anthropic/v1/models/{id}``: one model as an Anthropic model object, errors in
        Anthropic's shape."""
        name = scope["path"][len(_ANTHROPIC_MODELS_PREFIX) :]
        try:
            model = self.router.resolve(name)[0]
            if not _offered_through(model, "anthropic"):
                raise ModelNotFound(
                    f"model {model.id!r} is not offered through the Anthropic protocol; "
                    "GET /api/anthropic/v1/models lists the models that are"
                )
        except TokenmuxError as err:
            self.metrics.error(err.status)
            await send_bytes(send, err.status, anthropic_messages.encode_error(err), err.headers())
            return
        await send_bytes(send, 200, encode_json(anthropic_messages.model_object(model)))

    async def model_endpoints(self, scope: Scope, receive: Receive, send: Send) -> None:
        model = self.router.resolve(scope["path"][len(_MODELS_PREFIX) : -len("/endpoints")])[0]
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
        """503 until started and once stopping; 200 while serving, saying which dependency is down.

        A database or Redis outage is "degraded", not "not ready": requests are still served (records
        wait in the recorder, limits fall back to this replica's books), so taking every replica out of a
        load balancer for it would turn a partial outage into a full one."""
        database = await self.store.ping()
        redis = await self.redis_link.ping() if self.redis_link is not None else None
        if not self.ready:
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
        await send_bytes(send, 200, self.metrics.render(), content_type=METRICS_CONTENT_TYPE)


def _offered_through(model: Model, protocol: str) -> bool:
    """Whether a chat protocol reaches the model (an embedding model is reached by none)."""
    return not model.embedding and any(protocol in e.protocols for e in model.endpoints)


def _may_see(key: KeyRecord, record: GenerationRecord) -> bool:
    return key.is_admin or record.key_id == key.id
