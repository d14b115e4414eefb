"""The gateway against PRODUCT.md's performance budget, in one command.

    .venv/bin/python bench/run.py [--quick] [--requests N] [--json FILE] [--pin] [--no-extras]

Starts the provider simulator and the gateway as two processes (temporary config and SQLite database),
sends the same small chat completion straight to the simulator and through the gateway, and prints each
figure with its budget and a verdict, then the machine it was measured on. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import uvloop

# Run as a script, this directory is on sys.path and its modules import by their plain names.
from extras import Extra, fit_cost, recorder_rate
from figures import Figure, describe_machine, format_table, machine
from loadgen import RequestFailed
from measure import Plan, run_plan
from stack import running_stack

QUICK_REQUESTS, QUICK_WARMUP = 300, 50
RECORDER_RECORDS = 200_000


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK_REQUESTS} requests per figure, no other benchmarks (under a minute)",
    )
    p.add_argument("--requests", type=int, help="requests per path for each figure (default 2000)")
    p.add_argument("--warmup", type=int, help="warm-up requests per path and kind (default 200)")
    p.add_argument(
        "--json", type=Path, metavar="FILE", help="also write every figure and the machine as JSON"
    )
    p.add_argument(
        "--pin",
        action="store_true",
        help="pin the gateway to CPU 1 and the simulator and load generator to CPU 0 (needs 2 CPUs)",
    )
    p.add_argument("--no-extras", action="store_true", help="skip bench_fit.py and bench_recorder.py")
    return p


def _plan(args: argparse.Namespace) -> Plan:
    plan = Plan()
    if args.quick:
        plan.requests, plan.warmup = QUICK_REQUESTS, QUICK_WARMUP
    if args.requests is not None:
        plan.requests = args.requests
    if args.warmup is not None:
        plan.warmup = args.warmup
    if plan.requests < 1 or plan.warmup < 0:
        raise SystemExit("error: --requests must be at least 1 and --warmup at least 0")
    return plan


def _pinning(pin: bool) -> tuple[set[int] | None, set[int] | None]:
    """(gateway CPUs, simulator CPUs); the load generator joins the simulator."""
    if not pin:
        return None, None
    usable = sorted(os.sched_getaffinity(0))
    if len(usable) < 2:
        raise SystemExit("error: --pin needs at least 2 usable CPUs")
    simulator_cpus, gateway_cpus = {usable[0]}, {usable[1]}
    os.sched_setaffinity(0, simulator_cpus)
    return gateway_cpus, simulator_cpus


def _extras() -> list[Extra]:
    print("other benchmarks:", file=sys.stderr, flush=True)
    done = []
    for name, run in (
        ("bench_fit.py", fit_cost),
        ("bench_recorder.py", lambda: recorder_rate(RECORDER_RECORDS)),
    ):
        print(f"  {name}", file=sys.stderr, flush=True)
        done.append(run())
    return done


def _report(
    info: dict[str, Any], plan: Plan, pinned: bool, figures: list[Figure], extras: list[Extra] | None
) -> str:
    lines = [
        f"tokenmux benchmark: {plan.requests:,} requests per path and figure"
        f"{', gateway pinned to its own CPU' if pinned else ''}",
        f"machine: {describe_machine(info)}",
        "",
        format_table(figures),
    ]
    if extras is None:
        lines.append("  bench_fit.py and bench_recorder.py were not run (--quick or --no-extras)")
    for extra in extras or ():
        if extra.error:
            lines.append(f"  {extra.script} skipped: {extra.error}")
    return "\n".join(lines)


def _to_json(
    info: dict[str, Any],
    plan: Plan,
    pinned: bool,
    elapsed_s: float,
    figures: list[Figure],
    extras: list[Extra] | None,
) -> dict[str, Any]:
    return {
        "machine": info,
        "plan": {
            "requests": plan.requests,
            "warmup": plan.warmup,
            "cpu_concurrency": plan.cpu_concurrency,
            "throughput_concurrency": plan.throughput_concurrency,
            "pinned": pinned,
        },
        "elapsed_s": round(elapsed_s, 1),
        "figures": {f.key: f.to_json() for f in figures},
        "extras": None if extras is None else [_extra_json(e) for e in extras],
    }


def _extra_json(extra: Extra) -> dict[str, Any]:
    return {
        "script": extra.script,
        "args": extra.args,
        "seconds": round(extra.seconds, 1),
        "error": extra.error or None,
        "output": extra.output,
    }


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    plan = _plan(args)
    info = machine()
    started = time.monotonic()
    gateway_cpus, simulator_cpus = _pinning(args.pin)
    print("starting the simulator and the gateway", file=sys.stderr, flush=True)
    with (
        running_stack(gateway_cpus=gateway_cpus, simulator_cpus=simulator_cpus) as stack,
        asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner,
    ):
        try:
            figures = runner.run(run_plan(stack, plan))
        except RequestFailed as e:
            # A wrong answer makes every figure meaningless: stop, and show why the services misbehaved.
            print(f"error: a request failed ({e}); the figures would be wrong.", file=sys.stderr)
            for service in (stack.gateway, stack.simulator):
                print(
                    f"--- last lines of the {service.name}'s log ---\n{service.log_tail()}", file=sys.stderr
                )
            return 1
    extras = None if args.quick or args.no_extras else _extras()
    for extra in extras or ():
        figures += extra.figures
    elapsed = time.monotonic() - started
    print(_report(info, plan, args.pin, figures, extras))
    if args.json:
        document = _to_json(info, plan, args.pin, elapsed, figures, extras)
        args.json.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\n({elapsed:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
