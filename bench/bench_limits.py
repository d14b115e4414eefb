"""What key limits cost per request: one admission and one settlement, on this process's books and on
the shared Redis ledger (when Redis runs at 127.0.0.1:6379).

    .venv/bin/python bench/bench_limits.py
"""

from __future__ import annotations

import asyncio
import socket
import time

from tokenmux.limits.key_limits import KeyLimits
from tokenmux.limits.ledger import LocalLedger
from tokenmux.limits.redis_ledger import RedisLedger
from tokenmux.redis.link import RedisLink
from tokenmux.store.records import KeyRecord

N = 20_000


async def nothing_spent(key_id: str, since: str | None) -> int:
    return 0


def limited(key_id: str) -> KeyLimits:
    record = KeyRecord(id=key_id, name="b", digest="d", display="x", created_at=0.0)
    record.credit_usd, record.rpm, record.tpm, record.concurrency = 1e6, 10**9, 10**9, 1000
    return KeyLimits.of(record)


async def measure(books: LocalLedger | RedisLedger, key: KeyLimits, n: int) -> tuple[float, float]:
    """(wall µs per request with 32 in flight, CPU µs per request)."""
    sem = asyncio.Semaphore(32)

    async def one(i: int) -> None:
        async with sem:
            admission = await books.admit(key, 1000)
            books.settle(admission, key.key_id, f"gen-{i}", 500, 100)

    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one(i) for i in range(n)))
    return (time.perf_counter() - wall) / n * 1e6, (time.process_time() - cpu) / n * 1e6


async def main() -> None:
    local = LocalLedger(nothing_spent)
    wall, cpu = await measure(local, limited("key_bench_local"), N)
    print(f"local books:  {wall:7.1f} µs wall, {cpu:6.1f} µs CPU per admitted and settled request")
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        print("Redis not running at 127.0.0.1:6379: shared ledger not measured")
        return
    link = RedisLink("redis://127.0.0.1:6379/8", timeout_s=1.0)
    await link.client.call("FLUSHDB")
    shared = RedisLedger(link, nothing_spent)
    await shared.start()
    await measure(shared, limited("key_bench_warm"), 500)  # scripts loaded, connections open
    wall, cpu = await measure(shared, limited("key_bench_redis"), N // 4)
    print(
        f"Redis ledger: {wall:7.1f} µs wall, {cpu:6.1f} µs CPU per admitted and settled request (gateway side)"
    )
    await shared.close()
    await link.client.call("FLUSHDB")
    await link.aclose()


if __name__ == "__main__":
    asyncio.run(main())
