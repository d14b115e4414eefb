"""Running the simulator: ``serve`` inside a caller's event loop, ``run`` as the command does."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from tokenmux.simulator import serve

HELLO = [{"role": "user", "content": "Hello there"}]


async def test_serve_sets_ready_and_stops_at_once_with_requests_in_flight() -> None:
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    ready = asyncio.Event()
    profiles = {"openai": {"hang": True}, "slow": {"ttft_ms": 60_000}}
    server = asyncio.create_task(serve("127.0.0.1", port, sock=sock, profiles=profiles, ready=ready))
    await asyncio.wait_for(ready.wait(), 5)

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        body = {"model": "m", "messages": HELLO}
        auth = {"Authorization": "Bearer k"}
        hung = asyncio.create_task(http.post("/openai/v1/chat/completions", json=body, headers=auth))
        slow = asyncio.create_task(http.post("/slow/v1/chat/completions", json=body, headers=auth))
        for prefix in ("openai", "slow"):  # wait until both requests are in the server's hands
            while not (await http.get(f"/_control/{prefix}/requests")).json():
                await asyncio.sleep(0.01)

        started = time.perf_counter()
        server.cancel()
        with pytest.raises(asyncio.CancelledError):
            await server
        assert time.perf_counter() - started < 2

        for request in (hung, slow):
            with pytest.raises(httpx.RemoteProtocolError):
                await request
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


async def test_serve_binds_host_and_port_itself() -> None:
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    ready = asyncio.Event()
    server = asyncio.create_task(serve("127.0.0.1", port, ready=ready))
    try:
        await asyncio.wait_for(ready.wait(), 5)
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"http://127.0.0.1:{port}/health")).status_code == 200
    finally:
        server.cancel()
        with pytest.raises(asyncio.CancelledError):
            await server


async def test_serve_fails_when_the_port_is_taken() -> None:
    taken = socket.create_server(("127.0.0.1", 0))
    try:
        with pytest.raises(OSError):
            await serve("127.0.0.1", taken.getsockname()[1])
    finally:
        taken.close()


def test_run_serves_until_sigterm() -> None:
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    code = (
        "from tokenmux.simulator import run; "
        f"run('127.0.0.1', {port}, seed=3, profiles={{'x': {{'ttft_ms': 1}}}})"
    )
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                profile = httpx.get(f"http://127.0.0.1:{port}/_control/x", timeout=1).json()
                break
            except httpx.TransportError:
                assert process.poll() is None, process.communicate()
                assert time.monotonic() < deadline, "the simulator did not start"
                time.sleep(0.05)
        assert profile["ttft_ms"] == 1 and profile["seed"] == 3

        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)
        assert process.returncode == 0, stderr
        assert b"listening on http://127.0.0.1" in stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
