"""The gateway against its performance budget, in one command.

    .venv/bin/python bench/run.py [--quick] [--requests N] [--json FILE] [--pin] [--no-floor] [--no-extras]
                                  [--extras fit,recorder,pages,outage,instructions] [--page-records N]
                                  [--page-requests N]

Starts the provider simulator and the gateway as two processes (temporary config and SQLite database),
sends the same small chat completion straight to the simulator and through the gateway (same protocol,
translated both ways between the OpenAI and Anthropic protocols, and through the Responses and Gemini
routes, to a provider of their own protocol and translated), and the same requests to the floor apps
(a trivial app and a bare proxy over the own client and over aiohttp, under the same server, interleaved
with the gateway), runs the other benchmarks of this directory, and prints each figure with its budget and
a verdict, the headline figures beside the floor's with their ratios, then the machine it was measured on.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvloop

# Run as a script, this directory is on sys.path and its modules import by their plain names.
from extras import Extra, fit_cost, instructions, outages, page_times, recorder_rate
from figures import Figure, describe_machine, format_table, machine
from floor import FLOOR, FloorRow, format_floor_table
from loadgen import RequestFailed
from measure import Plan, run_plan
from stack import running_stack

QUICK_REQUESTS, QUICK_WARMUP = 300, 50
RECORDER_RECORDS = 200_000
PAGE_RECORDS, PAGE_REQUESTS = 1_000_000, 200
EXTRAS = {
    "fit": "bench_fit.py",
    "recorder": "bench_recorder.py",
    "pages": "bench_pages.py",
    "outage": "bench_outage.py",
    "instructions": "bench_instructions.py",
}
# Run unless --extras names others: instructions only when asked (it needs valgrind and takes minutes).
DEFAULT_EXTRAS = ("fit", "recorder", "pages", "outage")


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
    p.add_argument(
        "--extras",
        default=",".join(DEFAULT_EXTRAS),
        metavar="NAMES",
        help=f"which other benchmarks to run, comma-separated among {', '.join(EXTRAS)} (default: "
        f"{', '.join(DEFAULT_EXTRAS)})",
    )
    p.add_argument("--no-extras", action="store_true", help="run none of the other benchmarks")
    p.add_argument(
        "--no-floor",
        action="store_true",
        help="do not run the floor apps (trivial app, bare proxies) beside the gateway",
    )
    p.add_argument(
        "--page-records",
        type=int,
        default=PAGE_RECORDS,
        metavar="N",
        help=f"generations in bench_pages.py's request log (default {PAGE_RECORDS:,}; ~2 minutes to write)",
    )
    p.add_argument(
        "--page-requests",
        type=int,
        default=PAGE_REQUESTS,
        metavar="N",
        help=f"requests per page in bench_pages.py (default {PAGE_REQUESTS})",
    )
    return p


def _chosen_extras(args: argparse.Namespace) -> list[str]:
    if args.quick or args.no_extras:
        return []
    names = [n.strip() for n in args.extras.split(",") if n.strip()]
    unknown = sorted(set(names) - set(EXTRAS))
    if unknown:
        raise SystemExit(f"error: unknown --extras {', '.join(unknown)}; choose among {', '.join(EXTRAS)}")
    if args.page_records < 1 or args.page_requests < 1:
        raise SystemExit("error: --page-records and --page-requests must be at least 1")
    return [n for n in EXTRAS if n in names]


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


def _extras(names: list[str], args: argparse.Namespace) -> list[Extra]:
    runs: dict[str, Callable[[], Extra]] = {
        "fit": fit_cost,
        "recorder": lambda: recorder_rate(RECORDER_RECORDS),
        "pages": lambda: page_times(args.page_records, args.page_requests),
        "outage": outages,
        "instructions": instructions,
    }
    print("other benchmarks:", file=sys.stderr, flush=True)
    done = []
    for name in names:
        print(f"  {EXTRAS[name]}", file=sys.stderr, flush=True)
        done.append(runs[name]())
    return done


def _report(
    info: dict[str, Any],
    plan: Plan,
    pinned: bool,
    figures: list[Figure],
    floor: list[FloorRow],
    extras: list[Extra],
) -> str:
    lines = [
        f"tokenmux benchmark: {plan.requests:,} requests per path and figure"
        f"{', gateway pinned to its own CPU' if pinned else ''}",
        f"machine: {describe_machine(info)}",
        "",
        format_table(figures),
    ]
    if any(f.same_protocol is not None for f in figures):
        lines.append(
            "  the other routes (Anthropic, Responses and Gemini in; translated or to a provider of their own "
            "protocol) have no budget of their own: the budget is for the same-protocol call (a chat completion), "
            "shown beside each in the 'same protocol' column"
        )
    not_run = [script for script in EXTRAS.values() if script not in {e.script for e in extras}]
    if not_run:
        lines.append(f"  not run (--quick, --no-extras or --extras): {', '.join(not_run)}")
    for extra in extras:
        if extra.error:
            lines.append(f"  {extra.script} skipped: {extra.error}")
    if floor:
        lines += [
            "",
            "the floor: the same requests, interleaved with the gateway's, to apps doing the least under the "
            "same server (bench/floor_apps.py)",
            "",
            format_floor_table(floor),
            "  floor = the bare proxy over tokenmux's own client; tokenmux/app = the gateway over the trivial app, "
            "which answers without any upstream; aiohttp/own = the bare proxy over aiohttp over the one over the "
            "own client; added latency is over the direct path to the simulator; the streamed answer is 28 "
            "events (a role chunk, 24 content chunks, the finish and usage chunks, [DONE]; about 8 KB) that "
            "the simulator sends at once",
        ]
    else:
        lines.append("  the floor apps were not run (--no-floor)")
    return "\n".join(lines)


def _to_json(
    info: dict[str, Any],
    plan: Plan,
    pinned: bool,
    elapsed_s: float,
    figures: list[Figure],
    floor: list[FloorRow],
    extras: list[Extra],
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
        # None: the floor apps were not run; "to_floor" is tokenmux's value over the floor app's.
        "floor": {"floor_app": FLOOR, "rows": {r.key: r.to_json() for r in floor}} if floor else None,
        "extras": [_extra_json(e) for e in extras] if extras else None,  # None: none was run
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
    extra_names = _chosen_extras(args)
    info = machine()
    started = time.monotonic()
    gateway_cpus, simulator_cpus = _pinning(args.pin)
    print("starting the simulator and the gateway", file=sys.stderr, flush=True)
    with (
        running_stack(
            gateway_cpus=gateway_cpus, simulator_cpus=simulator_cpus, floor=not args.no_floor
        ) as stack,
        asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner,
    ):
        try:
            figures, floor = runner.run(run_plan(stack, plan))
        except RequestFailed as e:
            # A wrong answer makes every figure meaningless: stop, and show why the services misbehaved.
            print(f"error: a request failed ({e}); the figures would be wrong.", file=sys.stderr)
            for service in (stack.gateway, stack.simulator, *stack.floors.values()):
                print(
                    f"--- last lines of the {service.name}'s log ---\n{service.log_tail()}", file=sys.stderr
                )
            return 1
    extras = _extras(extra_names, args) if extra_names else []
    for extra in extras:
        figures += extra.figures
    elapsed = time.monotonic() - started
    print(_report(info, plan, args.pin, figures, floor, extras))
    if args.json:
        document = _to_json(info, plan, args.pin, elapsed, figures, floor, extras)
        args.json.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\n({elapsed:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
