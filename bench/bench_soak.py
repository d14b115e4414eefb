"""Memory over a soak: the gateway's resident set while it serves 100,000 requests over ten minutes.

The performance budget: at most 150 MB resident after 100,000 requests, flat over a 10-minute soak. The load
mixes every path through the gateway (same protocol and both translations), streamed and not, at an even
pace; the resident set is read from /proc once a minute.

    .venv/bin/python bench/bench_soak.py                 # 100,000 requests over 600 s
    .venv/bin/python bench/bench_soak.py --requests 20000 --seconds 120
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from loadgen import concurrent
from measure import paths
from stack import running_stack

BUDGET_MB = 150.0


async def soak(total: int, seconds: float) -> None:
    with running_stack() as stack:
        targets = paths(stack).through_gateway()
        rounds = max(1, int(seconds))  # one round a second
        per_round = max(1, total // rounds)
        started = time.monotonic()
        sent = 0
        samples: list[tuple[float, int, float]] = []  # (seconds, requests, RSS MB)

        def sample() -> None:
            rss = stack.gateway.memory_kib() / 1024
            samples.append((time.monotonic() - started, sent, rss))
            print(f"{samples[-1][0]:7.0f} s  {sent:8,d} requests  {rss:6.1f} MB resident", flush=True)

        sample()
        next_sample = 60.0
        for i in range(rounds):
            count = per_round if i < rounds - 1 else total - sent
            target = targets[i % len(targets)]
            await concurrent(target, count, min(8, count), streamed=i % 2 == 1)
            sent += count
            due = started + (i + 1) * seconds / rounds
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            if time.monotonic() - started >= next_sample:
                sample()
                next_sample += 60.0
        sample()
        final = samples[-1][2]
        half = [s for s in samples if s[0] >= samples[-1][0] / 2]
        slope = (
            (half[-1][2] - half[0][2]) / max(1.0, (half[-1][0] - half[0][0]) / 60) if len(half) > 1 else 0.0
        )
        verdict = "✓" if final <= BUDGET_MB else "✗"
        print(
            f"\nafter {sent:,d} requests in {samples[-1][0]:.0f} s: {final:.1f} MB resident "
            f"(peak {max(s[2] for s in samples):.1f} MB; {slope:+.2f} MB/min over the second half) "
            f"budget ≤ {BUDGET_MB:.0f} MB {verdict}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=600.0)
    args = parser.parse_args()
    asyncio.run(soak(args.requests, args.seconds))


if __name__ == "__main__":
    main()
