"""A TCP proxy that fails on command, to test code against outages of a real server that tests must never
stop (the machine's PostgreSQL or Redis).

    with FaultProxy("127.0.0.1", 5432) as proxy:
        url = proxy.proxied_url("postgresql://postgres@127.0.0.1:5432/test")
        proxy.freeze()   # a hung server: connections stay open, no byte moves, new ones are held
        proxy.cut()      # a stopped server: every connection closed, new ones refused
        proxy.restore()  # forwarding again, on the same port

The proxy runs its own event loop on a thread of its own, so plain tests and async tests (whose loop may
be blocked in the code under test) can drive it alike. Every state change is made on that loop and is in
force when the call returns, whichever thread called.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
import threading
from collections.abc import Coroutine
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")
Mode = Literal["forward", "freeze", "cut"]

_CHUNK = 65536
_CALL_TIMEOUT_S = 10.0  # a state change is a few callbacks on an idle loop; more means the loop is stuck


class FaultProxy:
    """Forwards 127.0.0.1:``url_port`` to ``target_host``:``target_port`` until told to fail."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._port = 0
        self._mode: Mode = "forward"
        # asyncio's locks and events bind to the loop that first waits on them: the proxy's.
        self._unfrozen = asyncio.Event()  # set unless frozen
        self._unfrozen.set()
        self._changing = asyncio.Lock()  # state changes take effect one by one, in the order they came
        self._listener: socket.socket | None = None
        self._sessions: dict[asyncio.Task[None], socket.socket] = {}  # one per client connection
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lifecycle = threading.Lock()  # start() and stop() from several threads at once

    # -- control, from any thread ---------------------------------------------------------------------

    def start(self) -> FaultProxy:
        with self._lifecycle:
            if self._thread is not None:
                raise RuntimeError("the proxy was already started")
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self._run_loop, name="fault-proxy", daemon=True)
            self._thread.start()
            self._call(self._set_mode("forward"))
        return self

    def stop(self) -> None:
        """Close every connection and the listening port, and end the thread. Safe to call twice."""
        with self._lifecycle:
            loop, thread = self._loop, self._thread
            if loop is None or thread is None or loop.is_closed():
                return
            self._call(self._set_mode("cut"))
            loop.call_soon_threadsafe(loop.stop)
            thread.join()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url_port(self) -> int:
        """The port to connect to instead of the target's; it stays the same through cuts."""
        if not self._port:
            raise RuntimeError("the proxy is not started")
        return self._port

    def proxied_url(self, url: str) -> str:
        """``url`` with its host and port replaced by the proxy's (user, path and query kept)."""
        parts = urlsplit(url)
        userinfo, at, _ = parts.netloc.rpartition("@")
        return parts._replace(netloc=f"{userinfo}{at}127.0.0.1:{self.url_port}").geturl()

    def freeze(self) -> None:
        """A hung server: open connections stay open but no byte moves either way, and new connections
        are accepted but not forwarded. ``restore()`` lets them all go on where they stopped."""
        self._call(self._set_mode("freeze"))

    def cut(self) -> None:
        """A stopped server: every connection is closed and new ones are refused."""
        self._call(self._set_mode("cut"))

    def restore(self) -> None:
        """Forward again: new connections, and any held by a freeze."""
        self._call(self._set_mode("forward"))

    def _call(self, work: Coroutine[Any, Any, T]) -> T:
        loop = self._loop
        if loop is None or loop.is_closed():
            work.close()
            raise RuntimeError("the proxy is not running (call start() or use it as a context manager)")
        if self._thread is threading.current_thread():
            work.close()
            raise RuntimeError("the proxy cannot be controlled from its own thread")
        future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(work, loop)
        return future.result(_CALL_TIMEOUT_S)

    # -- the proxy's own thread -----------------------------------------------------------------------

    def _run_loop(self) -> None:
        loop = self._loop
        assert loop is not None
        try:
            loop.run_forever()
        finally:
            loop.close()

    async def _set_mode(self, mode: Mode) -> None:
        # Calls from several threads arrive as tasks; without the lock a change could begin while a cut
        # is still closing connections.
        async with self._changing:
            self._mode = mode
            if mode == "freeze":
                self._unfrozen.clear()
            else:
                self._unfrozen.set()  # wakes held connections: they go on, or see the cut and end
            if mode == "cut":
                await self._close_everything()
            else:
                self._listen()

    def _listen(self) -> None:
        if self._listener is not None:
            return
        # The first time on a free port, then on that same one, so that the code under test finds its
        # server again where it left it.
        listener = socket.create_server(("127.0.0.1", self._port))
        listener.setblocking(False)
        self._port = listener.getsockname()[1]
        asyncio.get_running_loop().add_reader(listener, self._take_connections)
        self._listener = listener

    def _take_connections(self) -> None:
        """Take every connection waiting on the listening socket, in one step of the loop. (asyncio's
        own servers take them over several steps, and one caught in between by a cut is left open.)"""
        assert self._listener is not None
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:  # none waiting, mostly
                return
            conn.setblocking(False)
            session = asyncio.get_running_loop().create_task(self._serve(conn))
            self._sessions[session] = conn
            session.add_done_callback(self._sessions.pop)

    async def _close_everything(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            # Not listening at all, so connecting is refused at once, as with a stopped server.
            asyncio.get_running_loop().remove_reader(listener)
            listener.close()
        sessions = dict(self._sessions)
        for session in sessions:
            session.cancel()
        await asyncio.gather(*sessions, return_exceptions=True)
        for conn in sessions.values():
            conn.close()  # a session cancelled before its first step never took charge of its socket

    async def _wait_out_freeze(self) -> bool:
        """True to go on forwarding, False once cut. When it returns there has been no await since the
        mode was checked, so a caller acting at once cannot slip anything through a freeze or a cut."""
        while self._mode == "freeze":
            await self._unfrozen.wait()
        return self._mode == "forward"

    async def _serve(self, conn: socket.socket) -> None:
        writers: list[asyncio.StreamWriter] = []
        try:
            client_reader, client_writer = await asyncio.open_connection(sock=conn)
            writers.append(client_writer)
            # A connection made during a freeze waits here unanswered, as with a hung server.
            if not await self._wait_out_freeze():
                return
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
            writers.append(upstream_writer)
            await asyncio.gather(
                self._pump(client_reader, upstream_writer), self._pump(upstream_reader, client_writer)
            )
        except OSError:
            pass  # the target is down (the client sees its connection closed), or the client went away
        finally:
            for writer in writers:
                if self._mode == "cut":
                    writer.transport.abort()  # at once, what is buffered included: the server is gone
                else:
                    writer.close()
            if not writers:
                conn.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy one direction until it ends, then close the other side, which ends the reverse pump."""
        try:
            while True:
                try:
                    data = await reader.read(_CHUNK)
                except OSError:
                    data = b""  # a reset is passed on as a close
                # An end of stream waits out a freeze too: a hung server closes nothing.
                if not await self._wait_out_freeze() or not data:
                    return
                writer.write(data)
                try:
                    await writer.drain()
                except OSError:
                    return  # the receiving side is gone
        finally:
            writer.close()
