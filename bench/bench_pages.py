"""How fast the web pages and the endpoints API answer with a big request log (issue 5: every page in under
100 ms on the server with a million records in the log).

    .venv/bin/python bench/bench_pages.py [--records 1000000] [--requests 200] [--warmup 20] [--json FILE]

1. Builds a gateway SQLite database holding ``--records`` generations (one attempt each) spread evenly over
   the last 72 hours across 30 catalog endpoints (both of gpt-4.1-nano's among them) and 50 API keys, one
   of which made a fifth of them. They go through ``SQLiteStore.write_batch`` in batches of 10,000, so the
   aggregate tables behind the figures are filled as production fills them.
2. Starts the real gateway on it in this process (uvicorn on a loopback port, its own thread and loop)
   and asks for the model page, ``/models``, ``/status``, the activity page of the busiest key and the
   endpoints API, request by request in turn, ``--requests`` times each after ``--warmup`` rounds.
3. Prints each one's server-side time (from the gateway's ASGI call to its last body byte handed to
   uvicorn) at p50 and p99, with the client's round trip on loopback beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import tempfile
import threading
import time
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import uvloop

# Run as a script, this directory is on sys.path and its modules import by their plain names.
from figures import percentile
from loadgen import Target, raw_request, sequential
from tokenmux.catalog.loader import load_catalog
from tokenmux.server.build import build_gateway
from tokenmux.server.runner import BackgroundServer
from tokenmux.store import AttemptRecord, GenerationRecord, SQLiteStore, new_generation_id, new_key

HOST = "127.0.0.1"
MODEL = "openai/gpt-4.1-nano"
ENDPOINTS = 30
KEYS = 50
SPAN_S = 72 * 3600
BATCH = 10_000
BUDGET_MS = 100.0
SEED = 5


@dataclass(slots=True)
class LogShape:
    endpoints: list[str]
    key_ids: list[str]
    busiest_secret: str  # the key that made a fifth of the requests: its activity page is measured

    @property
    def busiest_model(self) -> str:
        return self.endpoints[0].partition("@")[0]


def pick_endpoints(count: int) -> list[str]:
    """gpt-4.1-nano's endpoints, then others in catalog order: real endpoints, so the pages show them."""
    catalog = load_catalog(None)
    keys = [e.key for e in catalog.models[MODEL].endpoints]
    for model in catalog.models.values():
        keys += [e.key for e in model.endpoints if e.key not in keys]
    return keys[:count]


def synthetic_batch(
    first: int, count: int, total: int, shape: LogShape, end: float, rng: random.Random
) -> list[GenerationRecord]:
    """Generations ``first`` to ``first + count`` of ``total`` in time order (as the recorder writes them):
    97 % succeed, 2 % fail at the provider, 1 % are the client's own errors; 70 % are streamed."""
    out = []
    endpoints, key_ids = shape.endpoints, shape.key_ids
    for i in range(first, min(first + count, total)):
        endpoint = endpoints[i % len(endpoints)]
        model, _, provider = endpoint.partition("@")
        started = end - SPAN_S * (1 - i / total)
        gid = new_generation_id(started)
        roll = rng.random()
        ok = roll < 0.97
        streamed = rng.random() < 0.7
        prompt = rng.randrange(50, 4000)
        completion = rng.randrange(10, 800) if ok else 0
        ttft = rng.lognormvariate(6.0, 0.5) if ok else None  # ~400 ms
        tps = rng.lognormvariate(4.5, 0.4) if ok and streamed else None  # ~90 tokens/s
        generation_ms = completion / tps * 1000 if tps else None
        latency = (ttft or 0.0) + (generation_ms or 0.0) or 1500.0
        cost = (prompt * 1e-7 + completion * 4e-7) if ok else 0.0
        finish = "stop" if ok else None
        key_id = key_ids[0] if i % 5 == 0 else key_ids[1 + i % (len(key_ids) - 1)]
        attempt = AttemptRecord(
            generation_id=gid,
            attempt=1,
            model=model,
            provider=provider,
            endpoint=endpoint,
            outcome="success" if ok else "error",
            error_class=None if ok else "server_error" if roll < 0.99 else "client_error",
            upstream_status=200 if ok else 500 if roll < 0.99 else 400,
            prompt_tokens=prompt,
            completion_tokens=completion,
            cost_usd=cost,
            ttft_ms=ttft,
            latency_ms=latency,
            generation_ms=generation_ms,
            throughput_tps=tps,
            streamed=streamed,
            finish_reason=finish,
            started_at=started,
            counts_for_uptime=roll < 0.99,
        )
        out.append(
            GenerationRecord(
                id=gid,
                key_id=key_id,
                requested_model=model,
                model=model if ok else None,
                provider=provider if ok else None,
                created_at=started,
                streamed=streamed,
                finish_reason=finish,
                status="success" if ok else "error",
                http_status=200 if ok else 502 if roll < 0.99 else 400,
                prompt_tokens=prompt,
                completion_tokens=completion,
                cost_usd=cost,
                ttft_ms=ttft,
                latency_ms=latency,
                generation_ms=generation_ms,
                throughput_tps=tps,
                attempts=[attempt],
            )
        )
    return out


