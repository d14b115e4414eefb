"""Running the simulator: blocking (``run``, for ``tokenmux simulate``) or inside a caller's event loop
(``serve``). On a thread of its own (the demo, the tests) it runs like any ASGI app, with
``server.runner.BackgroundServer``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn

from tokenmux.simulator.app import SimulatorApp, create_app

log = logging.getLogger("tokenmux.simulator")

__all__ = ["create_app", "run", "serve"]


_BACKLOG = 2048  # the benchmark opens many connections at once


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket listening on ``host:port`` (IPv4 or IPv6, as the host says); port 0 picks a free one."""
    family = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
    return socket.create_server((host, port), family=family, backlog=_BACKLOG)


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signals to whoever owns the event loop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(
    host: str,
    port: int,
    *,
    seed: int = 0,
    profiles: dict[str, Any] | None = None,
    ready: asyncio.Event | None = None,
    sock: socket.socket | None = None,
    app: SimulatorApp | None = None,
) -> None:
    """Serve the simulator until cancelled; ``ready`` is set once it accepts connections.

    ``sock``, a bound socket, replaces ``host``/``port`` (bind port 0 to get a free port); ``app`` serves
    an app the caller already made, to keep a handle on it. On cancellation, requests still in progress
    are dropped and the server stops at once."""
    if app is None:
        app = create_app(seed=seed, profiles=profiles)
    if sock is None:
        sock = listening_socket(host, port)
    sock.listen(_BACKLOG)
    config = uvicorn.Config(
        app,
        http="httptools",
        lifespan="off",
        access_log=False,
        log_config=None,
        proxy_headers=False,
        server_header=False,
        timeout_keep_alive=30,
        backlog=_BACKLOG,
    )
    server = _EmbeddedServer(config)
    bound = sock.getsockname()
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                await task  # raises why it did not start
                raise RuntimeError(f"the simulator did not start on {bound[0]}:{bound[1]}")
            await asyncio.sleep(0.002)
        log.info("simulator listening on http://%s:%d", bound[0], bound[1])
        if ready is not None:
            ready.set()
        await asyncio.shield(task)
    finally:
        if not task.done():
            app.abort_inflight()
            server.should_exit = True
            await asyncio.shield(task)
        sock.close()


def run(host: str, port: int, *, seed: int = 0, profiles: dict[str, Any] | None = None) -> None:
    """Serve the simulator until interrupted (Ctrl-C or SIGTERM); validates ``profiles`` before binding."""
    app = create_app(seed=seed, profiles=profiles)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s")

    async def main() -> None:
        current = asyncio.current_task()
        assert current is not None
        with contextlib.suppress(NotImplementedError):  # no add_signal_handler on Windows
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, current.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await serve(host, port, app=app)

    with contextlib.suppress(KeyboardInterrupt), asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(main())


def _loop_factory() -> Any:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency where it builds
        return None
    return uvloop.new_event_loop
