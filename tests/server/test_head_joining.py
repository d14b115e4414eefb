"""A whole response leaves in one write: the head is held until its body (server/head_joining.py)."""

from __future__ import annotations

import asyncio
import gc
import socket
import weakref
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from tokenmux.server.head_joining import HeadJoiningWrites


class RecordingTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


def joined(cycle: Any) -> tuple[HeadJoiningWrites, RecordingTransport]:
    transport = RecordingTransport()
    return HeadJoiningWrites(transport, cycle, asyncio.get_running_loop()), transport  # type: ignore[arg-type]


async def test_head_and_body_sent_together_are_one_write() -> None:
    cycle = SimpleNamespace(response_started=False)
    writes, transport = joined(cycle)
    cycle.response_started = True
    writes.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    writes.write(b"{}")
    assert transport.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    await asyncio.sleep(0)
    assert len(transport.writes) == 1


async def test_a_head_alone_goes_when_the_loop_pass_ends_and_later_parts_go_at_once() -> None:
    cycle = SimpleNamespace(response_started=True)
    writes, transport = joined(cycle)
    writes.write(b"HEAD")
    assert transport.writes == []
    await asyncio.sleep(0)
    assert transport.writes == [b"HEAD"]
    writes.write(b"chunk 1")
    writes.write(b"chunk 2")
    assert transport.writes == [b"HEAD", b"chunk 1", b"chunk 2"]


async def test_continue_goes_at_once_and_close_writes_a_held_head_first() -> None:
    cycle = SimpleNamespace(response_started=False)
    writes, transport = joined(cycle)
    writes.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert transport.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    cycle.response_started = True
    writes.write(b"HEAD")
    writes.close()
    assert transport.writes[-1] == b"HEAD" and transport.closed and writes.is_closing()
    assert writes.get_extra_info("peername") == "info:peername"


def _write_calls() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("syscw:"):
            return int(line.split()[1])
    raise AssertionError("no syscw in /proc/self/io")


def test_the_gateway_answers_each_request_with_one_write(gateway: Any) -> None:
    # The gateway runs in a thread of this process; the client's send and recv are sendto/recvfrom, which
    # /proc/self/io does not count, so what it counts is the server's writes.
    host, port = gateway.url.removeprefix("http://").split(":")
    request = f"GET /health HTTP/1.1\r\nhost: {host}\r\n\r\n".encode()
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(request)
        assert conn.recv(65536).startswith(b"HTTP/1.1 200")
        before = _write_calls()
        for _ in range(50):
            conn.sendall(request)
            answer = conn.recv(65536)
            assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"}")
        writes = _write_calls() - before
    assert writes < 75, f"{writes} write calls for 50 responses"  # two per response would be 100


def test_a_head_with_no_body_still_goes_out_and_the_connection_goes_on(gateway: Any) -> None:
    # A HEAD answer has no body to carry its head: it leaves when its response is complete.
    host, port = gateway.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(f"HEAD /health HTTP/1.1\r\nhost: {host}\r\n\r\n".encode())
        head = conn.recv(65536)
        assert head.startswith(b"HTTP/1.1 ") and head.endswith(b"\r\n\r\n")
        conn.sendall(f"GET /health HTTP/1.1\r\nhost: {host}\r\n\r\n".encode())
        assert conn.recv(65536).startswith(b"HTTP/1.1 200")


class Cycle:
    """Stands for uvicorn's RequestResponseCycle, which holds its transport (here, the joining writer)."""

    def __init__(self) -> None:
        self.response_started = False
        self.transport: Any = None


async def test_a_cycle_whose_head_went_is_freed_without_the_garbage_collector() -> None:
    # The cycle holds the writer as its transport; a writer still holding the cycle would make a reference
    # cycle per request, left for the collector.
    cycle = Cycle()
    writes, transport = joined(cycle)
    cycle.transport = writes
    gone = weakref.ref(cycle)
    gc.disable()
    try:
        cycle.response_started = True
        writes.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        writes.write(b"{}")
        del cycle, writes
        await asyncio.sleep(0)  # the flush the head scheduled holds the writer until the pass ends
        assert gone() is None
    finally:
        gc.enable()
    assert transport.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
