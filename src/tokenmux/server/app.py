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
from typing import Any
from urllib.parse import parse_qs

from tokenmux.catalog.lookup import find_model
from tokenmux.catalog.model import Catalog, Endpoint
from tokenmux.config import Settings
from tokenmux.errors import InvalidRequest, ModelNotFound, NotFound, TokenmuxError
from tokenmux.protocols.openai_chat import (
    ChunkEncoder,
    decode_chat_request,
    encode_error,
    encode_json,
    encode_response,
)
from tokenmux.providers import build_provider
from tokenmux.providers.base import Provider
from tokenmux.providers.transport import AiohttpTransport, Transport
from tokenmux.routing.health import HealthBoard
from tokenmux.routing.router import Candidate, Router
from tokenmux.server.asgi import (
    AsgiOutlet,
    DisconnectWatch,
    Receive,
    Scope,
    Send,
    header,
    read_body,
    send_bytes,
)
from tokenmux.server.auth import KeyRing
from tokenmux.server.catalog_api import empty_live_figures, model_endpoints_json, models_json
from tokenmux.server.metrics import Metrics
from tokenmux.server.relay import Generation, Relay
from tokenmux.store import new_generation_id
from tokenmux.store.base import Store
from tokenmux.store.recorder import Recorder
from tokenmux.store.records import GenerationRecord, KeyRecord

log = logging.getLogger("tokenmux.server")

Handler = Callable[[Scope, Receive, Send], Any]
# Below this body size a prompt's fit costs at most a few ms even when it must be counted.
PLAN_IN_THREAD_BYTES = 256 * 1024


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
        self.transport = parts.transport or AiohttpTransport()
        gw = self.settings.gateway
        self.health = HealthBoard(
            cooldown_s=gw.cooldown_s, circuit_failures=gw.circuit_failures, circuit_open_s=gw.circuit_open_s
        )
        self.providers: dict[str, Provider] = {
            slug: build_provider(cfg, self.transport) for slug, cfg in self.settings.providers.items()
        }
        self.configured = frozenset(self.providers)
        self.router = Router(self.catalog, self.configured, self.health)
        # 100,000 pending records (about 64 MB) ride out a database outage of minutes at full load.
        self.recorder = Recorder(self.store, max_pending=100_000)
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
        self._routes: dict[tuple[str, str], Handler] = {
            ("POST", "/api/v1/chat/completions"): self.chat_completions,
            ("GET", "/api/v1/models"): self.list_models,
            ("GET", "/api/v1/generation"): self.get_generation,
            ("GET", "/health"): self.health_check,
            ("GET", "/ready"): self.ready_check,
            ("GET", "/metrics"): self.metrics_page,
        }
        self.ready = False

    # -- lifecycle -----------------------------------------------------------------------------

    async def startup(self) -> None:
        await self.store.open()
        self.recorder.start()
        self.ready = True

    async def shutdown(self) -> None:
        self.ready = False
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
        return self.not_found

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

    # -- chat ----------------------------------------------------------------------------------

    async def chat_completions(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = await self.keys.authenticate(header(scope, b"authorization"))
        body = await read_body(scope, receive, self.settings.gateway.max_body_bytes)
        request = decode_chat_request(body)
        if len(body) > PLAN_IN_THREAD_BYTES:
            # Deciding the fit of a very long prompt may tokenize it (tens to hundreds of ms): off the loop.
            plan = await asyncio.to_thread(self.router.plan, request)
        else:
            plan = self.router.plan(request)
        gen = Generation(request, new_generation_id(), key.id)
        gen_header = [(b"x-generation-id", gen.id.encode())]
        watch = DisconnectWatch(receive)
        try:
            if request.stream:
                outlet = AsgiOutlet(send, gen_header)
                try:
                    await self.relay.stream(gen, plan, outlet, self._chunk_encoder(gen))
                except TokenmuxError as err:
                    watch.done()
                    await self._send_error(send, err, gen_header)
                    return
                watch.done()
                await outlet.close()
                return
            try:
                served = await self.relay.complete(gen, plan)
            except TokenmuxError as err:
                watch.done()
                await self._send_error(send, err, gen_header)
                return
            out = encode_response(
                served.response,
                generation_id=gen.id,
                model=served.candidate.model.id,
                provider=served.candidate.endpoint.provider,
                usage=served.usage,
                cost=served.cost,
            )
            watch.done()
            await send_bytes(send, 200, out, gen_header)
        except asyncio.CancelledError:
            if not watch.absorb_cancel():
                raise
        finally:
            watch.stop()

    def _chunk_encoder(self, gen: Generation) -> Callable[[Candidate], ChunkEncoder]:
        created = int(gen.started_wall)

        def encoder_for(cand: Candidate) -> ChunkEncoder:
            return ChunkEncoder(
                generation_id=gen.id,
                created=created,
                model=cand.model.id,
                provider=cand.endpoint.provider,
                include_usage=gen.request.include_usage,
            )

        return encoder_for

    # -- catalog -------------------------------------------------------------------------------

    async def list_models(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send_bytes(send, 200, self._models_body)

    async def model_endpoints(self, scope: Scope, receive: Receive, send: Send) -> None:
        model_id = scope["path"][len("/api/v1/models/") : -len("/endpoints")]
        model = self.catalog.models.get(model_id) or find_model(self.catalog, model_id)
        if model is None:
            raise ModelNotFound(
                f"model {model_id!r} is not in the catalog; GET /api/v1/models lists every model"
            )
        body = model_endpoints_json(model, self.catalog, self.configured, self._live_figures, [])
        await send_bytes(send, 200, encode_json(body))

    def _live_figures(self, endpoint: Endpoint) -> dict[str, Any]:
        live = empty_live_figures()
        if endpoint.provider not in self.configured:
            live["status"] = "not_configured"
            return live
        blocked = self.health.blocked_until(endpoint.key)
        state = self.health.peek(endpoint.key)
        if blocked:
            live["status"] = "down" if state and state.circuit_open_until else "cooling_down"
        elif state is None or state.calls == 0:
            live["status"] = "unknown"
        else:
            live["status"] = "up" if state.success >= 0.95 else "degraded"
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
