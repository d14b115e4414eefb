"""Client connections under bounds, seen from raw sockets on loopback: silent, trickling and idle clients
are closed at their deadlines, an oversized head is cut off, and idle sockets cannot keep others out."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from gateway_support import HELLO, NANO, sim_config
from tokenmux.server.connections import ConnectionLimits

FAST = {"header_timeout_s": 0.5, "body_timeout_s": 0.5, "idle_timeout_s": 1.0}


def address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


@contextmanager
def connected(url: str) -> Iterator[socket.socket]:
    conn = socket.create_connection(address(url), timeout=10)
    try:
        yield conn
    finally:
        conn.close()


def closed_after(
    conn: socket.socket, trickle: bytes = b"", every_s: float = 0.1, limit_s: float = 8.0
) -> float:
    """Seconds until the server closes ``conn`` (while ``trickle`` is sent a byte at a time); what the
    server sent before closing is ignored."""
    started = time.monotonic()
    conn.settimeout(every_s)
    sent = 0
    while time.monotonic() - started < limit_s:
        if trickle:
            try:
                conn.sendall(trickle[sent % len(trickle) : sent % len(trickle) + 1])
                sent += 1
            except OSError:
                return time.monotonic() - started
        try:
            data = conn.recv(65536)
        except TimeoutError:
            continue
        except OSError:
            return time.monotonic() - started
        if not data:
            return time.monotonic() - started
    raise AssertionError(f"the connection was still open after {limit_s} s")


def head(gateway: Any, length: int) -> bytes:
    return (
        b"POST /api/v1/chat/completions HTTP/1.1\r\nHost: gw\r\n"
        + f"Authorization: Bearer {gateway.key}\r\nContent-Type: application/json\r\n".encode()
        + f"Content-Length: {length}\r\n\r\n".encode()
    )


def test_the_defaults_close_an_idle_or_trickling_connection_within_30_s() -> None:
    limits = ConnectionLimits()
    assert max(limits.header_timeout_s, limits.body_timeout_s, limits.idle_timeout_s) <= 30


def test_a_connection_that_sends_nothing_is_closed(gateway_factory: Any, sim: Any) -> None:
    gw = gateway_factory(sim_config(sim.url, **FAST))
    with connected(gw.url) as conn:
        assert closed_after(conn) < 5  # the header deadline is 0.5 s; the margin is for a busy machine


def test_trickled_headers_are_cut_off_at_the_header_deadline(gateway_factory: Any, sim: Any) -> None:
    gw = gateway_factory(sim_config(sim.url, **FAST))
    with connected(gw.url) as conn:
        conn.sendall(b"GET /health HTTP/1.1\r\n")
        # A header that never ends, a byte every 0.1 s: every byte is on time, the head is not.
        assert closed_after(conn, trickle=b"X-Slow: " + b"a" * 1000) < 5


def test_a_trickled_body_is_cut_off_at_the_body_deadline(gateway_factory: Any, sim: Any) -> None:
    gw = gateway_factory(sim_config(sim.url, **FAST))
    with connected(gw.url) as conn:
        conn.sendall(head(gw, 10_000) + b'{"model": ')
        assert closed_after(conn, trickle=b" ") < 5
    assert sim.requests("openai") == []


def test_a_connection_idle_after_an_answer_is_closed(gateway_factory: Any, sim: Any) -> None:
    gw = gateway_factory(sim_config(sim.url, **FAST))
    with connected(gw.url) as conn:
        conn.sendall(b"GET /health HTTP/1.1\r\nHost: gw\r\n\r\n")
        conn.settimeout(5)
        assert conn.recv(65536).startswith(b"HTTP/1.1 200")
        assert closed_after(conn) < 6  # idle timeout 1 s


def test_a_slow_answer_is_not_cut_off(gateway_factory: Any, sim: Any) -> None:
    """The deadlines are for what the client sends: a request in the gateway takes the time it takes."""
    gw = gateway_factory(sim_config(sim.url, **FAST, attempt_timeout_s=5.0))
    sim.profile("openai", ttft_ms=1500)
    sim.profile("azure", ttft_ms=1500)
    answer = gw.openai().chat.completions.create(model=NANO, messages=HELLO, max_tokens=5)
    assert answer.choices[0].message.content


def test_a_head_larger_than_the_bound_is_refused_before_it_is_buffered(
    gateway_factory: Any, sim: Any
) -> None:
    gw = gateway_factory(sim_config(sim.url, max_header_bytes=1024))
    limit = gw.app.connection_limits.max_head_bytes
    with connected(gw.url) as conn:
        conn.sendall(b"GET /health HTTP/1.1\r\nHost: gw\r\nX-Big: ")
        sent = 0
        try:
            while sent < 10 * limit:
                conn.sendall(b"a" * 4096)
                sent += 4096
        except OSError:
            pass
        conn.settimeout(5)
        answer = b""
        try:
            while chunk := conn.recv(65536):
                answer += chunk
        except OSError:
            pass
    assert answer.startswith(b"HTTP/1.1 431"), answer[:100]  # and the connection closed after it


def test_idle_sockets_make_room_for_a_new_client(gateway_factory: Any, sim: Any) -> None:
    gw = gateway_factory(sim_config(sim.url, max_connections=20))
    idle = [socket.create_connection(address(gw.url), timeout=10) for _ in range(50)]
    try:
        with httpx.Client(base_url=gw.url, timeout=10) as client:
            assert client.get("/health").status_code == 200
        answer = gw.openai().chat.completions.create(model=NANO, messages=HELLO, max_tokens=5)
        assert answer.choices[0].message.content
        table = gw.server.connections
        assert table is not None and table.open <= 20 and table.evicted >= 30
    finally:
        for conn in idle:
            conn.close()


def test_when_every_connection_is_busy_a_new_one_gets_503(gateway_factory: Any, sim: Any) -> None:
    gw = gateway_factory(sim_config(sim.url, max_connections=2, attempt_timeout_s=5.0))
    sim.profile("openai", hang=True)
    sim.profile("azure", hang=True)
    body = b'{"model": "openai/gpt-4.1-nano", "messages": [{"role": "user", "content": "hi"}]}'
    busy = [socket.create_connection(address(gw.url), timeout=10) for _ in range(2)]
    try:
        for conn in busy:
            conn.sendall(head(gw, len(body)) + body)
        time.sleep(0.3)  # both requests reach the (hanging) upstream
        with connected(gw.url) as conn:
            conn.settimeout(5)
            assert conn.recv(65536).startswith(b"HTTP/1.1 503")
    finally:
        for conn in busy:
            conn.close()


@pytest.mark.timeout(120)
def test_a_client_is_served_while_1000_idle_sockets_are_open(gateway: Any) -> None:
    """With the default settings."""
    idle = []
    try:
        for _ in range(1000):
            idle.append(socket.create_connection(address(gateway.url), timeout=10))
        answer = gateway.openai().chat.completions.create(model=NANO, messages=HELLO, max_tokens=5)
        assert answer.choices[0].message.content
    finally:
        for conn in idle:
            conn.close()
