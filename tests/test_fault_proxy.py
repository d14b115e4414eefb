"""The fault proxy against a small echo server: it forwards, a freeze holds every byte and every close
until restored, a cut closes everything and refuses connections, and it can be driven from any thread,
an event loop's included."""

from __future__ import annotations

import asyncio
import os
import random
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from fault_proxy import FaultProxy
from tokenmux.server.runner import free_port

QUIET_S = 0.5  # how long nothing arriving counts as nothing forwarded; a slip would show in milliseconds
WAIT_S = 10.0  # upper bound on anything that should happen at once; only reached when it never does


class EchoServer(socketserver.ThreadingTCPServer):
    """Echoes every connection; counts them, and can push bytes or hang up on its side of each."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Echo)
        self.lock = threading.Lock()
        self.accepted = 0
        self.received = 0  # bytes
        self.open: set[socket.socket] = set()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def push(self, data: bytes) -> None:
        with self.lock:
            for conn in self.open:
                conn.sendall(data)

    def hang_up(self) -> None:
        with self.lock:
            for conn in self.open:
                conn.shutdown(socket.SHUT_RDWR)


class _Echo(socketserver.BaseRequestHandler):
    server: EchoServer

    def handle(self) -> None:
        conn: socket.socket = self.request
        with self.server.lock:
            self.server.accepted += 1
            self.server.open.add(conn)
        try:
            while data := conn.recv(65536):
                with self.server.lock:
                    self.server.received += len(data)
                conn.sendall(data)
        except OSError:
            pass  # reset by the proxy's cut
        finally:
            with self.server.lock:
                self.server.open.discard(conn)


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def proxy(echo: EchoServer) -> Iterator[FaultProxy]:
    with FaultProxy("127.0.0.1", echo.port) as started:
        yield started


@pytest.fixture
def connect(proxy: FaultProxy) -> Iterator[Callable[[], socket.socket]]:
    opened: list[socket.socket] = []

    def open_one() -> socket.socket:
        conn = socket.create_connection(("127.0.0.1", proxy.url_port), timeout=WAIT_S)
        opened.append(conn)
        return conn

    yield open_one
    for conn in opened:
        conn.close()


def receive(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size and (chunk := conn.recv(size - len(data))):
        data += chunk
    return data


def nothing_arrives(conn: socket.socket) -> bool:
    conn.settimeout(QUIET_S)
    try:
        conn.recv(1)
    except TimeoutError:
        return True
    finally:
        conn.settimeout(WAIT_S)
    return False


def is_closed(conn: socket.socket) -> bool:
    try:
        return conn.recv(1) == b""
    except ConnectionResetError:
        return True


def eventually(check: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + WAIT_S
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_it_forwards_both_ways_a_payload_larger_than_every_buffer(
    connect: Callable[[], socket.socket], echo: EchoServer
) -> None:
    payload = os.urandom(8 * 1024 * 1024)
    conn = connect()
    sender = threading.Thread(target=conn.sendall, args=(payload,))
    sender.start()
    assert receive(conn, len(payload)) == payload
    sender.join()
    assert echo.received == len(payload)


def test_the_url_names_the_proxy_and_keeps_the_rest(proxy: FaultProxy) -> None:
    url = "postgresql://tm:pw@127.0.0.1:5432/test?search_path=s&application_name=x"
    assert proxy.proxied_url(url) == (
        f"postgresql://tm:pw@127.0.0.1:{proxy.url_port}/test?search_path=s&application_name=x"
    )
    assert proxy.proxied_url("redis://localhost/0") == f"redis://127.0.0.1:{proxy.url_port}/0"


def test_a_freeze_holds_an_open_connection_both_ways_until_restore(
    proxy: FaultProxy, connect: Callable[[], socket.socket], echo: EchoServer
) -> None:
    conn = connect()
    conn.sendall(b"a")
    assert receive(conn, 1) == b"a"

    proxy.freeze()
    conn.sendall(b"up")
    echo.push(b"down")
    assert nothing_arrives(conn)
    assert echo.received == 1  # "up" never reached the server

    proxy.restore()
    # The push was already held in the proxy when "up" first reached the server to be echoed.
    assert receive(conn, 6) == b"downup"
    assert eventually(lambda: echo.received == 3)


def test_a_connection_made_while_frozen_is_accepted_and_held_until_restore(
    proxy: FaultProxy, connect: Callable[[], socket.socket], echo: EchoServer
) -> None:
    proxy.freeze()
    conn = connect()  # accepted: a hung server's kernel still completes the handshake
    conn.sendall(b"hello")
    assert nothing_arrives(conn)
    assert echo.accepted == 0

    proxy.restore()
    assert receive(conn, 5) == b"hello"
    assert echo.accepted == 1


def test_a_hang_up_by_the_server_is_held_by_a_freeze_too(
    proxy: FaultProxy, connect: Callable[[], socket.socket], echo: EchoServer
) -> None:
    conn = connect()
    conn.sendall(b"a")
    assert receive(conn, 1) == b"a"

    proxy.freeze()
    echo.hang_up()
    assert nothing_arrives(conn)  # neither bytes nor the close

    proxy.restore()
    assert is_closed(conn)


def test_a_cut_closes_every_connection_and_refuses_new_ones_until_restore(
    proxy: FaultProxy, connect: Callable[[], socket.socket], echo: EchoServer
) -> None:
    conns = [connect() for _ in range(3)]
    for conn in conns:
        conn.sendall(b"a")
        assert receive(conn, 1) == b"a"
    port = proxy.url_port

    proxy.cut()
    assert all(is_closed(conn) for conn in conns)
    assert eventually(lambda: not echo.open)  # the server's side is closed too
    with pytest.raises(ConnectionRefusedError):
        connect()

    proxy.restore()
    assert proxy.url_port == port
    conn = connect()
    conn.sendall(b"again")
    assert receive(conn, 5) == b"again"


def test_a_cut_during_a_freeze_closes_the_held_connections(
    proxy: FaultProxy, connect: Callable[[], socket.socket], echo: EchoServer
) -> None:
    forwarded = connect()
    forwarded.sendall(b"a")
    assert receive(forwarded, 1) == b"a"
    proxy.freeze()
    held = connect()
    held.sendall(b"b")

    proxy.cut()
    assert is_closed(forwarded) and is_closed(held)
    assert echo.accepted == 1 and echo.received == 1


def test_a_target_that_is_down_closes_the_client_connection() -> None:
    with (
        FaultProxy("127.0.0.1", free_port()) as proxy,  # nothing listens there
        socket.create_connection(("127.0.0.1", proxy.url_port), timeout=WAIT_S) as conn,
    ):
        assert is_closed(conn)


def test_state_changes_from_many_threads_at_once_leave_the_last_one_in_force(
    proxy: FaultProxy, connect: Callable[[], socket.socket]
) -> None:
    def switch(seed: int) -> None:
        choices = random.Random(seed)
        for _ in range(30):
            choices.choice((proxy.freeze, proxy.cut, proxy.restore))()

    threads = [threading.Thread(target=switch, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    proxy.cut()
    with pytest.raises(ConnectionRefusedError):
        connect()
    proxy.restore()
    conn = connect()
    conn.sendall(b"ok")
    assert receive(conn, 2) == b"ok"


async def test_it_can_be_driven_from_inside_a_running_event_loop(proxy: FaultProxy, echo: EchoServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.url_port)
    try:
        writer.write(b"one")
        assert await asyncio.wait_for(reader.readexactly(3), WAIT_S) == b"one"

        proxy.freeze()
        writer.write(b"two")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.readexactly(3), QUIET_S)

        proxy.restore()
        assert await asyncio.wait_for(reader.readexactly(3), WAIT_S) == b"two"
        proxy.cut()
        assert await asyncio.wait_for(reader.read(), WAIT_S) == b""
    finally:
        writer.close()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", proxy.url_port)


def test_stop_closes_connections_and_the_port_and_may_be_called_twice(echo: EchoServer) -> None:
    proxy = FaultProxy("127.0.0.1", echo.port).start()
    with socket.create_connection(("127.0.0.1", proxy.url_port), timeout=WAIT_S) as conn:
        proxy.freeze()
        proxy.stop()
        proxy.stop()
        assert is_closed(conn)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", proxy.url_port), timeout=WAIT_S)
    with pytest.raises(RuntimeError, match="not running"):
        proxy.restore()


def test_it_must_be_started_once_before_use(echo: EchoServer) -> None:
    proxy = FaultProxy("127.0.0.1", echo.port)
    with pytest.raises(RuntimeError, match="not running"):
        proxy.freeze()
    with pytest.raises(RuntimeError, match="not started"):
        _ = proxy.url_port
    with proxy, pytest.raises(RuntimeError, match="already started"):
        proxy.start()
