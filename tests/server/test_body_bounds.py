"""Request bodies under bounds, seen from raw sockets: a request refused before its body is read leaves the
connection usable, bodies in flight share one budget (503 in the route's protocol when it is full), and a
pathological or large body is refused or decoded without holding up other clients."""

from __future__ import annotations

import base64
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from gateway_support import HELLO, NANO, scrape, sim_config
from tokenmux.server.connections import MAX_SKIPPED_BODY

CHAT = "/api/v1/chat/completions"
MESSAGES = "/api/anthropic/v1/messages"


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


def head(path: str, key: str, length: int) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {key}\r\n".encode()
        + f"x-api-key: {key}\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n".encode()
    )


def read_response(conn: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length body, read from ``conn``."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        assert chunk, f"the connection closed after {data!r}"
        data += chunk
    raw_head, _, rest = data.partition(b"\r\n\r\n")
    lines = raw_head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = conn.recv(65536)
        assert chunk, "the connection closed within a response body"
        rest += chunk
    assert len(rest) == length, f"more than one response arrived: {rest[length:]!r}"
    return status, headers, rest


def held_soon(app: Any, size: int) -> None:
    """Wait until the gateway holds ``size`` bytes of bodies (a request's head is in and authenticated)."""
    deadline = time.monotonic() + 10
    while app.parts.bodies.in_use < size:
        assert time.monotonic() < deadline, f"{app.parts.bodies.in_use} bytes held, not {size}"
        time.sleep(0.01)


def chat_body(size: int) -> bytes:
    """A valid chat request of about ``size`` bytes (one long message)."""
    filler = "word " * (size // 5)
    return json.dumps(
        {"model": NANO, "messages": [{"role": "user", "content": filler}], "max_tokens": 5}
    ).encode()


# -- refused before the body is read ---------------------------------------------------------------------


@pytest.mark.parametrize("path", [CHAT, MESSAGES])
def test_a_request_refused_before_its_body_leaves_the_connection_usable(gateway: Any, path: str) -> None:
    """The answer comes before the body is sent; the body sent afterwards (within what is skipped) is
    read as that request's body, never as the next request; the next request on the connection is
    answered once."""
    body = chat_body(200_000)
    assert len(body) <= MAX_SKIPPED_BODY
    with connected(gateway.url) as conn:
        conn.sendall(head(path, "sk-not-a-key-of-this-gateway", len(body)))
        status, _, _ = read_response(conn)  # no body sent yet
        assert status == 401
        conn.sendall(body)
        conn.sendall(b"GET /health HTTP/1.1\r\nHost: gw\r\n\r\n")
        status, _, answer = read_response(conn)
        assert (status, answer) == (200, b'{"status":"ok"}')
        conn.sendall(b"GET /health HTTP/1.1\r\nHost: gw\r\n\r\n")
        assert read_response(conn)[0] == 200


def test_a_connection_whose_large_unread_body_would_follow_is_closed_after_the_answer(gateway: Any) -> None:
    """Reading 30 MB only to drop them would cost what the answer saved: the answer, then the close."""
    with connected(gateway.url) as conn:
        conn.sendall(head(CHAT, "sk-not-a-key-of-this-gateway", 30_000_000) + b'{"model": ')
        status, _, _ = read_response(conn)
        assert status == 401
        conn.settimeout(5)
        try:
            rest = conn.recv(65536)
        except ConnectionResetError:
            rest = b""
        assert rest == b""  # closed, nothing more said


# -- the budget of bodies in flight -----------------------------------------------------------------------


def test_bodies_over_the_budget_wait_then_get_503_in_the_routes_protocol(
    gateway_factory: Any, sim: Any
) -> None:
    gw = gateway_factory(
        sim_config(sim.url, max_body_bytes=600_000, body_budget_bytes=1_000_000, body_wait_s=0.3)
    )
    with connected(gw.url) as holder:
        # Claimed by its Content-Length as soon as the head is in: 600 kB of the 1 MB budget.
        holder.sendall(head(CHAT, gw.key, 600_000) + b'{"model": ')
        held_soon(gw.app, 600_000)
        with connected(gw.url) as conn:
            conn.sendall(head(CHAT, gw.key, 500_000))
            status, headers, answer = read_response(conn)
            assert status == 503 and headers["retry-after"] == "1"
            assert json.loads(answer)["error"]["code"] == "gateway_busy"
        with connected(gw.url) as conn:
            conn.sendall(head(MESSAGES, gw.key, 500_000))
            status, _, answer = read_response(conn)
            assert status == 503 and json.loads(answer)["type"] == "error"  # Anthropic's shape
        # /metrics shows the budget in use and the requests it refused.
        samples = scrape(gw.url)
        assert samples[("tokenmux_request_bodies", (("gauge", "in_use_bytes"),))] == 600_000
        assert samples[("tokenmux_request_bodies", (("gauge", "limit_bytes"),))] == 1_000_000
        assert samples[("tokenmux_request_bodies", (("gauge", "waiting"),))] == 0
        assert samples[("tokenmux_request_bodies_refused_total", ())] == 2
        # A body that fits beside the held one is served meanwhile.
        answer = gw.openai().chat.completions.create(model=NANO, messages=HELLO, max_tokens=5)
        assert answer.choices[0].message.content
    # The held body's connection closed: its claim is released, a large body fits again.
    body = chat_body(550_000)
    r = httpx.post(f"{gw.url}{CHAT}", content=body, headers={"Authorization": f"Bearer {gw.key}"}, timeout=20)
    assert r.status_code == 200, r.text
    assert gw.app.parts.bodies.in_use == 0


def test_a_body_that_waits_for_room_is_served_when_room_is_made(gateway_factory: Any, sim: Any) -> None:
    gw = gateway_factory(
        sim_config(sim.url, max_body_bytes=600_000, body_budget_bytes=1_000_000, body_wait_s=10)
    )
    body = chat_body(550_000)
    results: list[int] = []
    with connected(gw.url) as holder:
        holder.sendall(head(CHAT, gw.key, len(body)))
        held_soon(gw.app, len(body))
        waiting = threading.Thread(
            target=lambda: results.append(
                httpx.post(
                    f"{gw.url}{CHAT}", content=body, headers={"Authorization": f"Bearer {gw.key}"}, timeout=30
                ).status_code
            )
        )
        waiting.start()
        holder.sendall(body)  # the held request completes, and releases its claim
        assert read_response(holder)[0] == 200
    waiting.join(30)
    assert results == [200]


# -- pathological and large bodies ------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [b"[]," * 1000, b"[" * 3000])
def test_a_pathological_body_is_refused_as_it_arrives(gateway: Any, shape: bytes) -> None:
    """Declared at 30 MB, refused after its first MB: the rest is never needed."""
    declared = 30 * 1024 * 1024
    with connected(gateway.url) as conn:
        conn.sendall(head(CHAT, gateway.key, declared) + b'{"messages": ')
        sent = 0
        try:
            while sent < 1024 * 1024:
                conn.sendall(shape)
                sent += len(shape)
        except OSError:
            pass  # answered and closed: it will not read 30 MB it has refused; its answer is in
        status, _, answer = read_response(conn)
    assert status in (400, 413)
    assert json.loads(answer)["error"]["code"] in ("invalid_json", "too_many_json_values")


def test_large_bodies_are_decoded_while_other_clients_are_served(gateway_factory: Any) -> None:
    """Three 20 MB image requests at once (decoded off the event loop) and a bystander asking meanwhile:
    everyone is answered."""
    # The simulator shares this process: on a busy machine it may take more than the usual test second to
    # read 60 MB, which is not what this test is about.
    gateway = gateway_factory(attempt_timeout_s=15.0, request_timeout_s=30.0)
    image = base64.b64encode(os.urandom(15 * 1024 * 1024)).decode()
    body = json.dumps(
        {
            "model": NANO,
            "max_tokens": 5,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is this?"},
                        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{image}"}},
                    ],
                }
            ],
        }
    ).encode()
    statuses: list[int] = []

    def upload() -> None:
        r = httpx.post(
            f"{gateway.url}{CHAT}",
            content=body,
            headers={"Authorization": f"Bearer {gateway.key}"},
            timeout=60,
        )
        statuses.append(r.status_code)

    uploads = [threading.Thread(target=upload) for _ in range(3)]
    for t in uploads:
        t.start()
    bystander = gateway.openai()
    answered = 0
    while any(t.is_alive() for t in uploads):
        answer = bystander.chat.completions.create(model=NANO, messages=HELLO, max_tokens=5)
        answered += bool(answer.choices[0].message.content)
    for t in uploads:
        t.join()
    assert statuses == [200, 200, 200]
    assert answered >= 1
    assert gateway.app.parts.bodies.in_use == 0
