"""Hostile load against a gateway with its default settings: floods that must neither exhaust its memory
nor stall other clients. For each flood: the gateway process's peak RSS over the flood (the kernel's
high-water mark, reset before it), how its requests were answered, and the latency of a bystander (another
key, one small chat request every 20 ms from a process of its own) meanwhile.

    .venv/bin/python bench/bench_hostile.py                       # every flood, about 2 minutes
    .venv/bin/python bench/bench_hostile.py --floods upload-limited,pathological

Floods (``--floods``, comma-separated; default all):

- ``upload-limited``: 24 concurrent 30 MB chat requests (a valid request with a base64 image) on a key
  limited to concurrency 1 and 1 request a minute.
- ``upload-open``: the same on a key without limits: only the budget of bodies in flight bounds them.
- ``upload-60mb``: 200 concurrent 60 MB uploads (over ``max_body_bytes``) on the limited key.
- ``auth-headers``: 300 requests, 50 at a time, each with a distinct 1 MB fake key and no body.
- ``pathological``: 30 MB bodies of ``[],`` repeated and of ``[`` nested, with Content-Length, and a
  60 MB body of ``[],`` sent chunked (no Content-Length), four of each at once.
- ``idle``: 1,000 sockets opened and left silent; how many the gateway still holds after its header
  timeout (10 s by default), and the bystander meanwhile.

Upload clients stop sending once they have their answer (or the gateway closes), as a client would.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import http.client
import json
import multiprocessing
import os
import select
import socket
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

# Run as a script, this directory is on sys.path and its modules import by their plain names.
from stack import HOST, Service, Stack, create_key, running_stack

MB = 1_000_000
MODEL = "openai/gpt-4.1-nano"
CHAT = "/api/v1/chat/completions"
SEND_STEP = 256 * 1024
HEADER_TIMEOUT_S = 10.0  # the gateway's default


# -- the bystander ---------------------------------------------------------------------------------------


def _bystander(port: int, key: str, kind: str, every_s: float, stop: Any, out: Connection) -> None:
    """Small chat requests (``kind`` "chat"; "models": the model list, which the gateway answers without
    a provider) on one keep-alive connection until ``stop`` is set; sends back the latencies (seconds) and
    the number of failed requests."""
    body = json.dumps(
        {"model": MODEL, "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 5}
    ).encode()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    latencies: list[float] = []
    failed = 0
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    while not stop.is_set():
        started = time.perf_counter()
        try:
            if kind == "models":
                conn.request("GET", "/api/v1/models")
            else:
                conn.request("POST", CHAT, body, headers)
            answer = conn.getresponse()
            answer.read()
            if answer.status != 200:
                failed += 1
            else:
                latencies.append(time.perf_counter() - started)
        except OSError:
            failed += 1
            conn.close()
            conn = http.client.HTTPConnection(HOST, port, timeout=30)
        time.sleep(every_s)
    conn.close()
    out.send((latencies, failed))


class Bystander:
    def __init__(self, port: int, key: str, kind: str, every_s: float = 0.02) -> None:
        context = multiprocessing.get_context("spawn")
        self._stop = context.Event()
        self._receiving, sending = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_bystander, args=(port, key, kind, every_s, self._stop, sending), daemon=True
        )

    def __enter__(self) -> Bystander:
        self._process.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process.is_alive():
            self._process.kill()

    def finish(self) -> tuple[list[float], int]:
        self._stop.set()
        latencies, failed = self._receiving.recv()
        self._process.join(10)
        return latencies, failed


# -- what is measured ------------------------------------------------------------------------------------


@dataclass(slots=True)
class Result:
    flood: str
    baseline_rss_mb: float
    peak_rss_mb: float
    answers: Counter[str]
    latencies_s: list[float]
    bystander_failed: int
    seconds: float
    notes: list[str] = field(default_factory=list)

    def percentile(self, q: float) -> float:
        if not self.latencies_s:
            return float("nan")
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def _reset_peak(gateway: Service) -> None:
    # Writing 5 resets the process's VmHWM (peak RSS) to its current RSS (Linux 4.0+).
    Path(f"/proc/{gateway.pid}/clear_refs").write_text("5")


async def _measured(
    stack: Stack,
    name: str,
    bystander_key: str,
    bystander_kind: str,
    flood: Callable[[], Awaitable[Counter[str]]],
) -> Result:
    gateway = stack.gateway
    with Bystander(gateway.port, bystander_key, bystander_kind) as bystander:
        await asyncio.sleep(1.5)  # the bystander's interpreter starts and its first requests are served
        _reset_peak(gateway)
        baseline = gateway.memory_kib() / 1024
        started = time.monotonic()
        answers = await flood()
        seconds = time.monotonic() - started
        peak = gateway.memory_kib("VmHWM") / 1024
        await asyncio.sleep(0.5)
        latencies, failed = bystander.finish()
    return Result(name, baseline, peak, answers, latencies, failed, seconds)


# -- clients ---------------------------------------------------------------------------------------------


def _head(key: str, length: int | None, path: str = CHAT) -> bytes:
    framing = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    return (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\n{framing}\r\n\r\n"
    ).encode()


def _upload_blocking(port: int, key: str, body: bytes, chunked: bool, timeout_s: float) -> str:
    """As a blocking client (httpx, the SDKs) does it: send, and when the gateway closes while the body is
    still going out, read the answer it wrote before closing."""
    try:
        conn = socket.create_connection((HOST, port), timeout=timeout_s)
    except OSError:
        return "refused"
    with conn:
        try:
            conn.sendall(_head(key, None if chunked else len(body)))
            view = memoryview(body)
            for offset in range(0, len(body), SEND_STEP):
                piece = view[offset : offset + SEND_STEP]
                conn.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                if select.select([conn], [], [], 0)[0]:
                    break  # the answer is in: a client that reads as it sends stops here
            else:
                if chunked:
                    conn.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # closed by the gateway after its answer: read it
        try:
            line = conn.recv(64).split(b"\r\n", 1)[0].split()
        except OSError:
            return "reset"
        return line[1].decode() if len(line) > 1 else "closed"


async def upload(port: int, key: str, body: bytes, *, chunked: bool = False, timeout_s: float = 120) -> str:
    """Send ``body`` and return the answer's status ("closed"/"reset" if the gateway closed without
    one); stops sending once the answer has come."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_clients, _upload_blocking, port, key, body, chunked, timeout_s)


