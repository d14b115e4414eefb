"""The gateway as an ASGI application: the lifespan starts and stops its services, and every HTTP request
goes through the checks to the route table (``routes.py``). ``build.py`` wires it.

A plain ASGI callable rather than a framework: the request path is a dict lookup, one body read, one JSON
decode, the plan, the upstream call and one JSON encode.
"""

from __future__ import annotations

import logging

from tokenmux.asgi import AsgiApp, Receive, Scope, Send
from tokenmux.server.connections import ConnectionLimits
from tokenmux.server.lifecycle import Lifecycle
from tokenmux.server.parts import Parts

log = logging.getLogger("tokenmux.server")


class Gateway:
    def __init__(self, parts: Parts, lifecycle: Lifecycle, http: AsgiApp) -> None:
        self.parts = parts
        self.lifecycle = lifecycle
        self._http = http

    @property
    def connection_limits(self) -> ConnectionLimits:
        """How the HTTP server bounds client connections (``server/runner.py`` reads it)."""
        gw = self.parts.settings.gateway
        return ConnectionLimits(
            header_timeout_s=gw.header_timeout_s,
            body_timeout_s=gw.body_timeout_s,
            idle_timeout_s=gw.idle_timeout_s,
            # The header check's 431 in the client's protocol first; this bound only stops the parser from
            # buffering a head that is refused anyway (the request line has room too).
            max_head_bytes=gw.max_header_bytes + 16 * 1024,
            max_connections=gw.max_connections,
        )

    def begin_drain(self) -> None:
        """Called by ``runner.DrainingServer`` when it stops taking connections."""
        self.lifecycle.begin_drain()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
            return
        if kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.lifecycle.startup()
                except Exception as exc:
                    log.error("startup failed: %s", exc)
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.lifecycle.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return
