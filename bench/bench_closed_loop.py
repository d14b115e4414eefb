"""False refusals at a key's concurrency limit: closed-loop clients that never exceed it.

A key made with ``--concurrency 10`` is used by 10 workers, each sending its next request only once its
previous answer is complete, so the key never has more than 10 requests in flight and every
``concurrency_limited`` 429 is a false refusal. Run on the gateway's own books and, when Redis answers at
127.0.0.1:6379 (or ``--redis URL``), on the shared Redis ledger.

    .venv/bin/python bench/bench_closed_loop.py                  # 10 workers, 300 requests each
    .venv/bin/python bench/bench_closed_loop.py --requests 100 --redis redis://127.0.0.1:6379/12
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
from collections import Counter
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).parent))

from stack import HOST, running_stack

WORKERS = 10
BUDGET_PERCENT = 1.0


def redis_answers(url: str) -> bool:
    host_port = url.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1]
    host, _, port = host_port.partition(":")
    try:
        with socket.create_connection((host, int(port or 6379)), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


async def closed_loop(url: str, api_key: str, per_worker: int) -> Counter[int]:
    body = {"model": "openai/gpt-4.1-nano", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8}
    headers = {"Authorization": f"Bearer {api_key}"}
    statuses: Counter[int] = Counter()

    async def worker(session: aiohttp.ClientSession, n: int) -> None:
        for i in range(per_worker):
            streamed = (n + i) % 2 == 0
            async with session.post(
                f"{url}/api/v1/chat/completions", json={**body, "stream": streamed}, headers=headers
            ) as r:
                await r.read()
                statuses[r.status] += 1

    connector = aiohttp.TCPConnector(limit=WORKERS)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        await asyncio.gather(*(worker(session, n) for n in range(WORKERS)))
    return statuses


def run(label: str, per_worker: int, redis_url: str | None) -> None:
    with running_stack(key_limits=("--concurrency", str(WORKERS)), redis_url=redis_url) as stack:
        # Each answer takes a little while, so the workers do overlap at the limit.
        stack.simulator_control.profile("openai", ttft_ms=20)
        url = f"http://{HOST}:{stack.gateway.port}"
        statuses = asyncio.run(closed_loop(url, stack.api_key, per_worker))
    total = sum(statuses.values())
    refused = statuses[429]
    percent = 100 * refused / total if total else 0.0
    verdict = "✓" if percent < BUDGET_PERCENT else "✗"
    others = {s: n for s, n in statuses.items() if s not in (200, 429)}
    print(
        f"{label:<12} {total} requests by {WORKERS} closed-loop workers at --concurrency {WORKERS}: "
        f"{refused} refused ({percent:.2f} %, budget < {BUDGET_PERCENT:g} %) {verdict}"
        + (f"; other statuses {others}" if others else ""),
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="per worker (default 300)")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="the Redis for the shared run")
    args = parser.parse_args()
    run("own books", args.requests, None)
    if redis_answers(args.redis):
        run("Redis", args.requests, args.redis)
    else:
        print(f"Redis      not measured: nothing answers at {args.redis}")


if __name__ == "__main__":
    main()