async def build_log(path: Path, records: int, progress: bool) -> tuple[LogShape, float]:
    """Write the keys and the request log; return its shape and how long writing the log took."""
    async with SQLiteStore(path) as store:
        secrets, key_ids = [], []
        for n in range(KEYS):
            secret, key = new_key(f"bench-{n:02d}")
            await store.create_key(key)
            secrets.append(secret)
            key_ids.append(key.id)
        shape = LogShape(pick_endpoints(ENDPOINTS), key_ids, secrets[0])
        rng = random.Random(SEED)
        end = time.time() - 1
        started = time.perf_counter()
        # Build the next batch while the store's writer thread writes this one.
        writing: asyncio.Task[None] | None = None
        for first in range(0, records, BATCH):
            batch = synthetic_batch(first, BATCH, records, shape, end, rng)
            if writing is not None:
                await writing
            writing = asyncio.create_task(store.write_batch(batch))
            if progress and first and first % 100_000 == 0:
                rate = first / (time.perf_counter() - started)
                print(f"  {first:,} records written ({rate:,.0f}/s)", file=sys.stderr, flush=True)
        if writing is not None:
            await writing
        return shape, time.perf_counter() - started


class TimedApp:
    """ASGI middleware: per ``METHOD path``, seconds from the app's call to its last body byte, and bytes."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.samples: dict[str, list[float]] = defaultdict(list)
        self.sizes: dict[str, int] = {}
        self._lock = threading.Lock()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        name = f"{scope['method']} {scope['path']}"
        started = time.perf_counter()
        size = 0

        async def timed_send(message: dict[str, Any]) -> None:
            nonlocal size
            await send(message)
            if message["type"] == "http.response.body":
                size += len(message.get("body", b""))
                if not message.get("more_body"):
                    with self._lock:
                        self.samples[name].append(time.perf_counter() - started)
                        self.sizes[name] = size

        await self.app(scope, receive, timed_send)

    def reset(self) -> None:
        with self._lock:
            self.samples.clear()


@dataclass(slots=True)
class PageTime:
    name: str  # "model page"
    request: str  # "GET /openai/gpt-4.1-nano"
    server_p50_ms: float
    server_p99_ms: float
    client_p50_ms: float
    client_p99_ms: float
    bytes: int


def _config() -> dict[str, Any]:
    # Every catalog provider configured, so the status page shows each one's state; nothing listens at
    # these addresses and the benchmark sends no completion.
    providers: dict[str, Any] = {
        slug: {"base_url": f"http://{HOST}:9/{slug}", "api_key": "bench"}
        for slug in load_catalog(None).providers
    }
    providers["azure"]["api_version"] = "2024-10-21"
    return {"providers": providers}


def _pages(port: int, busiest_secret: str) -> list[tuple[str, Target]]:
    def target(name: str, method: str, path: str, payload: bytes = b"", ctype: str | None = None) -> Target:
        raw = raw_request(method, HOST, port, path, {}, payload, ctype)
        return Target(name, HOST, port, raw, raw)

    form = f"key={busiest_secret}".encode()
    return [
        ("GET /openai/gpt-4.1-nano", target("model page", "GET", f"/{MODEL}")),
        ("GET /models", target("models page", "GET", "/models")),
        ("GET /status", target("status page", "GET", "/status")),
        (
            "POST /activity",
            target("activity page", "POST", "/activity", form, "application/x-www-form-urlencoded"),
        ),
        (
            f"GET /api/v1/models/{MODEL}/endpoints",
            target("endpoints API", "GET", f"/api/v1/models/{MODEL}/endpoints"),
        ),
    ]


def _check_figures(port: int, shape: LogShape) -> None:
    """The pages must show the log, or the benchmark would time empty tables."""
    base = f"http://{HOST}:{port}"
    with urllib.request.urlopen(f"{base}/api/v1/models/{MODEL}/endpoints", timeout=30) as r:
        data = json.load(r)["data"]
    if not any(e.get("uptime_last_1d") is not None for e in data["endpoints"]) or not data["tokens_per_day"]:
        raise RuntimeError(f"the endpoints API shows no figures for {MODEL}: the log did not reach them")
    form = f"key={shape.busiest_secret}".encode()
    with urllib.request.urlopen(f"{base}/activity", data=form, timeout=30) as r:
        html = r.read().decode()
    if shape.busiest_model not in html:
        raise RuntimeError(f"the activity page of the busiest key does not show {shape.busiest_model}")


async def _measure(
    pages: list[tuple[str, Target]], timed: TimedApp, requests: int, warmup: int
) -> list[PageTime]:
    targets = [t for _, t in pages]
    if warmup:
        await sequential(targets, warmup, streamed=False)
    timed.reset()
    batches = await sequential(targets, requests, streamed=False)
    out = []
    for (request, target), batch in zip(pages, batches, strict=True):
        server = timed.samples[request]
        client = [t.total_s for t in batch.timings]
        out.append(
            PageTime(
                target.name,
                request,
                percentile(server, 50) * 1e3,
                percentile(server, 99) * 1e3,
                percentile(client, 50) * 1e3,
                percentile(client, 99) * 1e3,
                timed.sizes[request],
            )
        )
    return out


@contextlib.contextmanager
def serving(database: Path) -> Iterator[tuple[BackgroundServer, TimedApp]]:
    """The real gateway on the database, in this process; its startup reads the figures once."""
    app = build_gateway(_config(), database_url=f"sqlite:///{database}", env={})
    timed = TimedApp(app)
    server = BackgroundServer(timed, graceful_timeout_s=2).start(timeout_s=120)
    try:
        yield server, timed
    finally:
        server.stop()


def _database_bytes(database: Path) -> int:
    files = (database, database.with_name(database.name + "-wal"))
    return sum(f.stat().st_size for f in files if f.exists())


def run(records: int, requests: int, warmup: int, workdir: Path, progress: bool) -> dict[str, Any]:
    database = workdir / "pages.db"
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        shape, build_s = runner.run(build_log(database, records, progress))
        database_bytes = _database_bytes(database)
        if progress:
            print("  serving the pages", file=sys.stderr, flush=True)
        with serving(database) as (server, timed):
            _check_figures(server.port, shape)
            times = runner.run(_measure(_pages(server.port, shape.busiest_secret), timed, requests, warmup))
    return {
        "records": records,
        "endpoints": len(shape.endpoints),
        "keys": len(shape.key_ids),
        "span_h": SPAN_S // 3600,
        "build_s": round(build_s, 2),
        "records_per_s": round(records / build_s),
        "database_bytes": database_bytes,
        "requests": requests,
        "warmup": warmup,
        "budget_ms": BUDGET_MS,
        "pages": [asdict(t) for t in times],
    }


def report(result: dict[str, Any]) -> str:
    lines = [
        f"request log: {result['records']:,} generations (one attempt each) over {result['span_h']} h, "
        f"{result['endpoints']} endpoints, {result['keys']} keys",
        f"  written in {result['build_s']:.1f} s ({result['records_per_s']:,} records/s), "
        f"database {result['database_bytes'] / 1e6:,.1f} MB",
        f"server-side time over {result['requests']} requests each after {result['warmup']} warm-up rounds "
        f"(budget {result['budget_ms']:.0f} ms; client round trip in brackets):",
    ]
    width = max(len(p["request"]) for p in result["pages"])
    for p in result["pages"]:
        verdict = "✓" if p["server_p99_ms"] <= result["budget_ms"] else "✗"
        lines.append(
            f"  {p['request']:<{width}}  p50 {p['server_p50_ms']:7.2f} ms  p99 {p['server_p99_ms']:7.2f} ms {verdict}"
            f"  ({p['client_p50_ms']:.2f} / {p['client_p99_ms']:.2f} ms, {p['bytes'] / 1024:,.1f} KiB)"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--records", type=int, default=1_000_000, help="generations in the log (default 1,000,000)"
    )
    parser.add_argument("--requests", type=int, default=200, help="requests per page (default 200)")
    parser.add_argument("--warmup", type=int, default=20, help="warm-up requests per page (default 20)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    if args.records < 1 or args.requests < 1 or args.warmup < 0:
        parser.error("--records and --requests must be at least 1, --warmup at least 0")
    with tempfile.TemporaryDirectory(prefix="tokenmux-bench-pages-") as tmp:
        result = run(args.records, args.requests, args.warmup, Path(tmp), not args.quiet)
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
