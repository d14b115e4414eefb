"""Running an ASGI app on a loopback port in a background thread (demo, tests, benchmarks): the gateway, the
provider simulator and test apps alike.

Each server gets its own thread and event loop, so the simulator, the gateway and a load generator do not
share a loop, as they would not in production. uvicorn installs no signal handlers outside the main thread.
"""

from __future__ import annotations

import functools
import math
import socket
import threading
import time
from typing import Any, Literal

import uvicorn

from tokenmux.server.connections import ConnectionLimits, ConnectionTable, GuardedHttpTools

Lifespan = Literal["auto", "on", "off"]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def uvicorn_config(
    app: Any,
    host: str,
    port: int,
    *,
    lifespan: Lifespan = "on",
    log_level: str = "warning",
    graceful_timeout_s: float = 30,
) -> uvicorn.Config:
    """uvicorn's settings for ``app``. An app that states ``connection_limits`` (the gateway) is served by
    ``GuardedHttpTools`` under them; others (the simulator, test apps) by uvicorn's own protocol."""
    limits: ConnectionLimits | None = getattr(app, "connection_limits", None)
    http: Any = "httptools"
    keep_alive_s = 75  # above the idle timeouts of common load balancers
    if limits is not None:
        http = functools.partial(GuardedHttpTools, table=ConnectionTable(limits))
        keep_alive_s = max(1, math.ceil(limits.idle_timeout_s))
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http=http,
        lifespan=lifespan,
        # No WebSocket routes: "auto" would import the websockets package (17 modules, ~1 MB resident)
        # whenever some other package has installed it.
        ws="none",
        access_log=False,
        # Behind a load balancer, forwarded headers are the operator's to trust explicitly; and no Server
        # header, which also saves work on every response.
        proxy_headers=False,
        server_header=False,
        log_level=log_level,
        timeout_graceful_shutdown=int(max(1, graceful_timeout_s)),
        timeout_keep_alive=keep_alive_s,
    )


class DrainingServer(uvicorn.Server):
    """uvicorn's server, telling an app that drains (the gateway's ``begin_drain``) when it stops taking
    connections (SIGTERM, Ctrl-C, ``should_exit``), before it waits for the requests running."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        begin_drain = getattr(self.config.app, "begin_drain", None)
        if begin_drain is not None:
            begin_drain()
        await super().shutdown(sockets)


class BackgroundServer:
    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        lifespan: Lifespan = "on",
        graceful_timeout_s: float = 30,
    ) -> None:
        self.app = app
        self.host = host
        self.port = port or free_port(host)
        self.server = DrainingServer(
            uvicorn_config(
                app, self.host, self.port, lifespan=lifespan, graceful_timeout_s=graceful_timeout_s
            )
        )
        # The gateway's bounded connections (None for apps served by uvicorn's own protocol).
        self.connections: ConnectionTable | None = getattr(self.server.config.http, "keywords", {}).get(
            "table"
        )
        self._thread = threading.Thread(target=self.server.run, name=f"server-{self.port}", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout_s: float = 20.0) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"the server on port {self.port} failed to start")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server on port {self.port} did not start within {timeout_s} s")
            time.sleep(0.01)
        return self

    def stop(self, timeout_s: float = 30.0) -> None:
        self.server.should_exit = True
        self._thread.join(timeout_s)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