_clients = ThreadPoolExecutor(max_workers=256, thread_name_prefix="flood-client")


def image_request(size: int) -> bytes:
    """A valid chat request of ``size`` bytes: a short question and one base64 image."""
    prefix = json.dumps(
        {
            "model": MODEL,
            "max_tokens": 5,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is in this image?"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,"}},
                    ],
                }
            ],
        }
    ).encode()
    cut = prefix.index(b"base64,") + len(b"base64,")
    payload = base64.b64encode(os.urandom((size - len(prefix)) * 3 // 4))
    return prefix[:cut] + payload + prefix[cut:]


async def _many(count: int, at_once: int, one: Callable[[], Awaitable[str]]) -> Counter[str]:
    gate = asyncio.Semaphore(at_once)

    async def gated() -> str:
        async with gate:
            return await one()

    return Counter(await asyncio.gather(*(gated() for _ in range(count))))


# -- floods ----------------------------------------------------------------------------------------------


async def flood_uploads(port: int, key: str, body: bytes, count: int) -> Counter[str]:
    return await _many(count, count, lambda: upload(port, key, body))


async def flood_auth_headers(port: int, count: int = 300, at_once: int = 50) -> Counter[str]:
    fakes = iter([f"sk-{i:06d}" + "x" * MB for i in range(count)])  # 1 MB each, all distinct

    async def one() -> str:
        return await upload(port, next(fakes), b"")

    return await _many(count, at_once, one)


def pathological_bodies() -> tuple[bytes, bytes, bytes]:
    flat = b'{"messages": [' + b"[]," * (30 * MB // 3) + b"[]]}"
    nested = b'{"messages": ' + b"[" * (30 * MB)
    flat_60 = b'{"messages": [' + b"[]," * (60 * MB // 3) + b"[]]}"
    return flat, nested, flat_60


async def flood_pathological(port: int, key: str, bodies: tuple[bytes, bytes, bytes]) -> Counter[str]:
    flat, nested, flat_60 = bodies
    tries: list[Awaitable[str]] = []
    for _ in range(4):
        tries.append(upload(port, key, flat))
        tries.append(upload(port, key, nested))
        tries.append(upload(port, key, flat_60, chunked=True))
    return Counter(await asyncio.gather(*tries))


async def flood_idle(port: int, count: int = 1000) -> tuple[Counter[str], list[str]]:
    sockets = []
    for _ in range(count):
        try:
            sockets.append(socket.create_connection((HOST, port), timeout=5))
        except OSError:
            break
    await asyncio.sleep(HEADER_TIMEOUT_S + 3)
    held = 0
    for conn in sockets:
        conn.setblocking(False)
        try:
            held += conn.recv(1) != b""
        except BlockingIOError:
            held += 1  # nothing to read and not closed: still open
        except OSError:
            pass
        conn.close()
    notes = [f"{len(sockets)} sockets opened; {held} still open {HEADER_TIMEOUT_S + 3:.0f} s later"]
    return Counter({"held": held, "closed": len(sockets) - held}), notes


# -- the run ---------------------------------------------------------------------------------------------

FLOODS = ("upload-limited", "upload-open", "upload-60mb", "auth-headers", "pathological", "idle")


def _flood(
    name: str, port: int, limited: str, open_key: str, notes: list[str]
) -> Callable[[], Awaitable[Counter[str]]]:
    # Bodies are built before the flood starts: the client's own work stays out of the measurement.
    if name == "upload-limited":
        body = image_request(30 * MB)
        return lambda: flood_uploads(port, limited, body, 24)
    if name == "upload-open":
        body = image_request(30 * MB)
        return lambda: flood_uploads(port, open_key, body, 24)
    if name == "upload-60mb":
        body = image_request(60 * MB)
        return lambda: flood_uploads(port, limited, body, 200)
    if name == "auth-headers":
        return lambda: flood_auth_headers(port)
    if name == "pathological":
        bodies = pathological_bodies()
        return lambda: flood_pathological(port, open_key, bodies)
    if name == "idle":

        async def idle() -> Counter[str]:
            answers, said = await flood_idle(port)
            notes.extend(said)
            return answers

        return idle
    raise SystemExit(f"unknown flood {name!r}; known: {', '.join(FLOODS)}")


async def run(floods: list[str], bystander_kind: str) -> list[Result]:
    results = []
    with running_stack() as stack:
        port = stack.gateway.port
        limited = create_key(stack, "flood-limited", "--concurrency", "1", "--rpm", "1")
        open_key = create_key(stack, "flood-open")
        bystander = stack.api_key
        for name in floods:
            print(f"... {name}", file=sys.stderr, flush=True)
            notes: list[str] = []
            flood = _flood(name, port, limited, open_key, notes)
            result = await _measured(stack, name, bystander, bystander_kind, flood)
            result.notes.extend(notes)
            results.append(result)
    return results


def report(results: list[Result]) -> None:
    print(
        f"{'flood':<16} {'RSS before':>10} {'peak':>8} {'added':>8}  {'bystander p50':>13} {'p99':>8} "
        f"{'max':>8} {'n':>5} {'failed':>6}  {'s':>5}  answers"
    )
    for r in results:
        answers = ", ".join(f"{k}×{v}" for k, v in sorted(r.answers.items()))
        print(
            f"{r.flood:<16} {r.baseline_rss_mb:>7.0f} MB {r.peak_rss_mb:>5.0f} MB "
            f"{r.peak_rss_mb - r.baseline_rss_mb:>5.0f} MB  {r.percentile(0.5):>10.1f} ms "
            f"{r.percentile(0.99):>5.1f} ms {max(r.latencies_s, default=0) * 1000:>5.1f} ms "
            f"{len(r.latencies_s):>5} {r.bystander_failed:>6}  {r.seconds:>5.1f}  {answers}"
        )
        for note in r.notes:
            print(f"{'':<16} {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--floods", default=",".join(FLOODS), help=f"comma-separated among {', '.join(FLOODS)}"
    )
    parser.add_argument(
        "--bystander",
        choices=("chat", "models"),
        default="chat",
        help="chat: a chat request through the simulator (default); models: GET /api/v1/models, the "
        "gateway alone (the simulator is busy with the flood's accepted requests too)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    floods = [f.strip() for f in args.floods.split(",") if f.strip()]
    results = asyncio.run(run(floods, args.bystander))
    report(results)
    if args.json:
        args.json.write_text(
            json.dumps(
                [
                    {
                        "flood": r.flood,
                        "rss_before_mb": round(r.baseline_rss_mb, 1),
                        "rss_peak_mb": round(r.peak_rss_mb, 1),
                        "bystander_p50_ms": round(r.percentile(0.5), 2),
                        "bystander_p99_ms": round(r.percentile(0.99), 2),
                        "bystander_requests": len(r.latencies_s),
                        "bystander_failed": r.bystander_failed,
                        "answers": dict(r.answers),
                        "notes": r.notes,
                    }
                    for r in results
                ],
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
